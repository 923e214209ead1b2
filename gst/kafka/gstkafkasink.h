/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_KAFKA_SINK (gst_kafka_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstKafkaSink, gst_kafka_sink, GST, KAFKA_SINK, GstBaseSink)

G_END_DECLS
