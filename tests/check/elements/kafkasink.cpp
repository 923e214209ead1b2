/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kafkasink against a real broker: what it writes is read back with kcat and
 * with a plain librdkafka consumer, and the failures a user meets (bad
 * settings, a missing topic, no broker, a broker that restarts, frames too
 * large, a full queue) end in the errors they should. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "gstkafkacommon.h"
#include "gstkafkatest.h"

#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

using gstkafka::FrameInfo;

/* --- Helpers ------------------------------------------------------------- */

static GstElement *
new_sink (const std::string &topic, const char *config = nullptr,
    const char *brokers = nullptr)
{
  GstElement *sink = gst_element_factory_make ("kafkasink", nullptr);
  fail_unless (sink != nullptr);
  gst_object_ref_sink (sink);
  g_object_set (sink, "brokers", brokers ? brokers : kafkatest::brokers (),
      "topic", topic.c_str (), nullptr);
  if (config) {
    GstStructure *s = gst_structure_from_string (config, nullptr);
    fail_unless (s != nullptr, "bad test config %s", config);
    g_object_set (sink, "config", s, nullptr);
    gst_structure_free (s);
  }
  return sink;
}

/* A kafkasink driven buffer by buffer from the test thread. */
struct SinkHarness
{
  GstElement *sink;
  GstHarness *h;
  GstBus *bus;

  explicit SinkHarness (GstElement *element, const char *caps = "video/x-test")
  {
    sink = element;
    bus = gst_bus_new ();
    gst_element_set_bus (sink, bus);
    /* push() returns once the buffer is rendered. */
    g_object_set (sink, "async", FALSE, nullptr);
    h = gst_harness_new_with_element (sink, "sink", nullptr);
    if (caps) {
      gst_harness_set_src_caps_str (h, caps);
    } else {
      /* What gst_harness_set_src_caps() sends, less the caps. */
      GstSegment segment;
      gst_segment_init (&segment, GST_FORMAT_TIME);
      gst_harness_push_event (h, gst_event_new_stream_start ("no-caps"));
      gst_harness_push_event (h, gst_event_new_segment (&segment));
    }
  }
  ~SinkHarness ()
  {
    gst_harness_teardown (h);
    gst_element_set_bus (sink, nullptr);
    gst_object_unref (bus);
    gst_object_unref (sink);
  }
  GstFlowReturn push (GstBuffer *buf)
  {
    return gst_harness_push (h, buf);
  }
  bool eos ()
  {
    return gst_harness_push_event (h, gst_event_new_eos ());
  }
  /* End-of-stream, then its message: every message was delivered. */
  void finish ()
  {
    fail_unless (eos ());
    GstMessage *msg = pop (GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
    gst_message_unref (msg);
  }
  /* The next message of @types, or nullptr after @seconds. */
  GstMessage *pop (int types, int seconds = 60)
  {
    return gst_bus_timed_pop_filtered (bus, seconds * GST_SECOND,
        GstMessageType (types));
  }
  guint64 stat (const char *name)
  {
    guint64 v;
    g_object_get (sink, name, &v, nullptr);
    return v;
  }
};

/* Payload byte @i of buffer @seq: never 0, so kcat's output survives. */
static guint8
pattern_byte (guint seq, gsize i)
{
  return guint8 (1 + (seq * 31 + i * 7 + i / 251) % 255);
}

static GstBuffer *
make_buffer (guint seq, gsize size)
{
  GstBuffer *buf = gst_buffer_new_allocate (nullptr, size, nullptr);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < size; i++)
    map.data[i] = pattern_byte (seq, i);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = seq * 40 * GST_MSECOND;
  GST_BUFFER_DTS (buf) = seq * 40 * GST_MSECOND;
  GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
  if (seq % 5 != 0)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  if (seq == 0)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  return buf;
}

static std::string
expected_payload (guint seq, gsize size)
{
  std::string s (size, '\0');
  for (gsize i = 0; i < size; i++)
    s[i] = char (pattern_byte (seq, i));
  return s;
}

/* One message as a consumer sees it. */
struct Record
{
  gint32 partition;
  gint64 offset;
  std::string payload;
  bool null_value;
  std::string key;
  gint64 timestamp;
  FrameInfo info;
  std::string caps;
};

/* Every message of @topic, partition by partition in offset order, read
 * with a plain librdkafka consumer. */
static std::vector<Record>
consume_all (const std::string &topic, const char *brokers = nullptr)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  std::string group = "kafkasink-test-" + topic;
  const char *settings[][2] = {{"bootstrap.servers",
                                   brokers ? brokers : kafkatest::brokers ()},
      {"group.id", group.c_str ()}, {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"}, {"auto.offset.reset", "earliest"}};
  for (auto &kv : settings)
    fail_unless (rd_kafka_conf_set (conf, kv[0], kv[1], errstr,
                     sizeof (errstr)) == RD_KAFKA_CONF_OK);
  gstkafka::Handle rk (
      rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof (errstr)));
  fail_unless (rk != nullptr, "%s", errstr);

  const rd_kafka_metadata_t *md = nullptr;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk.get (), topic.c_str (),
      nullptr);
  fail_unless (rd_kafka_metadata (rk.get (), 0, rkt, &md, 10000) ==
               RD_KAFKA_RESP_ERR_NO_ERROR);
  fail_unless_equals_int (md->topic_cnt, 1);
  int partitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy (md);
  rd_kafka_topic_destroy (rkt);
  fail_unless (partitions > 0, "topic %s has no partitions", topic.c_str ());

  gstkafka::TopicPartitionList tpl (
      rd_kafka_topic_partition_list_new (partitions));
  for (int p = 0; p < partitions; p++)
    rd_kafka_topic_partition_list_add (tpl.get (), topic.c_str (), p)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  fail_unless (
      rd_kafka_assign (rk.get (), tpl.get ()) == RD_KAFKA_RESP_ERR_NO_ERROR);

  std::map<gint32, std::vector<Record>> by_partition;
  std::set<gint32> at_end;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (
      int (at_end.size ()) < partitions && g_get_monotonic_time () < deadline) {
    gstkafka::Message m (rd_kafka_consumer_poll (rk.get (), 200));
    if (!m)
      continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert (m->partition);
      continue;
    }
    fail_unless (m->err == RD_KAFKA_RESP_ERR_NO_ERROR, "consume: %s",
        rd_kafka_message_errstr (m.get ()));
    Record r;
    r.partition = m->partition;
    r.offset = m->offset;
    r.null_value = m->payload == nullptr;
    r.payload.assign (static_cast<const char *> (m->payload), m->len);
    if (m->key)
      r.key.assign (static_cast<const char *> (m->key), m->key_len);
    r.timestamp = rd_kafka_message_timestamp (m.get (), nullptr);
    std::string problems;
    fail_unless (gstkafka::headers_read (m.get (), r.info, problems), "%s",
        problems.c_str ());
    if (r.info.caps)
      r.caps.assign (r.info.caps, r.info.caps_len);
    r.info.caps = nullptr;
    by_partition[r.partition].push_back (std::move (r));
  }
  fail_unless_equals_int (int (at_end.size ()), partitions);
  rd_kafka_consumer_close (rk.get ());

  std::vector<Record> all;
  for (auto &kv : by_partition)
    for (auto &r : kv.second)
      all.push_back (std::move (r));
  return all;
}

/* The payloads of @topic's partition 0 as kcat prints them. */
static std::vector<std::string>
kcat_payloads (const std::string &topic)
{
  std::string out, err;
  int rc = kafkatest::run ({"kcat", "-b", kafkatest::brokers (), "-C", "-t",
                               topic.c_str (), "-p", "0", "-o", "beginning",
                               "-e", "-q", "-f", "%S:%s"},
      &out, &err);
  fail_unless_equals_int (rc, 0);
  std::vector<std::string> payloads;
  size_t pos = 0;
  while (pos < out.size ()) {
    size_t colon = out.find (':', pos);
    fail_unless (colon != std::string::npos);
    size_t len = std::stoul (out.substr (pos, colon - pos));
    fail_unless (colon + 1 + len <= out.size ());
    payloads.push_back (out.substr (colon + 1, len));
    pos = colon + 1 + len;
  }
  return payloads;
}

/* kcat's JSON view of @topic: one line per message. */
static std::vector<std::string>
kcat_json_lines (const std::string &topic)
{
  std::string out, err;
  int rc = kafkatest::run ({"kcat", "-b", kafkatest::brokers (), "-C", "-t",
                               topic.c_str (), "-o", "beginning", "-e", "-q",
                               "-J"},
      &out, &err);
  fail_unless_equals_int (rc, 0);
  std::vector<std::string> lines;
  g_auto (GStrv) parts = g_strsplit (out.c_str (), "\n", -1);
  for (guint i = 0; parts[i]; i++)
    if (parts[i][0])
      lines.push_back (parts[i]);
  return lines;
}

