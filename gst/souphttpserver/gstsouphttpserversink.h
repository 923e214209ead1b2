/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_SOUP_HTTP_SERVER_SINK (gst_soup_http_server_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstSoupHttpServerSink, gst_soup_http_server_sink, GST,
    SOUP_HTTP_SERVER_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE (souphttpserversink);

G_END_DECLS
