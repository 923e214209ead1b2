/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end latency at a steady frame rate, against the raw librdkafka
 * round trip on the same broker.
 *
 *   latency-bench BROKERS [--fps 30] [--frames 300] [--size 30000]
 *
 * raw:      rd_kafka_producev() of a frame -> rd_kafka_consumer_poll()
 *           returns it, both in this process.
 * pipeline: gst_app_src_push_buffer() into appsrc ! kafkasink -> kafkasrc !
 *           multipartmux ! souphttpserversink -> the last byte of its part
 *           read by an HTTP client thread of this process.
 * Both use the same latency settings: linger.ms=0 on the producer,
 * fetch.wait.max.ms=5 on the consumer. Prints p50/p99/max of each and the
 * differences; writes JSON with --json FILE. */

#include <gio/gio.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options
{
  const char *brokers = nullptr;
  int fps = 30;
  int frames = 300;
  int size = 30000;
  const char *json = nullptr;
};

gint64
now_us ()
{
  return g_get_monotonic_time ();
}

struct Stats
{
  double p50, p99, max;
};

Stats
summarize (std::vector<double> v)
{
  std::sort (v.begin (), v.end ());
  if (v.empty ())
    return {0, 0, 0};
  return {v[v.size () / 2], v[size_t (0.99 * (v.size () - 1))], v.back ()};
}

std::string
unique_topic (const char *prefix)
{
  return std::string (prefix) + "-" + std::to_string (g_get_real_time ());
}

rd_kafka_t *
make_client (rd_kafka_type_t type, const char *brokers, const char *group)
{
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_conf_set (conf, "bootstrap.servers", brokers, err, sizeof (err));
  if (type == RD_KAFKA_PRODUCER) {
    rd_kafka_conf_set (conf, "linger.ms", "0", err, sizeof (err));
    rd_kafka_conf_set (conf, "acks", "all", err, sizeof (err));
    rd_kafka_conf_set (conf, "enable.idempotence", "true", err, sizeof (err));
  } else {
    rd_kafka_conf_set (conf, "group.id", group, err, sizeof (err));
    rd_kafka_conf_set (conf, "fetch.wait.max.ms", "5", err, sizeof (err));
    rd_kafka_conf_set (conf, "auto.offset.reset", "earliest", err,
        sizeof (err));
  }
  rd_kafka_t *rk = rd_kafka_new (type, conf, err, sizeof (err));
  if (!rk) {
    g_printerr ("rd_kafka_new: %s\n", err);
    exit (1);
  }
  return rk;
}

/* The raw round trip: produce frame i at its due time, the consumer notes
 * when it sees it. */
std::vector<double>
run_raw (const Options &o)
{
  std::string topic = unique_topic ("latency-raw");
  rd_kafka_t *producer = make_client (RD_KAFKA_PRODUCER, o.brokers, nullptr);
  rd_kafka_t *consumer = make_client (RD_KAFKA_CONSUMER, o.brokers,
      topic.c_str ());
  rd_kafka_poll_set_consumer (consumer);
  rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (tp, topic.c_str (), 0);
  /* Create the topic, then assign from the beginning. */
  rd_kafka_producev (producer, RD_KAFKA_V_TOPIC (topic.c_str ()),
      RD_KAFKA_V_VALUE ((void *) "warmup", 6), RD_KAFKA_V_END);
  rd_kafka_flush (producer, 10000);
  rd_kafka_assign (consumer, tp);
  rd_kafka_topic_partition_list_destroy (tp);
  /* Measure from the first fetch on, as the pipeline does (its viewer
   * joins first): wait until the warm-up message arrives. */
  gint64 warm_deadline = now_us () + 30 * G_USEC_PER_SEC;
  for (bool warm = false; !warm && now_us () < warm_deadline;) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll (consumer, 100);
    if (m) {
      warm = !m->err && m->len == 6;
      rd_kafka_message_destroy (m);
    }
    rd_kafka_poll (producer, 0);
  }

  std::vector<char> payload (o.size, 'x');
  std::vector<gint64> sent (o.frames, 0);
  std::vector<double> lat;
  std::atomic<bool> done{false};

  std::thread reader ([&] {
    while (!done) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (consumer, 100);
      if (!m)
        continue;
      gint64 t = now_us ();
      if (!m->err && m->len == (size_t) o.size) {
        int idx;
        memcpy (&idx, m->payload, sizeof (idx));
        if (idx >= 0 && idx < o.frames && sent[idx])
          lat.push_back ((t - sent[idx]) / 1000.0);
        if (idx == o.frames - 1)
          done = true;
      }
      rd_kafka_message_destroy (m);
    }
  });

  gint64 start = now_us () + 500000;
  for (int i = 0; i < o.frames; i++) {
    gint64 due = start + gint64 (i) * 1000000 / o.fps;
    while (now_us () < due) {
      rd_kafka_poll (producer, 0);
      g_usleep (std::min<gint64> (1000, std::max<gint64> (0, due - now_us ())));
    }
    memcpy (payload.data (), &i, sizeof (i));
    sent[i] = now_us ();
    rd_kafka_producev (producer, RD_KAFKA_V_TOPIC (topic.c_str ()),
        RD_KAFKA_V_VALUE (payload.data (), payload.size ()),
        RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_poll (producer, 0);
  }
  gint64 deadline = now_us () + 30 * G_USEC_PER_SEC;
  while (!done && now_us () < deadline)
    rd_kafka_poll (producer, 10);
  done = true;
  reader.join ();
  rd_kafka_flush (producer, 10000);
  rd_kafka_consumer_close (consumer);
  rd_kafka_destroy (consumer);
  rd_kafka_destroy (producer);
  return lat;
}