static void
check_error (GstMessage *msg, GQuark domain, int code,
    std::initializer_list<const char *> words)
{
  fail_unless (msg != nullptr, "no error message");
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_ERROR);
  GError *err = nullptr;
  gchar *debug = nullptr;
  gst_message_parse_error (msg, &err, &debug);
  GST_INFO ("error: %s (%s)", err->message, debug);
  fail_unless (err->domain == domain && err->code == code,
      "unexpected error %s %d: %s", g_quark_to_string (err->domain), err->code,
      err->message);
  for (const char *w : words)
    fail_unless (strstr (err->message, w) != nullptr,
        "error '%s' does not mention '%s'", err->message, w);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
}

static bool
message_mentions (GstMessage *msg, const char *word)
{
  GError *err = nullptr;
  gchar *debug = nullptr;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
    gst_message_parse_warning (msg, &err, &debug);
  else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_INFO)
    gst_message_parse_info (msg, &err, &debug);
  else
    gst_message_parse_error (msg, &err, &debug);
  GST_INFO ("%s: %s", GST_MESSAGE_TYPE_NAME (msg), err->message);
  bool found = strstr (err->message, word) != nullptr;
  g_error_free (err);
  g_free (debug);
  return found;
}

/* A local port where nothing listens. */
static std::string
closed_port_address ()
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  fail_unless (fd >= 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fail_unless (
      bind (fd, reinterpret_cast<sockaddr *> (&addr), sizeof (addr)) == 0);
  socklen_t len = sizeof (addr);
  fail_unless (
      getsockname (fd, reinterpret_cast<sockaddr *> (&addr), &len) == 0);
  close (fd);
  return "127.0.0.1:" + std::to_string (ntohs (addr.sin_port));
}

/* Creates @topic with one topic-level setting. */
static void
create_topic_with_config (const std::string &topic, const char *key,
    const char *value)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_conf_set (conf, "bootstrap.servers", kafkatest::brokers (), errstr,
      sizeof (errstr));
  gstkafka::Handle rk (
      rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof (errstr)));
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new (topic.c_str (), 1, 1, errstr,
      sizeof (errstr));
  rd_kafka_NewTopic_set_config (nt, key, value);
  gstkafka::Queue q (rd_kafka_queue_new (rk.get ()));
  rd_kafka_CreateTopics (rk.get (), &nt, 1, nullptr, q.get ());
  gstkafka::Event ev (rd_kafka_queue_poll (q.get (), 30000));
  fail_unless (ev != nullptr);
  size_t n;
  const rd_kafka_topic_result_t **res =
      rd_kafka_CreateTopics_result_topics (rd_kafka_event_CreateTopics_result (
                                               ev.get ()),
          &n);
  fail_unless (n == 1 && rd_kafka_topic_result_error (res[0]) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR,
      "CreateTopics: %s", n ? rd_kafka_topic_result_error_string (res[0]) : "");
  rd_kafka_NewTopic_destroy (nt);
  /* Wait for the leader, like kafkatest::create_topic. */
  fail_unless (kafkatest::create_topic (topic));
}

/* --- Delivery ------------------------------------------------------------ */

