/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Embedding gst-kafka in a C application that makes and uses its own
 * frames: appsrc ! kafkasink puts them into Kafka, kafkasrc ! appsink reads
 * them back with their caps, timestamps, flags, Kafka offsets and Kafka
 * timestamps.
 *
 *   kafka-frames BROKERS TOPIC FRAMES
 *
 * Produces FRAMES grey 64x48 frames (frame i filled with the byte i, pts
 * i x 100 ms, a keyframe every fifth) into TOPIC, which must be new or
 * empty (the frames are expected at offsets 0 to FRAMES - 1), then
 * reads the topic from its beginning to its end and checks that every frame
 * came back as it was made. Prints one line per frame read; exits 1 when a
 * frame differs or a pipeline fails, 2 on bad usage or a missing element. */

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <stdlib.h>
#include <string.h>

#define WIDTH 64
#define HEIGHT 48
#define FRAME_SIZE (WIDTH * HEIGHT)
#define FRAME_DURATION (100 * GST_MSECOND)
#define KEYFRAME_INTERVAL 5
#define FRAME_CAPS                                                             \
  "video/x-raw, format=GRAY8, width=64, height=48, framerate=10/1"

static GstElement *
make (const char *factory)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  if (!e) {
    g_printerr ("GStreamer element '%s' is missing: is gst-kafka installed "
                "or GST_PLUGIN_PATH set?\n",
        factory);
    exit (2);
  }
  return e;
}

/* Prints an error or warning message from the bus; TRUE for an error. */
static gboolean
report (const char *pipeline, GstMessage *msg)
{
  GError *err = NULL;
  gchar *debug = NULL;
  gboolean error = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR;

  if (error)
    gst_message_parse_error (msg, &err, &debug);
  else
    gst_message_parse_warning (msg, &err, &debug);
  g_printerr ("%s: %s from %s: %s\n  (%s)\n", pipeline,
      error ? "error" : "warning", GST_OBJECT_NAME (msg->src), err->message,
      debug ? debug : "");
  g_clear_error (&err);
  g_free (debug);
  return error;
}

/* Waits for the end of stream, printing warnings; FALSE on an error. */
static gboolean
wait_for_eos (GstElement *pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  gboolean ok = FALSE;

  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_WARNING);
    gboolean done = GST_MESSAGE_TYPE (msg) != GST_MESSAGE_WARNING;

    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS)
      ok = TRUE;
    else
      report (GST_OBJECT_NAME (pipeline), msg);
    gst_message_unref (msg);
    if (done)
      break;
  }
  gst_object_unref (bus);
  return ok;
}

static GstBuffer *
make_frame (guint i)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);

  gst_buffer_memset (buf, 0, i & 0xff, FRAME_SIZE);
  GST_BUFFER_PTS (buf) = i * FRAME_DURATION;
  GST_BUFFER_DURATION (buf) = FRAME_DURATION;
  if (i % KEYFRAME_INTERVAL != 0)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  return buf;
}

/* appsrc ! kafkasink: pushes @frames frames, then waits until the broker
 * has acknowledged every one of them (kafkasink's EOS waits for that). */
