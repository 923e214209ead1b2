/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Throughput of `appsrc ! kafkasink` against a plain librdkafka producer
 * with the same configuration, in the same run, on the same broker, for
 * 1 KB, 100 KB and 1 MB messages.
 *
 *   KAFKA_BROKERS=host:port kafkasink-bench [--rounds N] [--mbytes M]
 *       [--sizes 1024,102400,1048576] [--config key=value,...]
 *       [--only raw|raw+hdrs|kafkasink|floor|lists] [--json FILE]
 *
 * Three producers per size: "raw" (librdkafka's own producer idiom, payload
 * only), "raw+hdrs" (the same with the gst.* headers kafkasink writes, which
 * tells the cost of the message format from the cost of the element) and
 * "kafkasink" (appsrc ! kafkasink), plus "floor" (appsrc ! fakesink, the
 * same source and a sink that does nothing: what any GStreamer sink pays,
 * so that kafkasink's CPU above it compares with raw+hdrs), and "lists"
 * (appsrc pushing lists of LIST_LENGTH buffers ! kafkasink, as kafkasrc
 * buffer-list=true does: kafkasink renders a list at once). Each round runs
 * each once, in rotating
 * order, to a fresh topic deleted afterwards; the median round counts (by
 * throughput). Prints
 * messages/s, MB/s, CPU seconds per GB (user + system time of this process,
 * librdkafka's threads included) and the ratios. M megabytes of payload per
 * run. --json FILE also writes the figures as JSON for tests/bench/run. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/app/gstappsrc.h>
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
  /* Payload megabytes per measurement. */
  double mbytes = 256;
  std::vector<size_t> sizes = {1024, 100 * 1024, 1024 * 1024};
  /* Run only "raw", "raw+hdrs", "kafkasink", "floor" or "lists" (for
   * profiling); empty: all. */
  std::string only;
  /* Extra librdkafka settings, applied to both producers. */
  std::vector<std::pair<std::string, std::string>> config;
  const char *json = nullptr;
};

enum Producer
{
  RAW,
  RAW_HDRS,
  SINK,
  FLOOR,
  LISTS,
  N_PRODUCERS
};
const char *producer_names[N_PRODUCERS] = {"raw", "raw+hdrs", "kafkasink",
    "floor", "lists"};

/* Buffers per list of the "lists" producer: what kafkasrc buffer-list=true
 * pushes at most. */
constexpr size_t LIST_LENGTH = 8;

/* kafkasink's defaults (see gstkafkasink.cpp), which the raw producer must
 * share for the comparison to mean anything. */
const char *const sink_defaults[][2] = {{"enable.idempotence", "true"},
    {"acks", "all"}, {"message.max.bytes", "16777216"}, {"linger.ms", "5"}};

using bench::cpu_seconds;
using bench::now_seconds;
using bench::Result;

[[noreturn]] void
die (const char *what, const char *why)
{
  fprintf (stderr, "kafkasink-bench: %s: %s\n", what, why);
  exit (1);
}

rd_kafka_conf_t *
make_conf (const Settings &s)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  auto set = [&] (const char *k, const char *v) {
    if (rd_kafka_conf_set (conf, k, v, errstr, sizeof (errstr)) !=
        RD_KAFKA_CONF_OK)
      die (k, errstr);
  };
  set ("bootstrap.servers", s.brokers);
  for (auto &kv : sink_defaults)
    set (kv[0], kv[1]);
  for (auto &kv : s.config)
    set (kv.first.c_str (), kv.second.c_str ());
  return conf;
}