GST_START_TEST (test_round_trip)
{
  const guint n = 40;
  std::string topic = kafkatest::unique_topic ("sink-roundtrip");
  fail_unless (kafkatest::create_topic (topic));
  GstElement *sink = new_sink (topic);
  g_object_set (sink, "key", "camera-1", nullptr);
  const char *caps = "video/x-test, width=(int)320, height=(int)240";
  const GstClockTime unix_ts = G_GUINT64_CONSTANT (1600000000123) * GST_MSECOND;
  std::vector<gsize> sizes;
  guint64 total = 0;
  {
    SinkHarness sh (sink, caps);
    GstCaps *unix_caps = gst_caps_new_empty_simple ("timestamp/x-unix");
    for (guint i = 0; i < n; i++) {
      gsize size = 1 + i * 5003;
      sizes.push_back (size);
      total += size;
      GstBuffer *buf = make_buffer (i, size);
      if (i == n - 1)
        gst_buffer_add_reference_timestamp_meta (buf, unix_caps, unix_ts,
            GST_CLOCK_TIME_NONE);
      fail_unless_equals_int (sh.push (buf), GST_FLOW_OK);
    }
    gst_caps_unref (unix_caps);
    sh.finish ();

    /* EOS came after every acknowledgement. */
    fail_unless_equals_uint64 (sh.stat ("messages-delivered"), n);
    fail_unless_equals_uint64 (sh.stat ("bytes-delivered"), total);
    fail_unless_equals_uint64 (sh.stat ("messages-queued"), 0);
    fail_unless_equals_uint64 (sh.stat ("bytes-queued"), 0);
    fail_unless_equals_uint64 (sh.stat ("messages-failed"), 0);
    fail_unless (GST_CLOCK_TIME_IS_VALID (sh.stat ("last-delivery-latency")));
    GstStructure *stats = nullptr;
    g_object_get (sink, "stats", &stats, nullptr);
    guint64 delivered = 0;
    fail_unless (
        gst_structure_get_uint64 (stats, "messages-delivered", &delivered));
    fail_unless_equals_uint64 (delivered, n);
    gst_structure_free (stats);
  }

  /* Any client sees exactly the buffers' bytes, in order. */
  std::vector<std::string> payloads = kcat_payloads (topic);
  fail_unless_equals_int (payloads.size (), n);
  for (guint i = 0; i < n; i++)
    fail_unless (payloads[i] == expected_payload (i, sizes[i]),
        "payload %u differs", i);
  std::vector<std::string> lines = kcat_json_lines (topic);
  fail_unless_equals_int (lines.size (), n);
  for (auto &l : lines)
    fail_unless (l.find ("\"gst.buf\"") != std::string::npos, "no gst.buf");
  fail_unless (lines[0].find ("\"gst.caps\"") != std::string::npos);

  /* The headers carry what kafkasrc needs. */
  std::vector<Record> records = consume_all (topic);
  fail_unless_equals_int (records.size (), n);
  guint with_caps = 0;
  for (guint i = 0; i < n; i++) {
    const Record &r = records[i];
    fail_unless_equals_int (r.offset, i);
    fail_unless_equals_string (r.key.c_str (), "camera-1");
    fail_unless (r.info.has_seq && r.info.seq == i);
    fail_unless (r.info.has_session);
    fail_unless (r.info.session == records[0].info.session);
    fail_unless_equals_uint64 (r.info.pts, i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (r.info.dts, i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (r.info.duration, 40 * GST_MSECOND);
    guint32 flags = (i % 5 ? GST_BUFFER_FLAG_DELTA_UNIT : 0) |
                    (i == 0 ? GST_BUFFER_FLAG_DISCONT : 0);
    fail_unless_equals_int (r.info.flags, flags);
    fail_if (r.info.eos);
    if (i % 5 == 0)
      fail_unless_equals_string (r.caps.c_str (), caps);
    with_caps += !r.caps.empty ();
    /* Kafka timestamps follow the running time... */
    if (i > 0 && i < n - 1)
      fail_unless_equals_int64 (r.timestamp - records[0].timestamp,
          gint64 (i) * 40);
  }
  /* ...or the buffer's reference timestamp. */
  fail_unless_equals_int64 (records[n - 1].timestamp, 1600000000123);
  /* Delta units do not repeat the caps. */
  fail_unless (with_caps < n);
}

GST_END_TEST;

/* Buffer lists (kafkasrc buffer-list=true, RTP payloaders, appsrc) are
 * rendered at once, and every buffer is still a message of its own, with
 * its own timestamps, flags and sequence number. */
GST_START_TEST (test_buffer_lists)
{
  const guint lengths[] = {1, 5, 8, 2, 13};
  std::string topic = kafkatest::unique_topic ("sink-lists");
  fail_unless (kafkatest::create_topic (topic));
  GstElement *sink = new_sink (topic);
  const char *caps = "video/x-test, width=(int)320, height=(int)240";
  guint n = 0;
  {
    SinkHarness sh (sink, caps);
    for (guint len : lengths) {
      if (n == 0) {
        /* The first one alone: the harness sends its sticky events. */
        fail_unless_equals_int (sh.push (make_buffer (n++, 100)), GST_FLOW_OK);
        continue;
      }
      GstBufferList *list = gst_buffer_list_new_sized (len);
      for (guint i = 0; i < len; i++, n++)
        gst_buffer_list_add (list, make_buffer (n, 100 + n));
      fail_unless_equals_int (gst_pad_push_list (sh.h->srcpad, list),
          GST_FLOW_OK);
    }
    sh.finish ();
    fail_unless_equals_uint64 (sh.stat ("messages-delivered"), n);
  }

  std::vector<Record> records = consume_all (topic);
  fail_unless_equals_int (records.size (), n);
  for (guint i = 0; i < n; i++) {
    const Record &r = records[i];
    fail_unless (r.payload == expected_payload (i, i == 0 ? 100 : 100 + i),
        "payload %u differs", i);
    fail_unless (r.info.has_seq && r.info.seq == i);
    fail_unless_equals_uint64 (r.info.pts, i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (r.info.duration, 40 * GST_MSECOND);
    fail_unless_equals_int (r.info.flags & GST_BUFFER_FLAG_DELTA_UNIT,
        i % 5 ? GST_BUFFER_FLAG_DELTA_UNIT : 0);
    /* 100-byte keyframes are too small to carry the caps each time. */
    if (r.caps.empty ()) {
      fail_unless (i > 0 && r.info.caps_elsewhere, "message %u", i);
    } else {
      fail_unless_equals_string (r.caps.c_str (), caps);
    }
    if (i > 0)
      fail_unless_equals_int64 (r.timestamp - records[0].timestamp,
          gint64 (i) * 40);
  }
}

GST_END_TEST;

/* A recording copied to another topic with kafkasrc buffer-list=true !
 * kafkasink: kafkasink renders kafkasrc's lists, and the copy carries the
 * same payloads, timing, flags and caps, in order. */
GST_START_TEST (test_copy_topic)
{
  const guint n = 60;
  std::string from = kafkatest::unique_topic ("sink-copy-from");
  fail_unless (kafkatest::create_topic (from));
  const char *caps = "video/x-test, width=(int)320, height=(int)240";
  {
    SinkHarness sh (new_sink (from), caps);
    for (guint i = 0; i < n; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 500 + i)), GST_FLOW_OK);
    sh.finish ();
  }

  /* Twice: kafkasink stamps the copies from their running time, or, with
   * kafkasrc's reference timestamps, with the originals' Kafka timestamps. */
  for (bool meta : {false, true}) {
    std::string to = kafkatest::unique_topic ("sink-copy-to");
    fail_unless (kafkatest::create_topic (to));
    std::string desc = std::string ("kafkasrc brokers=") +
                       kafkatest::brokers () + " topic=" + from +
                       " is-live=false stop-at=end buffer-list=true" +
                       (meta ? " add-reference-timestamp-meta=true" : "") +
                       " ! kafkasink name=sink sync=false brokers=" +
                       kafkatest::brokers () + " topic=" + to;
    GError *error = nullptr;
    GstElement *pipeline = gst_parse_launch (desc.c_str (), &error);
    fail_unless (pipeline != nullptr, "%s", error ? error->message : "");
    fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
                 GST_STATE_CHANGE_FAILURE);
    GstBus *bus = gst_element_get_bus (pipeline);
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GstMessageType (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    fail_unless (msg != nullptr, "the copy did not finish");
    fail_unless (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS, "copy failed");
    gst_message_unref (msg);
    gst_object_unref (bus);
    GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
    guint64 delivered = 0;
    g_object_get (sink, "messages-delivered", &delivered, nullptr);
    fail_unless_equals_uint64 (delivered, n);
    gst_object_unref (sink);
    gst_element_set_state (pipeline, GST_STATE_NULL);
    gst_object_unref (pipeline);

    std::vector<Record> a = consume_all (from), b = consume_all (to);
    fail_unless_equals_int (b.size (), n);
    const guint32 flags_seen = GST_BUFFER_FLAG_DELTA_UNIT;
    for (guint i = 0; i < n; i++) {
      fail_unless (b[i].payload == a[i].payload, "payload %u differs", i);
      fail_unless (b[i].info.has_seq && b[i].info.seq == i);
      fail_unless (b[i].info.session == b[0].info.session);
      fail_unless_equals_uint64 (b[i].info.pts - b[0].info.pts,
          a[i].info.pts - a[0].info.pts);
      fail_unless_equals_uint64 (b[i].info.duration, a[i].info.duration);
      fail_unless_equals_int (b[i].info.flags & flags_seen,
          a[i].info.flags & flags_seen);
      if (!a[i].caps.empty ())
        fail_unless_equals_string (b[i].caps.c_str (), caps);
      if (meta) {
        fail_unless_equals_int64 (b[i].timestamp, a[i].timestamp);
      } else {
        fail_unless_equals_int64 (b[i].timestamp - b[0].timestamp,
            a[i].timestamp - a[0].timestamp);
      }
    }
    /* A copy is a producer session of its own. */
    fail_unless (b[0].info.session != a[0].info.session);
  }
}

GST_END_TEST;

GST_START_TEST (test_eos_marker_and_sessions)
{
  std::string topic = kafkatest::unique_topic ("sink-eos-marker");
  fail_unless (kafkatest::create_topic (topic));
  for (int run = 0; run < 2; run++) {
    GstElement *sink = new_sink (topic);
    g_object_set (sink, "eos-marker", run == 0, nullptr);
    SinkHarness sh (sink);
    for (guint i = 0; i < 3; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 100)), GST_FLOW_OK);
    sh.finish ();
  }

  std::vector<Record> r = consume_all (topic);
  fail_unless_equals_int (r.size (), 7);
  /* First run: three frames and the marker, an empty (not null) value. */
  for (guint i = 0; i < 4; i++) {
    fail_unless_equals_uint64 (r[i].info.seq, i);
    fail_unless (r[i].info.session == r[0].info.session);
  }
  fail_unless (r[3].info.eos);
  fail_unless (r[3].payload.empty ());
  fail_unless_equals_int (r[3].info.flags, 0);
  fail_if (GST_CLOCK_TIME_IS_VALID (r[3].info.pts));
  /* Second run: a new session, counting from 0 again, no marker. */
  fail_unless (r[4].info.session != r[0].info.session);
  for (guint i = 4; i < 7; i++) {
    fail_unless_equals_uint64 (r[i].info.seq, i - 4);
    fail_if (r[i].info.eos);
  }
  /* Each session starts with the caps, whatever the flags. */
  fail_unless_equals_string (r[4].caps.c_str (), "video/x-test");
}

GST_END_TEST;

GST_START_TEST (test_caps_change)
{
  std::string topic = kafkatest::unique_topic ("sink-caps-change");
  fail_unless (kafkatest::create_topic (topic));
  GstElement *sink = new_sink (topic);
  {
    SinkHarness sh (sink, "video/x-test, width=(int)1");
    /* Delta units: only the first of each caps carries them. */
    for (guint i = 1; i <= 2; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 10)), GST_FLOW_OK);
    gst_harness_set_src_caps_str (sh.h, "video/x-test, width=(int)2");
    for (guint i = 3; i <= 4; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 10)), GST_FLOW_OK);
    sh.finish ();
  }
  std::vector<Record> r = consume_all (topic);
  fail_unless_equals_int (r.size (), 4);
  fail_unless_equals_string (r[0].caps.c_str (), "video/x-test, width=(int)1");
  fail_unless_equals_string (r[2].caps.c_str (), "video/x-test, width=(int)2");
  fail_unless (r[1].caps.empty () && r[3].caps.empty ());
  for (guint i = 0; i < 4; i++)
    fail_unless (r[i].info.flags & GST_BUFFER_FLAG_DELTA_UNIT);

  /* Delta units pushed much faster than their timestamps run (a file
   * produced with sync=false): the caps still come once per second of the
   * timestamps, so a consumer that starts between two keyframes far apart
   * waits no longer than that for them. */
  topic = kafkatest::unique_topic ("sink-caps-interval");
  fail_unless (kafkatest::create_topic (topic));
  {
    SinkHarness sh (new_sink (topic), "video/x-test");
    for (guint i = 0; i < 80; i++) {
      GstBuffer *buf = make_buffer (i, 10);
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
      fail_unless_equals_int (sh.push (buf), GST_FLOW_OK);
    }
    sh.finish ();
  }
  r = consume_all (topic);
  fail_unless_equals_int (r.size (), 80);
  /* Frames 40 ms apart: 25 per second. */
  for (guint i = 0; i < 80; i++) {
    fail_unless_equals_int (!r[i].caps.empty (), i % 25 == 0);
    /* The others say that the stream has caps. */
    fail_unless_equals_int (r[i].info.caps_elsewhere, i % 25 != 0);
  }

  /* Keyframes carry the caps as long as the caps are at most 1/16 of what
   * was produced since they last travelled, and 100 ms passed since: with
   * one 1,000-byte frame in five (every 100 ms), with one 20-byte packet
   * in 24. */
  const char *audio_caps = "audio/x-test, rate=(int)48000";
  const gsize budget = 16 * strlen (audio_caps);
  topic = kafkatest::unique_topic ("sink-caps-budget");
  fail_unless (kafkatest::create_topic (topic));
  {
    SinkHarness sh (new_sink (topic), audio_caps);
    for (guint i = 0; i < 90; i++) {
      gsize size = i < 60 ? 20 : 1000;
      GstBuffer *buf = make_buffer (i, size);
      GST_BUFFER_FLAG_UNSET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
      GST_BUFFER_PTS (buf) = i * 20 * GST_MSECOND;
      fail_unless_equals_int (sh.push (buf), GST_FLOW_OK);
    }
    sh.finish ();
  }
  r = consume_all (topic);
  fail_unless_equals_int (r.size (), 90);
  gsize since = 0;
  GstClockTime last_pts = 0;
  guint with_caps = 0;
  for (guint i = 0; i < 90; i++) {
    GstClockTime pts = i * 20 * GST_MSECOND;
    bool expected = i == 0 ||
                    (since >= budget && pts - last_pts >= 100 * GST_MSECOND) ||
                    pts - last_pts >= GST_SECOND;
    fail_unless_equals_int (!r[i].caps.empty (), expected);
    fail_unless_equals_int (r[i].info.caps_elsewhere, !expected);
    if (expected) {
      fail_unless_equals_string (r[i].caps.c_str (), audio_caps);
      since = 0;
      last_pts = pts;
      with_caps++;
    }
    since += r[i].payload.size ();
  }
  /* 20-byte packets: the caps with every 24th (0, 24, 48); then with the
   * 1,000-byte frames 61, 66, ..., 86: the first one follows 12 small
   * packets. */
  fail_unless_equals_int (with_caps, 3 + 6);

  /* A stream without caps: nothing to wait for. */
  topic = kafkatest::unique_topic ("sink-no-caps");
  fail_unless (kafkatest::create_topic (topic));
  {
    SinkHarness sh (new_sink (topic), nullptr);
    for (guint i = 0; i < 3; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 10)), GST_FLOW_OK);
    sh.finish ();
  }
  r = consume_all (topic);
  fail_unless_equals_int (r.size (), 3);
  for (const Record &rec : r)
    fail_unless (rec.caps.empty () && !rec.info.caps_elsewhere);
}