static gboolean
produce (const char *brokers, const char *topic, guint frames)
{
  GstElement *pipeline = gst_pipeline_new ("producer");
  GstElement *src = make ("appsrc");
  GstElement *sink = make ("kafkasink");
  GstCaps *caps = gst_caps_from_string (FRAME_CAPS);
  guint64 delivered = 0;
  gboolean ok;

  g_object_set (src, "caps", caps, "format", GST_FORMAT_TIME, NULL);
  gst_caps_unref (caps);
  /* The application pushes as fast as it likes: no clock to wait for. */
  g_object_set (sink, "brokers", brokers, "topic", topic, "sync", FALSE, NULL);
  gst_bin_add_many (GST_BIN (pipeline), src, sink, NULL);
  gst_element_link (src, sink);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (guint i = 0; i < frames; i++) {
    /* Takes the buffer; fails only once the pipeline is shutting down. */
    if (gst_app_src_push_buffer (GST_APP_SRC (src), make_frame (i)) !=
        GST_FLOW_OK)
      break;
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  ok = wait_for_eos (pipeline);

  g_object_get (sink, "messages-delivered", &delivered, NULL);
  g_print ("producer: %" G_GUINT64_FORMAT " of %u frames acknowledged\n",
      delivered, frames);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return ok && delivered == frames;
}

/* What frame @i should look like once read back; FALSE and a message if it
 * does not. */
static gboolean
check_frame (guint i, GstSample *sample)
{
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstCaps *expected = gst_caps_from_string (FRAME_CAPS);
  gboolean delta = GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  gboolean caps_ok = gst_caps_is_equal (gst_sample_get_caps (sample), expected);
  GstMapInfo map;
  gboolean ok;

  gst_caps_unref (expected);
  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return FALSE;
  ok = caps_ok && map.size == FRAME_SIZE && map.data[0] == (i & 0xff) &&
       map.data[FRAME_SIZE - 1] == (i & 0xff) &&
       GST_BUFFER_PTS (buf) == i * FRAME_DURATION &&
       GST_BUFFER_DURATION (buf) == FRAME_DURATION &&
       delta == (i % KEYFRAME_INTERVAL != 0) && GST_BUFFER_OFFSET (buf) == i;
  gst_buffer_unmap (buf, &map);
  if (!ok)
    g_printerr ("frame %u differs from the one produced (caps %s, "
                "%" G_GSIZE_FORMAT " bytes, pts %" GST_TIME_FORMAT
                ", offset %" G_GUINT64_FORMAT ")\n",
        i, caps_ok ? "as sent" : "changed", gst_buffer_get_size (buf),
        GST_TIME_ARGS (GST_BUFFER_PTS (buf)), GST_BUFFER_OFFSET (buf));
  return ok;
}

/* The Kafka timestamp of @buf (kafkasrc add-reference-timestamp-meta=true),
 * in nanoseconds since the epoch, or GST_CLOCK_TIME_NONE. */
static GstClockTime
kafka_timestamp (GstBuffer *buf)
{
  static GstCaps *unix_caps = NULL;
  GstReferenceTimestampMeta *meta;

  if (!unix_caps)
    unix_caps = gst_caps_new_empty_simple ("timestamp/x-unix");
  meta = gst_buffer_get_reference_timestamp_meta (buf, unix_caps);
  return meta ? meta->timestamp : GST_CLOCK_TIME_NONE;
}

/* "HH:MM:SS.mmm UTC" of a time in nanoseconds since the epoch. */
static gchar *
format_time (GstClockTime t)
{
  GDateTime *seconds = g_date_time_new_from_unix_utc (t / GST_SECOND);
  GDateTime *dt = g_date_time_add (seconds, (t % GST_SECOND) / GST_USECOND);
  gchar *hms = g_date_time_format (dt, "%H:%M:%S");
  gchar *text = g_strdup_printf ("%s.%03u UTC", hms,
      (guint) ((t % GST_SECOND) / GST_MSECOND));

  g_free (hms);
  g_date_time_unref (dt);
  g_date_time_unref (seconds);
  return text;
}

/* kafkasrc ! appsink, from the topic's beginning to its end (stop-at=end
 * sends EOS there); every frame is checked as it comes. */
static gboolean
consume (const char *brokers, const char *topic, guint frames)
{
  GstElement *pipeline = gst_pipeline_new ("consumer");
  GstElement *src = make ("kafkasrc");
  GstElement *sink = make ("appsink");
  GstSample *sample;
  GstClockTime first_produced = GST_CLOCK_TIME_NONE;
  guint n = 0;
  gboolean ok = TRUE;

  /* No group-id: a private group that commits nothing. Not live: the
   * frames are stored ones, so their timestamps start at 0 as in a file
   * (live, they would start at the running time the first one arrived).
   * Each buffer also gets its Kafka timestamp, when it was produced. */
  g_object_set (src, "brokers", brokers, "topic", topic, "is-live", FALSE,
      "add-reference-timestamp-meta", TRUE, NULL);
  gst_util_set_object_arg (G_OBJECT (src), "start-from", "earliest");
  gst_util_set_object_arg (G_OBJECT (src), "stop-at", "end");
  g_object_set (sink, "sync", FALSE, NULL);
  gst_bin_add_many (GST_BIN (pipeline), src, sink, NULL);
  gst_element_link (src, sink);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  /* NULL at the end of stream, or when the pipeline failed. */
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstClockTime produced = kafka_timestamp (buf);
    gchar *when = GST_CLOCK_TIME_IS_VALID (produced) ? format_time (produced)
                                                     : g_strdup ("unknown");

    g_print ("frame %u: offset %" G_GUINT64_FORMAT ", pts %" GST_TIME_FORMAT
             ", %" G_GSIZE_FORMAT " bytes%s, produced at %s\n",
        n, GST_BUFFER_OFFSET (buf), GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
        gst_buffer_get_size (buf),
        GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT) ? ""
                                                                 : ", keyframe",
        when);
    g_free (when);
    if (!check_frame (n, sample))
      ok = FALSE;
    /* kafkasink stamped each message with the wall-clock time of its
     * buffer's running time: the frames are 100 ms apart there too. */
    if (n == 0)
      first_produced = produced;
    if (!GST_CLOCK_TIME_IS_VALID (produced) ||
        produced - first_produced != n * FRAME_DURATION) {
      g_printerr ("frame %u: Kafka timestamp not 100 ms after the one "
                  "before\n",
          n);
      ok = FALSE;
    }
    gst_sample_unref (sample);
    n++;
  }
  if (!wait_for_eos (pipeline))
    ok = FALSE;
  if (n != frames) {
    g_printerr ("consumer: read %u frames, expected %u\n", n, frames);
    ok = FALSE;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return ok;
}

int
main (int argc, char **argv)
{
  int frames;

  gst_init (&argc, &argv);
  if (argc != 4 || (frames = atoi (argv[3])) <= 0) {
    g_printerr ("usage: %s BROKERS TOPIC FRAMES\n", argv[0]);
    return 2;
  }
  if (!produce (argv[1], argv[2], frames))
    return 1;
  if (!consume (argv[1], argv[2], frames))
    return 1;
  g_print ("consumer: %d frames read back as they were produced\n", frames);
  return 0;
}
