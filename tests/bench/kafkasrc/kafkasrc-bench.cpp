/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Throughput of `kafkasrc ! fakesink` against a plain librdkafka consumer
 * with the same configuration, reading the same pre-filled topic in the same
 * run, for 1 KB, 100 KB and 1 MB messages.
 *
 *   KAFKA_BROKERS=host:port kafkasrc-bench [--rounds N] [--mbytes M]
 *       [--sizes 1024,102400,1048576] [--config key=value,...]
 *       [--only raw|raw+hdrs|kafkasrc|lists] [--json FILE]
 *
 * For each size one topic is filled with M megabytes of messages carrying
 * the gst.* headers kafkasink writes. Four consumers then read it from the
 * beginning to the end: "raw" (librdkafka's consumer idiom: poll, look at
 * the payload, destroy), "raw+hdrs" (the same, also decoding the gst.*
 * headers, which tells the cost of the message format from the cost of the
 * element), "kafkasrc" (kafkasrc is-live=false stop-at=end ! fakesink
 * sync=false enable-last-sample=false) and "lists" (the same with kafkasrc
 * buffer-list=true). Each round runs each once, in rotating order; the
 * median round counts (by throughput). Prints messages/s, MB/s, CPU seconds per
 * GB (user + system time of this process, librdkafka's threads included) and
 * the ratios, measured from the first message to the last, and separately the
 * time from the start (rd_kafka_new(), or the change to PLAYING) to the first
 * message. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <librdkafka/rdkafka.h>
#include <sys/resource.h>

#include "benchcommon.h"
#include "gstkafkacommon.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Settings
{
  const char *brokers = nullptr;
  int rounds = 3;
  /* Payload megabytes per topic. */
  double mbytes = 128;
  std::vector<size_t> sizes = {1024, 100 * 1024, 1024 * 1024};
  /* Run only "raw", "raw+hdrs", "kafkasrc" or "lists" (for profiling);
   * empty: all. */
  std::string only;
  /* Extra librdkafka settings, applied to every consumer. */
  std::vector<std::pair<std::string, std::string>> config;
  /* --json FILE: medians of the rounds, for tests/bench/run. */
  const char *json = nullptr;
};

enum Consumer
{
  RAW,
  RAW_HDRS,
  SRC,
  LISTS,
  N_CONSUMERS
};
const char *consumer_names[N_CONSUMERS] = {"raw", "raw+hdrs", "kafkasrc",
    "lists"};

/* kafkasrc's defaults without a group-id (see gstkafkasrc.cpp), which the
 * raw consumer shares for the comparison to mean anything. */
const char *const src_defaults[][2] = {{"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"}, {"auto.offset.reset", "earliest"},
    {"enable.partition.eof", "true"}};

using bench::cpu_seconds;
using bench::now_seconds;
using bench::Result;

[[noreturn]] void
die (const char *what, const char *why)
{
  fprintf (stderr, "kafkasrc-bench: %s: %s\n", what, why);
  exit (1);
}

void
conf_set (rd_kafka_conf_t *conf, const char *k, const char *v)
{
  char errstr[512];
  if (rd_kafka_conf_set (conf, k, v, errstr, sizeof (errstr)) !=
      RD_KAFKA_CONF_OK)
    die (k, errstr);
}

std::string
fill_topic (const Settings &s, size_t size, size_t n)
{
  static int counter = 0;
  std::string topic = "bench-src-" + std::to_string (size) + "-" +
                      std::to_string (g_get_real_time ()) + "-" +
                      std::to_string (++counter);
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  conf_set (conf, "bootstrap.servers", s.brokers);
  conf_set (conf, "linger.ms", "5");
  conf_set (conf, "message.max.bytes", "16777216");
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr,
      sizeof (errstr));
  if (!rk)
    die ("rd_kafka_new", errstr);

  rd_kafka_queue_t *q = rd_kafka_queue_new (rk);
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new (topic.c_str (), 1, 1, errstr,
      sizeof (errstr));
  rd_kafka_CreateTopics (rk, &nt, 1, nullptr, q);
  rd_kafka_NewTopic_destroy (nt);
  rd_kafka_event_t *ev = rd_kafka_queue_poll (q, 60000);
  if (!ev)
    die (topic.c_str (), "no answer to CreateTopics");
  rd_kafka_event_destroy (ev);
  rd_kafka_queue_destroy (q);

  std::vector<char> payload (size);
  for (size_t i = 0; i < size; i++)
    payload[i] = char (i * 131 + 7);
  for (size_t i = 0; i < n; i++) {
    /* The headers kafkasink writes: caps on every tenth ("keyframe"). */
    gstkafka::FrameInfo info;
    if (i % 10 == 0)
      info.caps = "application/octet-stream";
    info.pts = i * 40 * GST_MSECOND;
    info.duration = 40 * GST_MSECOND;
    info.flags = i % 10 ? GST_BUFFER_FLAG_DELTA_UNIT : 0;
    info.session = 0x0123456789abcdef;
    info.seq = i;
    for (;;) {
      rd_kafka_headers_t *hdrs = rd_kafka_headers_new (8);
      gstkafka::headers_write (hdrs, info);
      rd_kafka_resp_err_t err = rd_kafka_producev (rk,
          RD_KAFKA_V_TOPIC (topic.c_str ()), RD_KAFKA_V_PARTITION (0),
          RD_KAFKA_V_VALUE (payload.data (), size),
          RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS (hdrs),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;
      rd_kafka_headers_destroy (hdrs);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        die ("produce", rd_kafka_err2str (err));
      rd_kafka_poll (rk, 100);
    }
    rd_kafka_poll (rk, 0);
  }
  if (rd_kafka_flush (rk, 120000))
    die ("fill", "not every message was delivered");
  rd_kafka_destroy (rk);
  return topic;
}

void
delete_topic (const Settings &s, const std::string &topic)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  conf_set (conf, "bootstrap.servers", s.brokers);
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr,
      sizeof (errstr));
  rd_kafka_queue_t *q = rd_kafka_queue_new (rk);
  rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new (topic.c_str ());
  rd_kafka_DeleteTopics (rk, &dt, 1, nullptr, q);
  rd_kafka_DeleteTopic_destroy (dt);
  rd_kafka_event_t *ev = rd_kafka_queue_poll (q, 60000);
  if (ev)
    rd_kafka_event_destroy (ev);
  rd_kafka_queue_destroy (q);
  rd_kafka_destroy (rk);
}