GST_END_TEST;

static void
release_notify (gpointer data)
{
  static_cast<std::atomic<int> *> (data)->fetch_add (1);
}

GST_START_TEST (test_zero_copy)
{
  const gsize size = 100000;
  std::string topic = kafkatest::unique_topic ("sink-zerocopy");
  fail_unless (kafkatest::create_topic (topic));
  /* A long linger keeps the message in librdkafka's queue until EOS. */
  GstElement *sink = new_sink (topic, "kafka, linger.ms=60000");
  g_object_set (sink, "enable-last-sample", FALSE, nullptr);
  std::vector<guint8> data (size, 'a');
  std::atomic<int> released{0};
  {
    SinkHarness sh (sink);
    GstBuffer *buf = gst_buffer_new_wrapped_full (GstMemoryFlags (0),
        data.data (), size, 0, size, &released, release_notify);
    fail_unless_equals_int (sh.push (buf), GST_FLOW_OK);
    /* kafkasink holds the buffer until the broker acknowledges it. */
    fail_unless_equals_int (released.load (), 0);
    fail_unless_equals_uint64 (sh.stat ("bytes-queued"), size);

    /* librdkafka reads the frame from the buffer's own memory when it sends
     * it: changing that memory now changes what the broker gets. Nothing
     * may do this in a real pipeline; here it proves there was no copy. */
    memset (data.data (), 'b', size);

    sh.finish ();
    /* ...and releases it once delivered. */
    fail_unless_equals_int (released.load (), 1);
  }
  std::vector<Record> r = consume_all (topic);
  fail_unless_equals_int (r.size (), 1);
  fail_unless (r[0].payload == std::string (size, 'b'));
}

GST_END_TEST;

/* --- Settings errors ----------------------------------------------------- */

static void
check_start_error (GstElement *sink, GQuark domain, int code,
    std::initializer_list<const char *> words)
{
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (sink, bus);
  fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  check_error (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR), domain, code,
      words);
  gst_element_set_state (sink, GST_STATE_NULL);
  gst_element_set_bus (sink, nullptr);
  gst_object_unref (bus);
  gst_object_unref (sink);
}

GST_START_TEST (test_config_errors)
{
  GQuark res = GST_RESOURCE_ERROR;
  GstElement *sink = gst_element_factory_make ("kafkasink", nullptr);
  gst_object_ref_sink (sink);
  check_start_error (sink, res, GST_RESOURCE_ERROR_SETTINGS, {"topic"});

  /* Names the broker would refuse, refused before connecting. */
  check_start_error (new_sink ("my topic"), res, GST_RESOURCE_ERROR_SETTINGS,
      {"'my topic' is not a valid Kafka topic name", "' '", "'-'"});
  check_start_error (new_sink (".."), res, GST_RESOURCE_ERROR_SETTINGS,
      {"'..'", "not allowed"});
  check_start_error (new_sink (std::string (250, 'x')), res,
      GST_RESOURCE_ERROR_SETTINGS, {"250 characters", "249"});
  check_start_error (new_sink ("caf\xc3\xa9"), res, GST_RESOURCE_ERROR_SETTINGS,
      {"byte 0xc3"});

  check_start_error (new_sink ("t", "kafka, no.such.setting=1"), res,
      GST_RESOURCE_ERROR_SETTINGS, {"no.such.setting", "No such"});
  check_start_error (new_sink ("t", "kafka, acks=banana"), res,
      GST_RESOURCE_ERROR_SETTINGS, {"acks"});

  sink = new_sink ("t");
  g_object_set (sink, "config-file", "/nonexistent/client.properties", nullptr);
  check_start_error (sink, res, GST_RESOURCE_ERROR_OPEN_READ,
      {"/nonexistent/client.properties"});

  gchar *path = nullptr;
  gint fd = g_file_open_tmp ("kafkasink-XXXXXX.properties", &path, nullptr);
  fail_unless (fd >= 0);
  close (fd);
  fail_unless (g_file_set_contents (path,
      "# producer settings\nlinger.ms=10\nbatch.size=banana\n", -1, nullptr));
  sink = new_sink ("t");
  g_object_set (sink, "config-file", path, nullptr);
  check_start_error (sink, res, GST_RESOURCE_ERROR_SETTINGS,
      {"batch.size", "line 3"});
  g_unlink (path);
  g_free (path);

  /* Secrets do not read back. */
  sink = new_sink ("t", "kafka, sasl.password=hunter2, linger.ms=7");
  GstStructure *config = nullptr;
  g_object_get (sink, "config", &config, nullptr);
  fail_unless_equals_string (gst_structure_get_string (config, "sasl.password"),
      "****");
  gst_structure_free (config);
  gst_object_unref (sink);
}

GST_END_TEST;

/* --- Broker-side errors -------------------------------------------------- */

GST_START_TEST (test_missing_topic)
{
  std::string topic = kafkatest::unique_topic ("sink-missing");
  /* Without auto-creation; the short propagation time only makes
   * librdkafka give up sooner. */
  GstElement *sink = new_sink (topic, "kafka, allow.auto.create.topics=false, "
                                      "topic.metadata.propagation.max.ms=1000");
  SinkHarness sh (sink);
  fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
  check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, {topic.c_str (), "does not exist"});
  /* The element refuses more data after its error. */
  fail_unless_equals_int (sh.push (make_buffer (1, 100)), GST_FLOW_ERROR);
}

GST_END_TEST;

GST_START_TEST (test_missing_topic_at_eos)
{
  std::string topic = kafkatest::unique_topic ("sink-missing-eos");
  /* librdkafka would wait topic.metadata.propagation.max.ms (30 s) before
   * failing the message; the flush timeout ends first and names the
   * cause. */
  GstElement *sink = new_sink (topic, "kafka, allow.auto.create.topics=false");
  g_object_set (sink, "flush-timeout", 1000, nullptr);
  SinkHarness sh (sink);
  fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
  fail_if (sh.eos ());
  check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, {topic.c_str (), "does not exist"});
}

GST_END_TEST;