void
admin_topic (const Settings &s, const std::string &topic, bool create)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_conf_set (conf, "bootstrap.servers", s.brokers, errstr,
      sizeof (errstr));
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr,
      sizeof (errstr));
  if (!rk)
    die ("rd_kafka_new", errstr);
  rd_kafka_queue_t *q = rd_kafka_queue_new (rk);
  if (create) {
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new (topic.c_str (), 1, 1,
        errstr, sizeof (errstr));
    rd_kafka_CreateTopics (rk, &nt, 1, nullptr, q);
    rd_kafka_NewTopic_destroy (nt);
  } else {
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new (topic.c_str ());
    rd_kafka_DeleteTopics (rk, &dt, 1, nullptr, q);
    rd_kafka_DeleteTopic_destroy (dt);
  }
  rd_kafka_event_t *ev = rd_kafka_queue_poll (q, 60000);
  if (!ev)
    die (topic.c_str (), "no answer to CreateTopics/DeleteTopics");
  rd_kafka_event_destroy (ev);
  if (create) {
    /* Until the partition has a leader. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, topic.c_str (), nullptr);
    for (int i = 0; i < 200; i++) {
      const rd_kafka_metadata_t *md = nullptr;
      bool ready = false;
      if (rd_kafka_metadata (rk, 0, rkt, &md, 5000) == 0) {
        ready = md->topic_cnt == 1 && md->topics[0].err == 0 &&
                md->topics[0].partition_cnt == 1 &&
                md->topics[0].partitions[0].leader >= 0;
        rd_kafka_metadata_destroy (md);
      }
      if (ready)
        break;
      g_usleep (50 * 1000);
    }
    rd_kafka_topic_destroy (rkt);
  }
  rd_kafka_queue_destroy (q);
  rd_kafka_destroy (rk);
}

std::string
new_topic (const Settings &s, const char *what, size_t size)
{
  static int n = 0;
  std::string t = std::string ("bench-") + what + "-" + std::to_string (size) +
                  "-" + std::to_string (g_get_real_time ()) + "-" +
                  std::to_string (++n);
  admin_topic (s, t, true);
  return t;
}

size_t
message_count (const Settings &s, size_t size)
{
  return std::max<size_t> (10, size_t (s.mbytes * 1024 * 1024 / size));
}

/* librdkafka's own producer idiom (examples/producer.c): produce without
 * copy, serve delivery reports with poll(), flush at the end. */
struct RawCounts
{
  size_t delivered = 0;
  size_t failed = 0;
};

void
raw_dr (rd_kafka_t *, const rd_kafka_message_t *m, void *opaque)
{
  auto c = static_cast<RawCounts *> (opaque);
  if (m->err)
    c->failed++;
  else
    c->delivered++;
}

Result
run_raw (const Settings &s, size_t size, const std::vector<char> &payload,
    bool with_headers)
{
  std::string topic = new_topic (s, with_headers ? "rawhdr" : "raw", size);
  size_t n = message_count (s, size);
  RawCounts counts;
  char errstr[512];
  rd_kafka_conf_t *conf = make_conf (s);
  rd_kafka_conf_set_dr_msg_cb (conf, raw_dr);
  rd_kafka_conf_set_opaque (conf, &counts);
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr,
      sizeof (errstr));
  if (!rk)
    die ("rd_kafka_new", errstr);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, topic.c_str (), nullptr);

  double cpu0 = cpu_seconds (), t0 = now_seconds ();
  for (size_t i = 0; i < n; i++) {
    for (;;) {
      /* The headers kafkasink writes for these buffers (see
       * docs/message-format.md), to tell the format's cost from the
       * element's: the caps with the first message (then once a second,
       * which these runs hardly last), gst.buf with every one. */
      rd_kafka_headers_t *hdrs = nullptr;
      if (with_headers) {
        gstkafka::FrameInfo info;
        if (i == 0)
          info.caps = "application/octet-stream";
        info.pts = i * GST_MSECOND;
        info.flags = 0;
        info.session = 0x0123456789abcdef;
        info.seq = i;
        hdrs = rd_kafka_headers_new (2);
        gstkafka::headers_write (hdrs, info);
      }
      rd_kafka_resp_err_t err = rd_kafka_producev (rk, RD_KAFKA_V_RKT (rkt),
          RD_KAFKA_V_MSGFLAGS (0),
          RD_KAFKA_V_VALUE (const_cast<char *> (payload.data ()), size),
          RD_KAFKA_V_HEADERS (hdrs), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;
      if (hdrs)
        rd_kafka_headers_destroy (hdrs);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        die ("produce", rd_kafka_err2str (err));
      rd_kafka_poll (rk, 100);
    }
    rd_kafka_poll (rk, 0);
  }
  while (rd_kafka_outq_len (rk) > 0)
    rd_kafka_flush (rk, 1000);
  Result r;
  r.seconds = now_seconds () - t0;
  r.cpu = cpu_seconds () - cpu0;
  r.messages = counts.delivered;
  r.bytes = counts.delivered * size;
  if (counts.failed)
    die ("raw producer", "some messages were not delivered");

  rd_kafka_topic_destroy (rkt);
  rd_kafka_destroy (rk);
  admin_topic (s, topic, false);
  return r;
}

/* Feeds appsrc from its own streaming thread (need-data), like a source
 * element would: no hand-over between threads per buffer. */
struct Feeder
{
  const std::vector<char> *payload;
  size_t size;
  size_t count;
  size_t pushed;
  /* Buffers per list, 0 for one buffer at a time. */
  size_t list_length;
  GstBufferList *list;
};