/* Reads multipart parts from the viewer; each part's first 4 bytes carry
 * the frame index. */
void
http_reader (int port, int frames, std::vector<gint64> *sent,
    std::vector<double> *lat, std::atomic<bool> *done,
    std::atomic<int> *received)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = nullptr;
  for (int tries = 0; !conn && tries < 200; tries++) {
    conn = g_socket_client_connect_to_host (client, "127.0.0.1", port, nullptr,
        nullptr);
    if (!conn)
      g_usleep (50000);
  }
  if (!conn) {
    g_printerr ("could not connect to the viewer\n");
    exit (1);
  }
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
  const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_output_stream_write_all (out, req, strlen (req), nullptr, nullptr, nullptr);
  g_autoptr (GDataInputStream) in = g_data_input_stream_new (
      g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  g_data_input_stream_set_newline_type (in, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);

  /* Response headers, then parts: headers with Content-Length, body. */
  gsize len;
  for (;;) {
    g_autofree gchar *line = g_data_input_stream_read_line (in, &len, nullptr,
        nullptr);
    if (!line)
      return;
    if (len == 0)
      break;
  }
  std::vector<guint8> body;
  int seen = 0;
  while (!*done && seen < frames) {
    gsize clen = 0;
    bool in_headers = false;
    for (;;) {
      g_autofree gchar *line = g_data_input_stream_read_line (in, &len, nullptr,
          nullptr);
      if (!line)
        return;
      if (g_str_has_prefix (line, "--"))
        in_headers = true;
      else if (in_headers &&
               g_ascii_strncasecmp (line, "content-length:", 15) == 0)
        clen = g_ascii_strtoull (line + 15, nullptr, 10);
      else if (in_headers && len == 0 && clen)
        break;
    }
    body.resize (clen);
    gsize got = 0;
    if (!g_input_stream_read_all (G_INPUT_STREAM (in), body.data (), clen, &got,
            nullptr, nullptr) ||
        got != clen)
      return;
    gint64 t = now_us ();
    int idx;
    memcpy (&idx, body.data (), sizeof (idx));
    if (idx >= 0 && idx < frames && (*sent)[idx])
      lat->push_back ((t - (*sent)[idx]) / 1000.0);
    seen++;
    (*received)++;
  }
}