GST_START_TEST (test_unreachable_broker)
{
  std::string address = closed_port_address ();
  GstElement *sink = new_sink ("sink-unreachable",
      "kafka, message.timeout.ms=2000", address.c_str ());
  SinkHarness sh (sink);
  /* No broker: the element still plays and takes buffers... */
  GstState state;
  fail_unless_equals_int (gst_element_get_state (sink, &state, nullptr, 0),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (state, GST_STATE_PLAYING);
  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int (sh.push (make_buffer (i, 1000)), GST_FLOW_OK);

  /* ...warns that it cannot reach the broker, then fails clearly. */
  bool warned = false;
  GstMessage *msg;
  while ((msg = sh.pop (GST_MESSAGE_WARNING | GST_MESSAGE_ERROR)) &&
         GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING) {
    warned |= message_mentions (msg, address.c_str ());
    gst_message_unref (msg);
  }
  fail_unless (warned, "no warning naming the broker");
  check_error (msg, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_WRITE,
      {"sink-unreachable", "message.timeout.ms", address.c_str ()});
  fail_unless_equals_int (sh.push (make_buffer (3, 1000)), GST_FLOW_ERROR);
  fail_if (sh.eos ());
}

GST_END_TEST;

GST_START_TEST (test_flush_timeout)
{
  std::string address = closed_port_address ();
  GstElement *sink = new_sink ("sink-flush-timeout",
      "kafka, message.timeout.ms=600000", address.c_str ());
  g_object_set (sink, "flush-timeout", 500, nullptr);
  {
    SinkHarness sh (sink);
    gst_object_ref (sink);
    for (guint i = 0; i < 2; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 1000)), GST_FLOW_OK);
    /* EOS cannot be honoured: the loss is reported with its count. */
    fail_if (sh.eos ());
    check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
        GST_RESOURCE_ERROR_WRITE,
        {"2 messages", "sink-flush-timeout", "flush-timeout"});
  }
  /* Stopping discarded them, counted, without waiting for the broker. */
  guint64 failed, queued;
  g_object_get (sink, "messages-failed", &failed, "messages-queued", &queued,
      nullptr);
  fail_unless_equals_uint64 (failed, 2);
  fail_unless_equals_uint64 (queued, 0);
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_frame_too_large_for_producer)
{
  /* max-message-size=0: a buffer is one message, or an error. */
  std::string topic = kafkatest::unique_topic ("sink-large-local");
  GstElement *sink = new_sink (topic, "kafka, message.max.bytes=100000");
  g_object_set (sink, "max-message-size", 0, nullptr);
  SinkHarness sh (sink);
  fail_unless_equals_int (sh.push (make_buffer (0, 150000)), GST_FLOW_ERROR);
  check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_WRITE,
      {"150000 bytes", "message.max.bytes", "max.message.bytes"});
}

GST_END_TEST;

GST_START_TEST (test_frame_too_large_for_topic)
{
  std::string topic = kafkatest::unique_topic ("sink-large-topic");
  create_topic_with_config (topic, "max.message.bytes", "100000");
  GstElement *sink = new_sink (topic);
  g_object_set (sink, "max-message-size", 0, nullptr);
  SinkHarness sh (sink);
  fail_unless_equals_int (sh.push (make_buffer (0, 200000)), GST_FLOW_OK);
  check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_WRITE,
      {"200000 bytes", topic.c_str (), "max.message.bytes"});
}

GST_END_TEST;

/* The parts of the split buffers in @records, joined by sequence number,
 * after checking each part's gst.frag header. */
static std::map<guint64, std::string>
join_parts (const std::vector<Record> &records, std::map<guint64, guint> &parts)
{
  std::map<guint64, std::string> joined;
  for (const Record &r : records) {
    fail_unless (r.info.has_seq);
    guint &n = parts[r.info.seq];
    if (r.info.frag_count) {
      fail_unless_equals_int (r.info.frag_index, n);
      if (r.info.frag_index + 1 == r.info.frag_count)
        fail_unless_equals_uint64 (r.info.frag_size,
            joined[r.info.seq].size () + r.payload.size ());
    } else {
      fail_unless_equals_int (n, 0);
    }
    n++;
    joined[r.info.seq] += r.payload;
  }
  return joined;
}

/* By default a buffer larger than the topic takes goes as several
 * messages, each within the topic's max.message.bytes (learnt from the
 * broker) or the producer's message.max.bytes, and kafkasrc joins them into
 * the original buffer without copying. */
GST_START_TEST (test_split_to_fit)
{
  const gsize sizes[] = {250000, 60000, 99000, 100000, 300};
  for (bool topic_limit : {true, false}) {
    std::string topic = kafkatest::unique_topic ("sink-split");
    if (topic_limit)
      create_topic_with_config (topic, "max.message.bytes", "100000");
    else
      fail_unless (kafkatest::create_topic (topic));
    if (topic_limit) {
      /* The topic's limit bounds whole record batches. */
      SinkHarness sh (new_sink (topic));
      GstMessage *msg = sh.pop (GST_MESSAGE_WARNING, 30);
      fail_unless (msg != nullptr, "no warning about batch.size");
      fail_unless (message_mentions (msg, "batch.size=100000") &&
                   message_mentions (msg, topic.c_str ()));
      gst_message_unref (msg);
      /* And the broker does refuse them. */
      fail_unless_equals_int (sh.push (make_buffer (0, 250000)), GST_FLOW_OK);
      check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_WRITE, {"record batch", "batch.size=100000"});
    }
    {
      GstElement *sink = new_sink (topic,
          topic_limit ? "kafka, batch.size=100000"
                      : "kafka, message.max.bytes=100000");
      SinkHarness sh (sink);
      for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
        fail_unless_equals_int (sh.push (make_buffer (i, sizes[i])),
            GST_FLOW_OK);
      /* Said once, for users of other Kafka clients. */
      GstMessage *info = sh.pop (GST_MESSAGE_INFO, 0);
      fail_unless (info != nullptr, "no INFO message");
      fail_unless (message_mentions (info, "several messages") &&
                   message_mentions (info, topic.c_str ()));
      gst_message_unref (info);
      sh.finish ();
      fail_unless (
          sh.pop (GST_MESSAGE_INFO | GST_MESSAGE_WARNING, 0) == nullptr);
      fail_unless_equals_uint64 (sh.stat ("messages-failed"), 0);
    }

    std::vector<Record> records = consume_all (topic);
    for (const Record &r : records)
      fail_unless (r.payload.size () + r.caps.size () < 100000 - 256,
          "a message of %" G_GSIZE_FORMAT " bytes", r.payload.size ());
    std::map<guint64, guint> parts;
    std::map<guint64, std::string> joined = join_parts (records, parts);
    fail_unless_equals_int (joined.size (), G_N_ELEMENTS (sizes));
    for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
      fail_unless (joined[i] == expected_payload (i, sizes[i]),
          "buffer %u differs", i);
    fail_unless_equals_int (parts[0], 3);
    fail_unless_equals_int (parts[1], 1);
    fail_unless_equals_int (parts[3], 2);
    fail_unless_equals_int (parts[4], 1);
    /* The caps travel once, with the first part. */
    fail_unless_equals_string (records[0].caps.c_str (), "video/x-test");
    fail_unless (records[1].caps.empty () && records[2].caps.empty ());

    GstHarness *h = gst_harness_new ("kafkasrc");
    g_object_set (h->element, "brokers", kafkatest::brokers (), "topic",
        topic.c_str (), "is-live", FALSE, nullptr);
    gst_util_set_object_arg (G_OBJECT (h->element), "stop-at", "end");
    gst_harness_play (h);
    for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
      GstBuffer *buf = gst_harness_pull (h);
      fail_unless (buf != nullptr);
      /* One memory per part, each wrapping its message. */
      fail_unless_equals_int (gst_buffer_n_memory (buf), parts[i]);
      GstMapInfo map;
      fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
      fail_unless (std::string (reinterpret_cast<const char *> (map.data),
                       map.size) == expected_payload (i, sizes[i]),
          "buffer %u differs", i);
      gst_buffer_unmap (buf, &map);
      fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * 40 * GST_MSECOND);
      fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (buf,
                                  GST_BUFFER_FLAG_DELTA_UNIT),
          i % 5 != 0);
      gst_buffer_unref (buf);
    }
    g_autoptr (GstCaps) caps = gst_pad_get_current_caps (h->sinkpad);
    g_autoptr (GstCaps) expected = gst_caps_from_string ("video/x-test");
    fail_unless (caps && gst_caps_is_equal (caps, expected));
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_compacted_topic)
{
  /* A compacted topic takes only keyed messages. */
  std::string topic = kafkatest::unique_topic ("sink-compacted");
  create_topic_with_config (topic, "cleanup.policy", "compact");
  {
    SinkHarness sh (new_sink (topic));
    fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
    check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
        GST_RESOURCE_ERROR_WRITE,
        {topic.c_str (), "without a key", "cleanup.policy=compact",
            "key property"});
  }
  GstElement *sink = new_sink (topic);
  g_object_set (sink, "key", "camera-1", nullptr);
  SinkHarness sh (sink);
  fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
  fail_unless (sh.eos ());
  auto got = consume_all (topic, kafkatest::brokers ());
  fail_unless_equals_int (got.size (), 1);

  /* An internal topic takes no message at all. */
  SinkHarness internal (new_sink ("__consumer_offsets"));
  fail_unless_equals_int (internal.push (make_buffer (0, 100)), GST_FLOW_OK);
  check_error (internal.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_WRITE, {"__consumer_offsets", "internal topic"});
}

GST_END_TEST;

/* librdkafka's mock cluster of @n_brokers brokers with one topic of
 * @partitions partitions, for faults a real broker does not make on
 * demand. */
struct MockCluster
{
  /* The handle that hosts the cluster; it logs nothing, having no
   * bootstrap.servers. */
  gstkafka::Handle host;
  rd_kafka_mock_cluster_t *mock = nullptr;