void
feed (GstAppSrc *src, guint, gpointer data)
{
  auto f = static_cast<Feeder *> (data);
  /* About a megabyte per call, as the queue's max-bytes allows, in whole
   * lists. */
  size_t batch = std::max<size_t> (1, (1 << 20) / f->size);
  if (f->list_length)
    batch = (batch + f->list_length - 1) / f->list_length * f->list_length;
  for (size_t k = 0; k < batch && f->pushed < f->count; k++, f->pushed++) {
    /* A new buffer per message, over the same bytes as the raw producer. */
    GstBuffer *buf = gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_READONLY,
        const_cast<char *> (f->payload->data ()), f->size, 0, f->size, nullptr,
        nullptr);
    GST_BUFFER_PTS (buf) = f->pushed * GST_MSECOND;
    if (!f->list_length) {
      gst_app_src_push_buffer (src, buf);
      continue;
    }
    if (!f->list)
      f->list = gst_buffer_list_new_sized (f->list_length);
    gst_buffer_list_add (f->list, buf);
    if (gst_buffer_list_length (f->list) == f->list_length) {
      gst_app_src_push_buffer_list (src, f->list);
      f->list = nullptr;
    }
  }
  /* appsrc waits for data after need-data: a short list goes too. */
  if (f->list) {
    gst_app_src_push_buffer_list (src, f->list);
    f->list = nullptr;
  }
  if (f->pushed == f->count)
    gst_app_src_end_of_stream (src);
}

/* appsrc ! kafkasink, or with @floor appsrc ! fakesink: what the same
 * source and a sink doing nothing cost, the part of kafkasink's figures that
 * any GStreamer sink would pay. appsrc pushes lists of @list_length buffers,
 * or single buffers with 0. */
