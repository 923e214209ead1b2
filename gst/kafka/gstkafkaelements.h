/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

void kafka_element_init (GstPlugin *plugin);

GST_ELEMENT_REGISTER_DECLARE (kafkasink);
GST_ELEMENT_REGISTER_DECLARE (kafkasrc);

G_END_DECLS