  MockCluster (int n_brokers, const char *topic, int partitions)
  {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new ();
    rd_kafka_conf_set (conf, "log_level", "0", errstr, sizeof (errstr));
    host.reset (
        rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof (errstr)));
    fail_unless (host != nullptr, "%s", errstr);
    mock = rd_kafka_mock_cluster_new (host.get (), n_brokers);
    fail_unless (mock != nullptr);
    fail_unless (rd_kafka_mock_topic_create (mock, topic, partitions, 1) ==
                 RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ~MockCluster ()
  {
    rd_kafka_mock_cluster_destroy (mock);
  }
  const char *brokers () const
  {
    return rd_kafka_mock_cluster_bootstraps (mock);
  }
};

GST_START_TEST (test_fatal_error)
{
  /* The mock cluster answers the first ProduceRequest (API key 0) with a
   * sequence error: the idempotent producer can no longer guarantee order
   * without gaps, which is fatal. */
  MockCluster cluster (1, "sink-fatal", 1);
  rd_kafka_mock_push_request_errors (cluster.mock, 0, 1,
      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  SinkHarness sh (new_sink ("sink-fatal", nullptr, cluster.brokers ()));
  fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
  check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_WRITE, {"sink-fatal", "cannot continue"});
  fail_unless_equals_int (sh.push (make_buffer (1, 100)), GST_FLOW_ERROR);
}

GST_END_TEST;

static std::vector<Record>
produce_to (const std::string &topic, guint n, const char *config,
    std::function<void (GstElement *)> setup = nullptr)
{
  GstElement *sink = new_sink (topic, config);
  if (setup)
    setup (sink);
  {
    SinkHarness sh (sink);
    for (guint i = 0; i < n; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 500)), GST_FLOW_OK);
    sh.finish ();
  }
  return consume_all (topic);
}

/* --- Full queue ---------------------------------------------------------- */

GST_START_TEST (test_queue_full_drop)
{
  std::string address = closed_port_address ();
  GstElement *sink = new_sink ("sink-drop",
      "kafka, queue.buffering.max.messages=2, message.timeout.ms=600000",
      address.c_str ());
  g_object_set (sink, "queue-full-policy", 1, "flush-timeout", 100, nullptr);
  SinkHarness sh (sink);
  for (guint i = 0; i < 5; i++)
    fail_unless_equals_int (sh.push (make_buffer (i, 1000)), GST_FLOW_OK);
  fail_unless_equals_uint64 (sh.stat ("messages-queued"), 2);
  fail_unless_equals_uint64 (sh.stat ("messages-dropped"), 3);
  GstMessage *msg;
  bool warned = false;
  while (!warned && (msg = sh.pop (GST_MESSAGE_WARNING, 10))) {
    warned = message_mentions (msg, "dropping");
    gst_message_unref (msg);
  }
  fail_unless (warned);
}

GST_END_TEST;

/* Whether kafkasink logged that it waits for room in the producer queue. */
static struct
{
  std::mutex lock;
  std::condition_variable cond;
  bool waiting = false;
} queue_full;

static void
watch_queue_full (GstDebugCategory *category, GstDebugLevel, const gchar *,
    const gchar *, gint, GObject *, GstDebugMessage *message, gpointer)
{
  if (strcmp (gst_debug_category_get_name (category), "kafkasink") == 0 &&
      strstr (gst_debug_message_get (message),
          "producer queue full, waiting")) {
    std::lock_guard<std::mutex> lk (queue_full.lock);
    queue_full.waiting = true;
    queue_full.cond.notify_all ();
  }
}

GST_START_TEST (test_queue_full_block_is_interruptible)
{
  std::string address = closed_port_address ();
  GstElement *sink = new_sink ("sink-block",
      "kafka, queue.buffering.max.messages=2, message.timeout.ms=600000",
      address.c_str ());
  g_object_set (sink, "flush-timeout", 100, nullptr);
  gst_debug_set_threshold_for_name ("kafkasink", GST_LEVEL_LOG);
  gst_debug_add_log_function (watch_queue_full, nullptr, nullptr);
  gst_debug_remove_log_function (gst_debug_log_default);

  SinkHarness sh (sink);
  for (guint i = 0; i < 2; i++)
    fail_unless_equals_int (sh.push (make_buffer (i, 1000)), GST_FLOW_OK);
  GstFlowReturn ret = GST_FLOW_OK;
  std::thread pusher ([&] { ret = sh.push (make_buffer (2, 1000)); });
  /* The third buffer waits for room (backpressure)... */
  {
    std::unique_lock<std::mutex> lk (queue_full.lock);
    queue_full.cond.wait (lk, [] { return queue_full.waiting; });
  }
  /* ...until the element flushes. */
  gst_element_set_state (sink, GST_STATE_READY);
  pusher.join ();
  fail_unless_equals_int (ret, GST_FLOW_FLUSHING);
  gst_debug_remove_log_function (watch_queue_full);
  gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
}

GST_END_TEST;

GST_START_TEST (test_queue_full_resumes)
{
  /* A queue of ten messages that linger: it fills, the stream waits for
   * room, and the broker acknowledges the whole queue at once, again and
   * again. The stream must go on every time, with nothing lost. */
  const guint n = 400;
  std::string topic = kafkatest::unique_topic ("sink-room");
  fail_unless (kafkatest::create_topic (topic, 1));
  std::vector<Record> r = produce_to (topic, n,
      "kafka, queue.buffering.max.messages=10, linger.ms=20");
  fail_unless_equals_int (r.size (), n);
  for (guint i = 0; i < n; i++)
    fail_unless_equals_uint64 (r[i].info.seq, i);
}

GST_END_TEST;

/* messages-queued, read while the stream waits for room again and again,
 * never shows more than the producer's queue holds. */
GST_START_TEST (test_queue_full_statistics)
{
  const guint limit = 2, n = 1000;
  std::string topic = kafkatest::unique_topic ("sink-room-stats");
  fail_unless (kafkatest::create_topic (topic, 1));
  GstElement *sink = new_sink (topic,
      "kafka, queue.buffering.max.messages=2, linger.ms=0");
  std::atomic<bool> done{false};
  std::atomic<guint64> max_queued{0}, max_bytes{0};
  std::thread watcher ([&] {
    while (!done.load ()) {
      guint64 queued, bytes;
      g_object_get (sink, "messages-queued", &queued, "bytes-queued", &bytes,
          nullptr);
      max_queued = MAX (max_queued.load (), queued);
      max_bytes = MAX (max_bytes.load (), bytes);
      GstStructure *stats = nullptr;
      g_object_get (sink, "stats", &stats, nullptr);
      guint64 in_stats = 0;
      gst_structure_get_uint64 (stats, "messages-queued", &in_stats);
      gst_structure_free (stats);
      max_queued = MAX (max_queued.load (), in_stats);
    }
  });
  {
    SinkHarness sh (GST_ELEMENT (gst_object_ref (sink)));
    for (guint i = 0; i < n; i++)
      fail_unless_equals_int (sh.push (make_buffer (i, 100)), GST_FLOW_OK);
    sh.finish ();
    fail_unless_equals_uint64 (sh.stat ("messages-delivered"), n);
    fail_unless_equals_uint64 (sh.stat ("messages-queued"), 0);
  }
  done = true;
  watcher.join ();
  gst_object_unref (sink);
  fail_unless (max_queued.load () <= limit,
      "messages-queued showed %" G_GUINT64_FORMAT, max_queued.load ());
  fail_unless (max_bytes.load () <= limit * 100,
      "bytes-queued showed %" G_GUINT64_FORMAT, max_bytes.load ());
  fail_unless (max_queued.load () > 0,
      "the watcher never saw a queued message");
}

GST_END_TEST;

/* --- Partitions, several sinks, statistics ------------------------------- */