Result
run_sink (const Settings &s, size_t size, const std::vector<char> &payload,
    bool floor, size_t list_length)
{
  std::string topic = floor ? "" : new_topic (s, "sink", size);
  size_t n = message_count (s, size);

  GstElement *pipeline = gst_pipeline_new ("bench");
  GstElement *src = gst_element_factory_make ("appsrc", nullptr);
  GstElement *sink = gst_element_factory_make (floor ? "fakesink" : "kafkasink",
      nullptr);
  if (!src || !sink)
    die ("gst_element_factory_make", "appsrc, kafkasink or fakesink missing");
  GstCaps *caps = gst_caps_new_empty_simple ("application/octet-stream");
  g_object_set (src, "caps", caps, "format", GST_FORMAT_TIME, "max-bytes",
      guint64 (std::max<size_t> (2 * size, 2 << 20)), nullptr);
  gst_caps_unref (caps);
  if (floor)
    g_object_set (sink, "sync", FALSE, "enable-last-sample", FALSE, nullptr);
  else
    g_object_set (sink, "brokers", s.brokers, "topic", topic.c_str (), "sync",
        FALSE, nullptr);
  if (!floor && !s.config.empty ()) {
    GstStructure *config = gst_structure_new_empty ("kafka");
    for (auto &kv : s.config)
      gst_structure_set (config, kv.first.c_str (), G_TYPE_STRING,
          kv.second.c_str (), nullptr);
    g_object_set (sink, "config", config, nullptr);
    gst_structure_free (config);
  }
  gst_bin_add_many (GST_BIN (pipeline), src, sink, nullptr);
  gst_element_link (src, sink);
  Feeder feeder{&payload, size, n, 0, list_length, nullptr};
  GstAppSrcCallbacks callbacks = {};
  callbacks.need_data = feed;
  gst_app_src_set_callbacks (GST_APP_SRC (src), &callbacks, &feeder, nullptr);
  /* The producer is created in READY, as the raw one before its timer. */
  if (gst_element_set_state (pipeline, GST_STATE_READY) ==
      GST_STATE_CHANGE_FAILURE)
    die ("kafkasink", "could not start the pipeline");

  double cpu0 = cpu_seconds (), t0 = now_seconds ();
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GstMessageType (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  Result r;
  r.seconds = now_seconds () - t0;
  r.cpu = cpu_seconds () - cpu0;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error (msg, &err, nullptr);
    die ("kafkasink", err->message);
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  guint64 delivered = n, bytes = n * size;
  if (!floor)
    g_object_get (sink, "messages-delivered", &delivered, "bytes-delivered",
        &bytes, nullptr);
  r.messages = delivered;
  r.bytes = bytes;
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  if (floor)
    return r;
  admin_topic (s, topic, false);
  if (delivered != n)
    die ("kafkasink", "not every message was delivered");
  return r;
}

/* kafkasink's CPU per GB less that of the same pipeline with fakesink: its
 * own share, to compare with the raw producer writing the same headers. */
double
above_floor (const bench::Contenders &c)
{
  return c.median (SINK).cpu_per_gb () - c.median (FLOOR).cpu_per_gb ();
}

/* One size's figures: kafkasink against raw (the goal), against raw+hdrs
 * (the element's own cost), and CPU per GB, also above the pipeline
 * floor. */
void
json_size (bench::Json &json, size_t size, const bench::Contenders &c)
{
  auto mbs = &Result::mb_per_s;
  auto cpu = &Result::cpu_per_gb;
  c.figure (json, "produce MB/s", SINK, RAW, mbs, "MB/s");
  c.figure (json, "lists of 8: produce MB/s", LISTS, RAW, mbs, "MB/s");
  c.figure (json, "lists of 8: produce CPU s/GB", LISTS, RAW, cpu, "s/GB");
  c.figure (json, "produce MB/s vs raw+hdrs", SINK, RAW_HDRS, mbs, "MB/s");
  c.figure (json, "raw+hdrs MB/s", RAW_HDRS, RAW, mbs, "MB/s");
  c.figure (json, "produce CPU s/GB", SINK, RAW, cpu, "s/GB");
  c.figure (json, "pipeline floor CPU s/GB", FLOOR, SINK, cpu, "s/GB");
  if (c.wanted (FLOOR) && c.wanted (SINK) && c.wanted (RAW_HDRS))
    json.figure ("produce CPU s/GB above the floor", size, above_floor (c),
        c.median (RAW_HDRS).cpu_per_gb (), "raw+hdrs", "s/GB");
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
      if (!bench::Contenders::known (producer_names, N_PRODUCERS, v))
        die ("--only", "expected raw, raw+hdrs, kafkasink, floor or lists");
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
          "raw|raw+hdrs|kafkasink|floor] [--json FILE]\n",
          argv[0]);
      exit (2);
    }
  }
  return s;
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  Settings s = parse_args (argc, argv);
  if (!s.brokers || !*s.brokers) {
    fprintf (stderr, "KAFKA_BROKERS is not set: run through "
                     "tests/bench/kafkasink/run-bench or kafka-local run\n");
    return 77;
  }

  printf ("kafkasink-bench: librdkafka %s, GStreamer %s, broker %s\n",
      rd_kafka_version_str (), gst_version_string (), s.brokers);
  printf ("config: enable.idempotence=true acks=all linger.ms=5 "
          "message.max.bytes=16777216");
  for (auto &kv : s.config)
    printf (" %s=%s", kv.first.c_str (), kv.second.c_str ());
  printf ("; median of %d rounds, ratios the median of the rounds' "
          "ratios\n\n",
      s.rounds);
  printf ("%9s %-10s %9s %12s %10s %12s\n", "size", "producer", "messages",
      "msgs/s", "MB/s", "CPU s/GB");

  bench::Goal goal;
  bench::Json json;
  if (!json.open (s.json, "kafkasink", s.rounds, s.mbytes))
    die (s.json, g_strerror (errno));
  for (size_t size : s.sizes) {
    std::vector<char> payload (size);
    for (size_t i = 0; i < size; i++)
      payload[i] = char (i * 131 + 7);
    bench::Contenders c (producer_names, N_PRODUCERS, s.only, size);
    c.run (s.rounds, [&] (int which) {
      if (which == RAW || which == RAW_HDRS)
        return run_raw (s, size, payload, which == RAW_HDRS);
      return run_sink (s, size, payload, which == FLOOR,
          which == LISTS ? LIST_LENGTH : 0);
    });
    c.print (false);
    /* Ratios: medians of the rounds' ratios (bench::paired_ratio()). */
    c.print_ratios (SINK, RAW);
    c.print_ratios (SINK, RAW_HDRS);
    c.print_ratios (LISTS, RAW);
    printf ("\n");
    goal.check (c, SINK, RAW);
    if (c.wanted (RAW_HDRS) && c.wanted (SINK) && c.wanted (FLOOR))
      printf ("%9zu CPU s/GB: pipeline floor %.2f, kafkasink above it %.2f, "
              "raw+hdrs %.2f\n\n",
          size, c.median (FLOOR).cpu_per_gb (), above_floor (c),
          c.median (RAW_HDRS).cpu_per_gb ());
    json_size (json, size, c);
    fflush (stdout);
  }
  goal.print ();
  return 0;
}