/* librdkafka's consumer idiom (examples/consumer.c), on an assigned
 * partition from the beginning. */
Result
run_raw (const Settings &s, const std::string &topic, size_t n, bool headers)
{
  char errstr[512];
  double t0 = now_seconds ();
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  conf_set (conf, "bootstrap.servers", s.brokers);
  g_autofree gchar *group = g_strdup_printf ("bench-%08x%08x", g_random_int (),
      g_random_int ());
  conf_set (conf, "group.id", group);
  for (auto &kv : src_defaults)
    conf_set (conf, kv[0], kv[1]);
  for (auto &kv : s.config)
    conf_set (conf, kv.first.c_str (), kv.second.c_str ());
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr,
      sizeof (errstr));
  if (!rk)
    die ("rd_kafka_new", errstr);
  rd_kafka_poll_set_consumer (rk);
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (list, topic.c_str (), 0)
      ->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign (rk, list);
  rd_kafka_topic_partition_list_destroy (list);

  Result r;
  guint64 checksum = 0;
  double cpu1 = 0, t1 = 0;
  while (r.messages < n) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, 1000);
    if (!m)
      continue;
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        die ("consume", rd_kafka_message_errstr (m));
      rd_kafka_message_destroy (m);
      continue;
    }
    if (headers) {
      gstkafka::FrameInfo info;
      std::string problems;
      if (!gstkafka::headers_read (m, info, problems))
        die ("headers", problems.c_str ());
      checksum += info.seq;
    }
    checksum += static_cast<const guint8 *> (m->payload)[0];
    if (r.messages++ == 0) {
      t1 = now_seconds ();
      cpu1 = cpu_seconds ();
      r.startup = t1 - t0;
    }
    r.bytes += m->len;
    rd_kafka_message_destroy (m);
  }
  r.seconds = now_seconds () - t1;
  r.cpu = cpu_seconds () - cpu1;
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  if (checksum == 0)
    die ("raw", "nothing read");
  return r;
}