GST_START_TEST (test_partitions)
{
  const guint n = 60;
  /* librdkafka's partitioner: all delivered, each partition in order. */
  std::string topic = kafkatest::unique_topic ("sink-partitions");
  fail_unless (kafkatest::create_topic (topic, 4));
  /* Spread the messages instead of sticking to one partition. */
  std::vector<Record> r = produce_to (topic, n,
      "kafka, sticky.partitioning.linger.ms=0, partitioner=random");
  fail_unless_equals_int (r.size (), n);
  std::set<guint64> seqs;
  std::map<gint32, guint64> last;
  for (auto &rec : r) {
    seqs.insert (rec.info.seq);
    if (last.count (rec.partition))
      fail_unless (rec.info.seq > last[rec.partition]);
    last[rec.partition] = rec.info.seq;
    fail_unless (rec.payload == expected_payload (guint (rec.info.seq), 500));
  }
  fail_unless_equals_int (seqs.size (), n);
  fail_unless (last.size () > 1, "all messages in one partition");

  /* Neither a key nor a partition: each session still goes to one
   * partition, in order, and a producer that starts again (same client.id)
   * to the same one, so the topic replays in order. librdkafka alone would
   * spread the first session message by message (sticky partitioning off),
   * and the second one, a live stream's pace with its default settings,
   * each time its sticky partition's 10 ms ran out. */
  topic = kafkatest::unique_topic ("sink-partition-pinned");
  fail_unless (kafkatest::create_topic (topic, 4));
  const char *configs[] =
      {"kafka, client.id=camera-a, sticky.partitioning.linger.ms=0",
          "kafka, client.id=camera-a"};
  for (const char *config : configs) {
    SinkHarness sh (new_sink (topic, config));
    for (guint i = 0; i < 40; i++) {
      fail_unless_equals_int (sh.push (make_buffer (i, 500)), GST_FLOW_OK);
      if (config == configs[1] && i % 4 == 3)
        g_usleep (15 * 1000);
    }
    sh.finish ();
  }
  r = consume_all (topic);
  fail_unless_equals_int (r.size (), 80);
  for (guint i = 0; i < 80; i++) {
    fail_unless_equals_int (r[i].partition, r[0].partition);
    fail_unless_equals_uint64 (r[i].info.seq, i % 40);
    fail_unless ((r[i].info.session == r[0].info.session) == (i < 40));
  }
  /* A fixed partition. */
  topic = kafkatest::unique_topic ("sink-partition-2");
  fail_unless (kafkatest::create_topic (topic, 4));
  r = produce_to (topic, 10, nullptr,
      [] (GstElement *sink) { g_object_set (sink, "partition", 2, nullptr); });
  fail_unless_equals_int (r.size (), 10);
  for (auto &rec : r)
    fail_unless_equals_int (rec.partition, 2);

  /* A key keeps the stream in one partition, in order. */
  topic = kafkatest::unique_topic ("sink-partition-key");
  fail_unless (kafkatest::create_topic (topic, 4));
  r = produce_to (topic, 20, nullptr,
      [] (GstElement *sink) { g_object_set (sink, "key", "cam", nullptr); });
  fail_unless_equals_int (r.size (), 20);
  for (guint i = 0; i < 20; i++) {
    fail_unless_equals_int (r[i].partition, r[0].partition);
    fail_unless_equals_uint64 (r[i].info.seq, i);
  }

  /* A partition the topic does not have. */
  GstElement *sink = new_sink (topic);
  g_object_set (sink, "partition", 9, nullptr);
  SinkHarness sh (sink);
  sh.push (make_buffer (0, 100));
  check_error (sh.pop (GST_MESSAGE_ERROR), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, {"partition 9", topic.c_str ()});
}

GST_END_TEST;

/* Waits up to @seconds until @sh's sink has @n delivered messages. */
static bool
wait_delivered (SinkHarness &sh, guint64 n, int seconds = 30)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  while (sh.stat ("messages-delivered") < n) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_usleep (20 * 1000);
  }
  return true;
}

