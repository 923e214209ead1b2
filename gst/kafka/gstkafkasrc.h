/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_KAFKA_SRC (gst_kafka_src_get_type ())
G_DECLARE_FINAL_TYPE (GstKafkaSrc, gst_kafka_src, GST, KAFKA_SRC, GstPushSrc)

G_END_DECLS
