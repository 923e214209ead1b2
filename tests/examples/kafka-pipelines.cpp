/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Embedding gst-kafka in a C++ application: builds the producer and the
 * viewer element by element, watches each pipeline's bus, handles errors
 * and end of stream.
 *
 *   kafka-pipelines BROKERS TOPIC FRAMES PORT
 *
 * Produces FRAMES generated PNG frames into TOPIC, then serves them from
 * Kafka at http://127.0.0.1:PORT/ until the viewer reaches the end of the
 * topic (kafkasrc stop-at=end). Exits non-zero on any pipeline error. */

#include <gst/gst.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace {

struct PipelineDeleter
{
  void operator() (GstElement *p) const
  {
    gst_element_set_state (p, GST_STATE_NULL);
    gst_object_unref (p);
  }
};
using Pipeline = std::unique_ptr<GstElement, PipelineDeleter>;

GstElement *
make (const char *factory, const char *name = nullptr)
{
  GstElement *e = gst_element_factory_make (factory, name);
  if (!e) {
    g_printerr ("GStreamer element '%s' is missing: is gst-kafka installed "
                "or GST_PLUGIN_PATH set?\n",
        factory);
    exit (2);
  }
  return e;
}

/* Runs @pipeline until EOS or an error; true on EOS. */
bool
run (GstElement *pipeline)
{
  const char *name = GST_OBJECT_NAME (pipeline);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("%s: could not start\n", name);
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  bool ok = false;
  for (bool done = false; !done;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        GstMessageType (
            GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_WARNING));
    switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_error (msg, &err, &debug);
      g_printerr ("%s: error from %s: %s\n  (%s)\n", name,
          GST_OBJECT_NAME (msg->src), err->message, debug ? debug : "");
      g_clear_error (&err);
      g_free (debug);
      done = true;
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gst_message_parse_warning (msg, &err, nullptr);
      g_printerr ("%s: warning from %s: %s\n", name, GST_OBJECT_NAME (msg->src),
          err->message);
      g_clear_error (&err);
      break;
    }
    default:
      g_print ("%s: end of stream\n", name);
      ok = done = true;
      break;
    }
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  return ok;
}

Pipeline
producer (const char *brokers, const char *topic, int frames)
{
  Pipeline p (gst_pipeline_new ("producer"));
  GstElement *src = make ("videotestsrc");
  GstElement *caps = make ("capsfilter");
  GstElement *enc = make ("pngenc");
  GstElement *sink = make ("kafkasink");

  g_object_set (src, "num-buffers", frames, "pattern", 18 /* ball */, nullptr);
  GstCaps *c = gst_caps_from_string (
      "video/x-raw, width=320, height=240, framerate=30/1");
  g_object_set (caps, "caps", c, nullptr);
  gst_caps_unref (c);
  g_object_set (enc, "compression-level", 1, nullptr);
  g_object_set (sink, "brokers", brokers, "topic", topic, "sync", FALSE,
      nullptr);

  gst_bin_add_many (GST_BIN (p.get ()), src, caps, enc, sink, nullptr);
  if (!gst_element_link_many (src, caps, enc, sink, nullptr)) {
    g_printerr ("could not link the producer\n");
    exit (2);
  }
  return p;
}

Pipeline
viewer (const char *brokers, const char *topic, int port)
{
  Pipeline p (gst_pipeline_new ("viewer"));
  GstElement *src = make ("kafkasrc");
  GstElement *mux = make ("multipartmux");
  GstElement *sink = make ("souphttpserversink");

  g_autofree gchar *group = g_strdup_printf ("example-%s", topic);
  gst_util_set_object_arg (G_OBJECT (src), "stop-at", "end");
  g_object_set (src, "brokers", brokers, "topic", topic, "group-id", group,
      nullptr);
  g_object_set (mux, "boundary", "frame", nullptr);
  g_object_set (sink, "port", port, nullptr);

  gst_bin_add_many (GST_BIN (p.get ()), src, mux, sink, nullptr);
  if (!gst_element_link_many (src, mux, sink, nullptr)) {
    g_printerr ("could not link the viewer\n");
    exit (2);
  }
  return p;
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc != 5) {
    g_printerr ("usage: %s BROKERS TOPIC FRAMES PORT\n", argv[0]);
    return 2;
  }
  const char *brokers = argv[1];
  const char *topic = argv[2];
  int frames = atoi (argv[3]);
  int port = atoi (argv[4]);

  if (!run (producer (brokers, topic, frames).get ()))
    return 1;
  g_print ("viewer: serving http://127.0.0.1:%d/\n", port);
  if (!run (viewer (brokers, topic, port).get ()))
    return 1;
  return 0;
}