/* Times the first buffer reaching the sink, with a probe that removes
 * itself, and the EOS right after the last buffer (stop-at=end), when the
 * pipeline posts it: a pad with a probe runs its probe hooks for every
 * buffer, a cost the raw consumer does not pay. */
struct Probe
{
  double t_first = 0, cpu_first = 0, t_last = 0, cpu_last = 0;
};

GstPadProbeReturn
probe_first (GstPad *, GstPadProbeInfo *, gpointer data)
{
  auto p = static_cast<Probe *> (data);
  p->t_first = now_seconds ();
  p->cpu_first = cpu_seconds ();
  return GST_PAD_PROBE_REMOVE;
}

/* Runs in the thread that posts the message: fakesink's streaming thread,
 * for the EOS. */
GstBusSyncReply
bus_eos (GstBus *, GstMessage *msg, gpointer data)
{
  auto p = static_cast<Probe *> (data);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
    p->t_last = now_seconds ();
    p->cpu_last = cpu_seconds ();
  }
  return GST_BUS_PASS;
}

/* kafkasrc ! fakesink, with @lists kafkasrc buffer-list=true. */
Result
run_src (const Settings &s, const std::string &topic, size_t n, bool lists)
{
  GstElement *pipeline = gst_pipeline_new ("bench");
  GstElement *src = gst_element_factory_make ("kafkasrc", nullptr);
  GstElement *sink = gst_element_factory_make ("fakesink", nullptr);
  if (!src || !sink)
    die ("gst_element_factory_make", "kafkasrc or fakesink missing");
  g_object_set (src, "brokers", s.brokers, "topic", topic.c_str (), "is-live",
      FALSE, "stop-at", 1 /* end */, nullptr);
  if (!s.config.empty ()) {
    GstStructure *config = gst_structure_new_empty ("kafka");
    for (auto &kv : s.config)
      gst_structure_set (config, kv.first.c_str (), G_TYPE_STRING,
          kv.second.c_str (), nullptr);
    g_object_set (src, "config", config, nullptr);
    gst_structure_free (config);
  }
  /* The raw consumer keeps no message either. */
  g_object_set (sink, "sync", FALSE, "enable-last-sample", FALSE, nullptr);
  gst_bin_add_many (GST_BIN (pipeline), src, sink, nullptr);
  gst_element_link (src, sink);
  if (lists)
    g_object_set (src, "buffer-list", TRUE, nullptr);
  Probe probe;
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad,
      GstPadProbeType (
          GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      probe_first, &probe, nullptr);
  gst_object_unref (pad);
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, bus_eos, &probe, nullptr);

  /* kafkasrc creates its consumer in the state change, inside the timer
   * like the raw consumer's rd_kafka_new(). */
  double t0 = now_seconds ();
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GstMessageType (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  Result r;
  r.startup = probe.t_first - t0;
  r.seconds = probe.t_last - probe.t_first;
  r.cpu = probe.cpu_last - probe.cpu_first;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error (msg, &err, nullptr);
    die ("kafkasrc", err->message);
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  guint64 messages, bytes;
  g_object_get (src, "messages", &messages, "bytes", &bytes, nullptr);
  r.messages = messages;
  r.bytes = bytes;
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  if (messages != n)
    die ("kafkasrc", "did not deliver every message");
  return r;
}

