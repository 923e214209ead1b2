/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsouphttpserversink.h"

struct _GstSoupHttpServerSink
{
  GstBaseSink parent;
};

G_DEFINE_TYPE (GstSoupHttpServerSink, gst_soup_http_server_sink,
    GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE (souphttpserversink, "souphttpserversink",
    GST_RANK_NONE, GST_TYPE_SOUP_HTTP_SERVER_SINK);

static void
gst_soup_http_server_sink_class_init (GstSoupHttpServerSinkClass *klass)
{
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "HTTP server sink (not yet implemented)", "Sink/Network", "TODO",
      "gst-kafka");
}

static void
gst_soup_http_server_sink_init (GstSoupHttpServerSink *)
{
}