std::vector<double>
run_pipeline (const Options &o)
{
  std::string topic = unique_topic ("latency-gst");
  g_autofree gchar *prod_desc = g_strdup_printf (
      "appsrc name=src is-live=true format=time "
      "caps=application/octet-stream ! kafkasink brokers=%s topic=%s "
      "sync=false config=\"kafka, linger.ms=0\"",
      o.brokers, topic.c_str ());
  GError *err = nullptr;
  GstElement *producer = gst_parse_launch (prod_desc, &err);
  if (!producer) {
    g_printerr ("producer: %s\n", err->message);
    exit (1);
  }
  /* Create the topic before the viewer subscribes. */
  rd_kafka_t *rk = make_client (RD_KAFKA_PRODUCER, o.brokers, nullptr);
  rd_kafka_producev (rk, RD_KAFKA_V_TOPIC (topic.c_str ()),
      RD_KAFKA_V_VALUE ((void *) "warmup", 6), RD_KAFKA_V_END);
  rd_kafka_flush (rk, 10000);
  rd_kafka_destroy (rk);

  g_autofree gchar *view_desc = g_strdup_printf (
      "kafkasrc brokers=%s topic=%s start-from=latest "
      "config=\"kafka, fetch.wait.max.ms=5\" ! multipartmux boundary=frame ! "
      "souphttpserversink name=http port=0",
      o.brokers, topic.c_str ());
  GstElement *viewer = gst_parse_launch (view_desc, &err);
  if (!viewer) {
    g_printerr ("viewer: %s\n", err->message);
    exit (1);
  }
  gst_element_set_state (viewer, GST_STATE_PLAYING);
  gst_element_get_state (viewer, nullptr, nullptr, 10 * GST_SECOND);
  GstElement *http = gst_bin_get_by_name (GST_BIN (viewer), "http");
  int port = 0;
  for (int i = 0; i < 200 && port == 0; i++) {
    g_object_get (http, "current-port", &port, nullptr);
    if (!port)
      g_usleep (20000);
  }
  gst_object_unref (http);
  gst_element_set_state (producer, GST_STATE_PLAYING);

  std::vector<gint64> sent (o.frames, 0);
  std::vector<double> lat;
  std::atomic<bool> done{false};
  std::atomic<int> received{0};
  std::thread reader (http_reader, port, o.frames, &sent, &lat, &done,
      &received);
  /* Let the consumer join before the first measured frame. */
  g_usleep (3 * G_USEC_PER_SEC);

  GstElement *src = gst_bin_get_by_name (GST_BIN (producer), "src");
  gint64 start = now_us ();
  for (int i = 0; i < o.frames; i++) {
    gint64 due = start + gint64 (i) * 1000000 / o.fps;
    gint64 wait = due - now_us ();
    if (wait > 0)
      g_usleep (wait);
    GstBuffer *buf = gst_buffer_new_allocate (nullptr, o.size, nullptr);
    gst_buffer_memset (buf, 0, 'x', o.size);
    gst_buffer_fill (buf, 0, &i, sizeof (i));
    GST_BUFFER_PTS (buf) = gst_util_uint64_scale (i, GST_SECOND, o.fps);
    GST_BUFFER_DURATION (buf) = GST_SECOND / o.fps;
    sent[i] = now_us ();
    gst_app_src_push_buffer (GST_APP_SRC (src), buf);
  }
  gst_object_unref (src);
  gint64 deadline = now_us () + 30 * G_USEC_PER_SEC;
  while (received < o.frames && now_us () < deadline)
    g_usleep (10000);
  done = true;
  gst_element_set_state (viewer, GST_STATE_NULL);
  reader.join ();
  gst_element_set_state (producer, GST_STATE_NULL);
  gst_object_unref (viewer);
  gst_object_unref (producer);
  return lat;
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  Options o;
  for (int i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--fps") && i + 1 < argc)
      o.fps = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--frames") && i + 1 < argc)
      o.frames = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--size") && i + 1 < argc)
      o.size = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--json") && i + 1 < argc)
      o.json = argv[++i];
    else
      o.brokers = argv[i];
  }
  if (!o.brokers)
    o.brokers = g_getenv ("KAFKA_BROKERS");
  if (!o.brokers) {
    g_printerr ("usage: latency-bench BROKERS [--fps N] [--frames N] "
                "[--size BYTES] [--json FILE]\n");
    return 2;
  }

  std::vector<double> raw = run_raw (o);
  std::vector<double> gst = run_pipeline (o);
  Stats r = summarize (raw), g = summarize (gst);
  printf ("end-to-end latency, %d frames of %d bytes at %d fps (ms)\n",
      o.frames, o.size, o.fps);
  printf ("%-34s %9s %9s %9s %9s\n", "", "frames", "p50", "p99", "max");
  printf ("%-34s %9zu %9.2f %9.2f %9.2f\n", "raw librdkafka produce->consume",
      raw.size (), r.p50, r.p99, r.max);
  printf ("%-34s %9zu %9.2f %9.2f %9.2f\n", "kafkasink->kafkasrc->HTTP client",
      gst.size (), g.p50, g.p99, g.max);
  printf ("%-34s %9s %9.2f %9.2f %9.2f\n", "difference", "", g.p50 - r.p50,
      g.p99 - r.p99, g.max - r.max);
  if (o.json) {
    FILE *f = fopen (o.json, "w");
    if (f) {
      fprintf (f,
          "{\"benchmark\": \"latency\", \"fps\": %d, \"size\": %d, "
          "\"results\": [\n"
          " {\"name\": \"latency p50\", \"value\": %.3f, \"baseline\": %.3f, "
          "\"unit\": \"ms\", \"frames\": %zu},\n"
          " {\"name\": \"latency p99\", \"value\": %.3f, \"baseline\": %.3f, "
          "\"unit\": \"ms\", \"goal\": \"within 2 ms of raw\"},\n"
          " {\"name\": \"latency max\", \"value\": %.3f, \"baseline\": %.3f, "
          "\"unit\": \"ms\"}]}\n",
          o.fps, o.size, g.p50, r.p50, gst.size (), g.p99, r.p99, g.max, r.max);
      fclose (f);
    }
  }
  return gst.size () >= size_t (o.frames) * 9 / 10 ? 0 : 1;
}