Settings
parse_args (int argc, char **argv)
{
  Settings s;
  s.brokers = g_getenv ("KAFKA_BROKERS");
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--rounds" && v) {
      s.rounds = atoi (v);
      i++;
    } else if (a == "--mbytes" && v) {
      s.mbytes = atof (v);
      i++;
    } else if (a == "--sizes" && v) {
      s.sizes.clear ();
      g_auto (GStrv) parts = g_strsplit (v, ",", -1);
      for (guint j = 0; parts[j]; j++)
        s.sizes.push_back (strtoul (parts[j], nullptr, 10));
      i++;
    } else if (a == "--only" && v) {
      if (!bench::Contenders::known (consumer_names, N_CONSUMERS, v))
        die ("--only", "expected raw, raw+hdrs, kafkasrc or lists");
      s.only = v;
      i++;
    } else if (a == "--json" && v) {
      s.json = v;
      i++;
    } else if (a == "--config" && v) {
      g_auto (GStrv) parts = g_strsplit (v, ",", -1);
      for (guint j = 0; parts[j]; j++) {
        gchar *eq = strchr (parts[j], '=');
        if (!eq)
          die ("--config", "expected key=value,...");
        *eq = '\0';
        s.config.emplace_back (parts[j], eq + 1);
      }
      i++;
    } else {
      fprintf (stderr,
          "usage: KAFKA_BROKERS=host:port %s [--rounds N] [--mbytes M] "
          "[--sizes B,B,...] [--config key=value,...] [--only "
          "raw|raw+hdrs|kafkasrc|lists] [--json FILE]\n",
          argv[0]);
      exit (2);
    }
  }
  return s;
}

} // namespace

/* One size's figures as JSON: kafkasrc against raw (the goal), against
 * raw+hdrs, with buffer lists, CPU per GB, and the time to the first
 * message. */
void
json_size (bench::Json &json, size_t size, const bench::Contenders &c)
{
  auto mbs = &Result::mb_per_s;
  auto cpu = &Result::cpu_per_gb;
  c.figure (json, "consume MB/s", SRC, RAW, mbs, "MB/s");
  c.figure (json, "consume MB/s vs raw+hdrs", SRC, RAW_HDRS, mbs, "MB/s");
  c.figure (json, "consume CPU s/GB", SRC, RAW, cpu, "s/GB");
  if (c.wanted (SRC) && c.wanted (RAW))
    json.figure ("consume startup s", size, c.median (SRC).startup,
        c.median (RAW).startup, "raw", "s");
  c.figure (json, "lists: consume MB/s", LISTS, RAW, mbs, "MB/s");
  c.figure (json, "lists: consume CPU s/GB", LISTS, RAW, cpu, "s/GB");
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  Settings s = parse_args (argc, argv);
  if (!s.brokers || !*s.brokers) {
    fprintf (stderr, "KAFKA_BROKERS is not set: run through "
                     "tests/bench/kafkasrc/run-bench or kafka-local run\n");
    return 77;
  }

  printf ("kafkasrc-bench: librdkafka %s, GStreamer %s, broker %s\n",
      rd_kafka_version_str (), gst_version_string (), s.brokers);
  printf ("config: enable.auto.commit=false enable.auto.offset.store=false "
          "enable.partition.eof=true");
  for (auto &kv : s.config)
    printf (" %s=%s", kv.first.c_str (), kv.second.c_str ());
  printf ("; %.0f MB per topic, median of %d rounds, ratios the median of "
          "the rounds' ratios\n\n",
      s.mbytes, s.rounds);
  printf ("%9s %-10s %9s %12s %10s %12s %10s\n", "size", "consumer", "messages",
      "msgs/s", "MB/s", "CPU s/GB", "startup s");
  fflush (stdout);

  bench::Goal goal;
  bench::Json json;
  if (!json.open (s.json, "kafkasrc", s.rounds, s.mbytes))
    die (s.json, g_strerror (errno));
  for (size_t size : s.sizes) {
    size_t n = std::max<size_t> (10, size_t (s.mbytes * 1024 * 1024 / size));
    std::string topic = fill_topic (s, size, n);
    bench::Contenders c (consumer_names, N_CONSUMERS, s.only, size);
    c.run (s.rounds, [&] (int which) {
      if (which == SRC || which == LISTS)
        return run_src (s, topic, n, which == LISTS);
      return run_raw (s, topic, n, which == RAW_HDRS);
    });
    delete_topic (s, topic);
    c.print (true);
    /* Ratios: medians of the rounds' ratios (bench::paired_ratio()). */
    c.print_ratios (SRC, RAW);
    c.print_ratios (SRC, RAW_HDRS);
    c.print_ratios (LISTS, RAW);
    printf ("\n");
    goal.check (c, SRC, RAW);
    json_size (json, size, c);
    fflush (stdout);
  }
  goal.print ();
  return 0;
}