GST_START_TEST (test_pinned_partition_waits_for_its_leader)
{
  /* Three brokers, a topic of three partitions, and a partition leader
   * that can be taken away. */
  const char *topic = "sink-pinned-leader";
  MockCluster cluster (3, topic, 3);
  const char *brokers = cluster.brokers ();
  SinkHarness sh (new_sink (topic, "kafka, client.id=camera-x", brokers));
  fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
  fail_unless (wait_delivered (sh, 1));
  std::vector<Record> r = consume_all (topic, brokers);
  fail_unless_equals_int (r.size (), 1);
  gint32 pinned = r[0].partition;

  /* Its partition loses its leader: the next messages wait for one,
   * rather than go to the partitions that have one. Nothing announces a
   * delivery that does not happen: a second without one has to do. */
  fail_unless (rd_kafka_mock_partition_set_leader (cluster.mock, topic, pinned,
                   -1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  for (guint i = 1; i < 6; i++)
    fail_unless_equals_int (sh.push (make_buffer (i, 100)), GST_FLOW_OK);
  g_usleep (G_USEC_PER_SEC);
  fail_unless_equals_uint64 (sh.stat ("messages-delivered"), 1);
  fail_unless (rd_kafka_mock_partition_set_leader (cluster.mock, topic, pinned,
                   (pinned + 1) % 3 + 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  sh.finish ();
  fail_unless_equals_uint64 (sh.stat ("messages-delivered"), 6);

  r = consume_all (topic, brokers);
  fail_unless_equals_int (r.size (), 6);
  for (guint i = 0; i < 6; i++) {
    fail_unless_equals_int (r[i].partition, pinned);
    fail_unless_equals_uint64 (r[i].info.seq, i);
  }
}

GST_END_TEST;

GST_START_TEST (test_several_sinks)
{
  std::string t1 = kafkatest::unique_topic ("sink-multi-a");
  std::string t2 = kafkatest::unique_topic ("sink-multi-b");
  std::string t3 = kafkatest::unique_topic ("sink-multi-c");
  for (auto &t : {t1, t2, t3})
    fail_unless (kafkatest::create_topic (t));
  const char *b = kafkatest::brokers ();
  gchar *desc1 = g_strdup_printf (
      "videotestsrc num-buffers=30 ! "
      "video/x-raw,format=I420,width=64,height=48 ! tee "
      "name=t t. ! queue ! kafkasink brokers=%s topic=%s t. ! queue ! "
      "kafkasink brokers=%s topic=%s",
      b, t1.c_str (), b, t2.c_str ());
  gchar
      *desc2 = g_strdup_printf ("videotestsrc num-buffers=30 pattern=ball ! "
                                "video/x-raw,format=I420,width=64,height=48 ! "
                                "kafkasink brokers=%s topic=%s",
          b, t3.c_str ());
  GstElement *p1 = gst_parse_launch (desc1, nullptr);
  GstElement *p2 = gst_parse_launch (desc2, nullptr);
  g_free (desc1);
  g_free (desc2);
  fail_unless (p1 && p2);
  gst_element_set_state (p1, GST_STATE_PLAYING);
  gst_element_set_state (p2, GST_STATE_PLAYING);
  for (GstElement *p : {p1, p2}) {
    GstBus *bus = gst_element_get_bus (p);
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GstMessageType (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
    gst_message_unref (msg);
    gst_object_unref (bus);
    gst_element_set_state (p, GST_STATE_NULL);
    gst_object_unref (p);
  }
  std::vector<Record> a = consume_all (t1), bb = consume_all (t2),
                      c = consume_all (t3);
  fail_unless_equals_int (a.size (), 30);
  fail_unless_equals_int (bb.size (), 30);
  fail_unless_equals_int (c.size (), 30);
  for (guint i = 0; i < 30; i++) {
    fail_unless_equals_int (a[i].payload.size (), 64 * 48 * 3 / 2);
    fail_unless (a[i].payload == bb[i].payload);
    fail_unless (a[i].info.session != bb[i].info.session);
  }
}

GST_END_TEST;

GST_START_TEST (test_statistics_messages)
{
  std::string topic = kafkatest::unique_topic ("sink-stats");
  GstElement *sink = new_sink (topic, "kafka, statistics.interval.ms=1000");
  SinkHarness sh (sink);
  fail_unless_equals_int (sh.push (make_buffer (0, 100)), GST_FLOW_OK);
  GstMessage *msg;
  while ((msg = sh.pop (GST_MESSAGE_ELEMENT, 30)) &&
         !gst_message_has_name (msg, "kafkasink-stats"))
    gst_message_unref (msg);
  fail_unless (msg != nullptr);
  const gchar *json = gst_structure_get_string (gst_message_get_structure (msg),
      "json");
  fail_unless (json && json[0] == '{');
  fail_unless (strstr (json, "\"producer\"") != nullptr);
  gst_message_unref (msg);
}

GST_END_TEST;

/* --- Under load and broker faults ---------------------------------------- */

struct LoadCounter
{
  std::mutex lock;
  std::condition_variable cond;
  guint buffers = 0;
  guint weak_refs = 0;
  std::atomic<guint> finalized{0};
};

static void
buffer_finalized (gpointer data, GstMiniObject *)
{
  static_cast<LoadCounter *> (data)->finalized++;
}

static GstPadProbeReturn
count_buffer (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  auto c = static_cast<LoadCounter *> (data);
  std::lock_guard<std::mutex> lk (c->lock);
  gst_mini_object_weak_ref (GST_MINI_OBJECT (GST_PAD_PROBE_INFO_BUFFER (info)),
      buffer_finalized, c);
  c->weak_refs++;
  c->buffers++;
  c->cond.notify_all ();
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_state_changes_under_load)
{
  std::string topic = kafkatest::unique_topic ("sink-states");
  fail_unless (kafkatest::create_topic (topic));
  gchar *desc =
      g_strdup_printf ("videotestsrc ! video/x-raw,width=160,height=120 ! "
                       "kafkasink name=sink sync=false brokers=%s topic=%s",
          kafkatest::brokers (), topic.c_str ());
  GstElement *pipeline = gst_parse_launch (desc, nullptr);
  g_free (desc);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  LoadCounter counter;
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, &counter,
      nullptr);
  gst_object_unref (pad);

  guint64 total_delivered = 0;
  for (int cycle = 0; cycle < 10; cycle++) {
    guint start;
    {
      std::lock_guard<std::mutex> lk (counter.lock);
      start = counter.buffers;
    }
    fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
             GST_STATE_CHANGE_FAILURE);
    {
      std::unique_lock<std::mutex> lk (counter.lock);
      counter.cond.wait (lk, [&] { return counter.buffers >= start + 20; });
    }
    /* Stop in the middle of the stream, alternately to READY and NULL. */
    GstState target = cycle % 2 ? GST_STATE_NULL : GST_STATE_READY;
    fail_unless_equals_int (gst_element_set_state (pipeline, target),
        GST_STATE_CHANGE_SUCCESS);
    guint64 delivered, failed, queued;
    g_object_get (sink, "messages-delivered", &delivered, "messages-failed",
        &failed, "messages-queued", &queued, nullptr);
    fail_unless_equals_uint64 (queued, 0);
    fail_unless_equals_uint64 (failed, 0);
    fail_unless (delivered > 0);
    /* The counters start again at NULL to READY. */
    if (target == GST_STATE_NULL)
      total_delivered += delivered;
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_if (msg != nullptr, "unexpected error");
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);

  /* Every buffer kafkasink saw was released. */
  fail_unless_equals_int (counter.finalized.load (), counter.weak_refs);
  std::vector<Record> r = consume_all (topic);
  fail_unless_equals_uint64 (r.size (), total_delivered);
}

GST_END_TEST;

/* A kafka-local instance of the test's own. It runs under `kafka-local run`
 * for as long as its command reads our pipe: however this process ends,
 * failed assertion or crash included, the pipe closes and the broker is
 * stopped. */
struct OwnBroker
{
  std::string script;
  std::string dir;
  std::string brokers;
  GPid pid = 0;
  int keepalive = -1;

  OwnBroker ()
  {
    const char *root = g_getenv ("GST_KAFKA_SOURCE_ROOT");
    fail_unless (root != nullptr, "GST_KAFKA_SOURCE_ROOT is not set");
    script = std::string (root) + "/tests/kafka/kafka-local";
    const char *argv[] = {script.c_str (), "run", "--", "sh", "-c",
        "echo KAFKA_BROKERS=$KAFKA_BROKERS; "
        "echo KAFKA_LOCAL_DIR=$KAFKA_LOCAL_DIR; exec cat >/dev/null",
        nullptr};
    int out = -1;
    GError *error = nullptr;
    fail_unless (g_spawn_async_with_pipes (nullptr, const_cast<gchar **> (argv),
                     nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &pid,
                     &keepalive, &out, nullptr, &error),
        "kafka-local: %s", error ? error->message : "");
    FILE *f = fdopen (out, "r");
    char line[4096];
    while (
        (brokers.empty () || dir.empty ()) && fgets (line, sizeof (line), f)) {
      g_strchomp (line);
      if (g_str_has_prefix (line, "KAFKA_BROKERS="))
        brokers = line + strlen ("KAFKA_BROKERS=");
      else if (g_str_has_prefix (line, "KAFKA_LOCAL_DIR="))
        dir = line + strlen ("KAFKA_LOCAL_DIR=");
    }
    fclose (f);
    fail_if (brokers.empty () || dir.empty (), "kafka-local did not start");
  }
  ~OwnBroker ()
  {
    /* cat ends, and kafka-local run stops the broker. */
    close (keepalive);
    int status;
    waitpid (pid, &status, 0);
    g_spawn_close_pid (pid);
  }
  int node (const char *command)
  {
    return kafkatest::run (
        {script.c_str (), command, "1", "--dir", dir.c_str ()});
  }
};

/* Buffers pushed by a test's streaming thread, for the test to wait on. */
struct PushCounter
{
  std::mutex lock;
  std::condition_variable cond;
  guint pushed = 0;
  bool stop = false;

  void wait_for (guint n)
  {
    std::unique_lock<std::mutex> lk (lock);
    cond.wait (lk, [&] { return pushed >= n; });
  }
  guint count ()
  {
    std::lock_guard<std::mutex> lk (lock);
    return pushed;
  }
};

GST_START_TEST (test_broker_restart)
{
  OwnBroker broker;
  std::string topic = kafkatest::unique_topic ("sink-restart");
  fail_unless (kafkatest::create_topic (topic, 1, 1, broker.brokers.c_str ()));
  GstElement *sink = new_sink (topic, nullptr, broker.brokers.c_str ());
  PushCounter c;

  /* The broker is down when the stream starts. */
  fail_unless_equals_int (broker.node ("kill"), 0);
  {
    SinkHarness sh (sink);
    /* A 100 frames/s stream that goes on while the broker dies and comes
     * back. */
    std::thread stream ([&] {
      for (guint i = 0;; i++) {
        {
          std::lock_guard<std::mutex> lk (c.lock);
          if (c.stop)
            break;
        }
        fail_unless_equals_int (sh.push (make_buffer (i, 20000)), GST_FLOW_OK);
        {
          std::lock_guard<std::mutex> lk (c.lock);
          c.pushed++;
        }
        c.cond.notify_all ();
        g_usleep (10 * 1000);
      }
    });

    /* The element plays, and says that it cannot reach the broker... */
    GstMessage *msg = sh.pop (GST_MESSAGE_WARNING | GST_MESSAGE_ERROR);
    fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING);
    fail_unless (message_mentions (msg, broker.brokers.c_str ()));
    gst_message_unref (msg);
    c.wait_for (20);
    /* ...delivers once it appears... */
    fail_unless_equals_int (broker.node ("restart"), 0);
    c.wait_for (c.count () + 100);
    /* ...and carries on after losing it in the middle of the stream. */
    fail_unless_equals_int (broker.node ("kill"), 0);
    c.wait_for (c.count () + 50);
    fail_unless_equals_int (broker.node ("restart"), 0);
    c.wait_for (c.count () + 100);
    {
      std::lock_guard<std::mutex> lk (c.lock);
      c.stop = true;
    }
    stream.join ();
    fail_unless (sh.eos ());
    msg = sh.pop (GST_MESSAGE_EOS | GST_MESSAGE_ERROR, 120);
    fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
    gst_message_unref (msg);
    fail_unless_equals_uint64 (sh.stat ("messages-failed"), 0);
  }

  /* Nothing lost, nothing twice, in order. */
  std::vector<Record> r = consume_all (topic, broker.brokers.c_str ());
  fail_unless_equals_int (r.size (), c.count ());
  for (guint i = 0; i < r.size (); i++) {
    fail_unless_equals_uint64 (r[i].info.seq, i);
    fail_unless (r[i].payload == expected_payload (i, 20000));
  }
}

GST_END_TEST;

static Suite *
kafkasink_suite (void)
{
  Suite *s = suite_create ("kafkasink");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_round_trip);
  tcase_add_test (tc, test_buffer_lists);
  tcase_add_test (tc, test_copy_topic);
  tcase_add_test (tc, test_eos_marker_and_sessions);
  tcase_add_test (tc, test_caps_change);
  tcase_add_test (tc, test_zero_copy);
  tcase_add_test (tc, test_config_errors);
  tcase_add_test (tc, test_missing_topic);
  tcase_add_test (tc, test_missing_topic_at_eos);
  tcase_add_test (tc, test_unreachable_broker);
  tcase_add_test (tc, test_flush_timeout);
  tcase_add_test (tc, test_frame_too_large_for_producer);
  tcase_add_test (tc, test_frame_too_large_for_topic);
  tcase_add_test (tc, test_split_to_fit);
  tcase_add_test (tc, test_compacted_topic);
  tcase_add_test (tc, test_fatal_error);
  tcase_add_test (tc, test_queue_full_drop);
  tcase_add_test (tc, test_queue_full_block_is_interruptible);
  tcase_add_test (tc, test_queue_full_resumes);
  tcase_add_test (tc, test_queue_full_statistics);
  tcase_add_test (tc, test_partitions);
  tcase_add_test (tc, test_pinned_partition_waits_for_its_leader);
  tcase_add_test (tc, test_several_sinks);
  tcase_add_test (tc, test_statistics_messages);
  tcase_add_test (tc, test_state_changes_under_load);
  tcase_add_test (tc, test_broker_restart);
  return s;
}

int
main (int argc, char **argv)
{
  /* Skips (exit 77) without a broker. */
  kafkatest::brokers ();
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (kafkasink_suite (), "kafkasink", __FILE__);
}
