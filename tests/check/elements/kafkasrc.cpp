/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kafkasrc against the real broker of $KAFKA_BROKERS: messages are produced
 * with librdkafka (with the headers kafkasink writes) or with kcat (headers
 * of other clients, malformed ones), then read back through kafkasrc. */

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/base/gsttypefindhelper.h>
#include <glib/gstdio.h>

#include "gstkafkacommon.h"
#include "gstkafkatest.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

/* A 2x3 PNG image, as other clients produce them. */
static const guint8 png_2x3[] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
    0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x03, 0x08, 0x02, 0x00, 0x00, 0x00, 0x36, 0x88, 0x49,
    0xd6, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63,
    0x60, 0xc0, 0x02, 0x00, 0x00, 0x15, 0x00, 0x01, 0xaa, 0x65, 0x97, 0xc4,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

#define CAPS_STR "video/x-test, width=(int)4, height=(int)2"

/* --- Producing ----------------------------------------------------------- */

class Producer
{
public:
  Producer ()
  {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new ();
    rd_kafka_conf_set (conf, "bootstrap.servers", kafkatest::brokers (), errstr,
        sizeof (errstr));
    rd_kafka_conf_set (conf, "linger.ms", "0", errstr, sizeof (errstr));
    rd_kafka_conf_set_dr_msg_cb (conf,
        [] (rd_kafka_t *, const rd_kafka_message_t *m, void *opaque) {
          if (m->err)
            (*static_cast<int *> (opaque))++;
        });
    rd_kafka_conf_set_opaque (conf, &failed_);
    rk_ = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof (errstr));
    fail_unless (rk_ != nullptr, "producer: %s", errstr);
  }
  ~Producer ()
  {
    flush ();
    rd_kafka_destroy (rk_);
  }

  /* Sends @payload with @info's headers (none when nullptr) and @key (of
   * @key_len bytes, or up to its NUL). */
  void send (const std::string &topic, const std::string &payload,
      const gstkafka::FrameInfo *info = nullptr,
      gint32 partition = RD_KAFKA_PARTITION_UA, gint64 timestamp = 0,
      const char *key = nullptr, size_t key_len = size_t (-1))
  {
    rd_kafka_headers_t *hdrs = nullptr;
    if (info) {
      hdrs = rd_kafka_headers_new (8);
      gstkafka::headers_write (hdrs, *info);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev (rk_,
        RD_KAFKA_V_TOPIC (topic.c_str ()), RD_KAFKA_V_PARTITION (partition),
        RD_KAFKA_V_VALUE (const_cast<char *> (payload.data ()),
            payload.size ()),
        RD_KAFKA_V_KEY (key, !key                     ? 0
                             : key_len == size_t (-1) ? strlen (key)
                                                      : key_len),
        RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS (hdrs),
        RD_KAFKA_V_TIMESTAMP (timestamp), RD_KAFKA_V_END);
    if (err && hdrs)
      rd_kafka_headers_destroy (hdrs);
    fail_unless (err == 0, "produce: %s", rd_kafka_err2str (err));
  }

  void flush ()
  {
    fail_unless (rd_kafka_flush (rk_, 30000) == 0);
    fail_unless_equals_int (failed_, 0);
  }

private:
  rd_kafka_t *rk_ = nullptr;
  int failed_ = 0;
};

/* The headers kafkasink writes for frame @seq of @session. */
static gstkafka::FrameInfo
frame_info (guint64 session, guint64 seq, GstClockTime pts,
    const char *caps = CAPS_STR, guint32 flags = 0)
{
  gstkafka::FrameInfo info;
  info.caps = caps;
  info.pts = pts;
  info.dts = pts;
  info.duration = 40 * GST_MSECOND;
  info.flags = flags;
  info.session = session;
  info.seq = seq;
  return info;
}

static std::string
payload (int i)
{
  return "frame-" + std::to_string (i);
}

/* Produces @n messages with kafkasink's headers, frame i at i * 40 ms. */
static std::string
filled_topic (const char *prefix, int n, int partitions = 1)
{
  std::string topic = kafkatest::unique_topic (prefix);
  fail_unless (kafkatest::create_topic (topic, partitions));
  Producer p;
  for (int i = 0; i < n; i++) {
    gstkafka::FrameInfo info = frame_info (7, i,
        1000 * GST_SECOND + i * 40 * GST_MSECOND, CAPS_STR,
        i % 5 ? GST_BUFFER_FLAG_DELTA_UNIT : 0);
    if (i % 5)
      info.caps = nullptr;
    p.send (topic, payload (i), &info, i % partitions);
  }
  return topic;
}

/* Runs kcat -P with a message in a file and extra arguments. */
static void
kcat_produce (const std::string &topic, const std::string &data,
    const std::vector<const char *> &extra)
{
  g_autofree gchar *path = nullptr;
  gint fd = g_file_open_tmp ("kafkasrc-XXXXXX", &path, nullptr);
  fail_unless (fd >= 0);
  close (fd);
  fail_unless (g_file_set_contents (path, data.data (), data.size (), nullptr));
  std::vector<const char *> argv = {"kcat", "-P", "-b", kafkatest::brokers (),
      "-t", topic.c_str ()};
  argv.insert (argv.end (), extra.begin (), extra.end ());
  argv.push_back (path);
  std::string err;
  fail_unless_equals_int (kafkatest::run (argv, nullptr, &err), 0);
  g_unlink (path);
}

/* --- Consuming ----------------------------------------------------------- */

/* kafkasrc in a harness, with a bus to watch its messages. */
struct Src
{
  GstHarness *h;
  GstElement *src;
  GstBus *bus;

  Src (const std::string &topic, const std::string &props)
  {
    h = gst_harness_new ("kafkasrc");
    src = h->element;
    bus = gst_bus_new ();
    gst_element_set_bus (src, bus);
    gst_util_set_object_arg (G_OBJECT (src), "brokers", kafkatest::brokers ());
    gst_util_set_object_arg (G_OBJECT (src), "topic", topic.c_str ());
    g_auto (GStrv) kv = g_strsplit (props.c_str (), " ", -1);
    for (guint i = 0; kv[i]; i++) {
      if (!*kv[i])
        continue;
      gchar *eq = strchr (kv[i], '=');
      fail_unless (eq != nullptr);
      *eq = '\0';
      gst_util_set_object_arg (G_OBJECT (src), kv[i], eq + 1);
    }
  }
  ~Src ()
  {
    gst_harness_teardown (h);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }
  void play ()
  {
    gst_harness_play (h);
  }

  /* Every buffer until EOS. */
  std::vector<GstBuffer *> until_eos ()
  {
    std::vector<GstBuffer *> out;
    GstBuffer *buf = nullptr;
    while (gst_harness_pull_until_eos (h, &buf) && buf)
      out.push_back (buf);
    fail_unless (buf == nullptr, "no EOS");
    return out;
  }

  /* The next bus message of @type, or nullptr after @seconds. */
  GstMessage *wait_message (GstMessageType type, int seconds = 30)
  {
    return gst_bus_timed_pop_filtered (bus, seconds * GST_SECOND, type);
  }

  std::string caps ()
  {
    g_autoptr (GstCaps) caps = gst_pad_get_current_caps (h->sinkpad);
    if (!caps)
      return "";
    g_autofree gchar *s = gst_caps_to_string (caps);
    return s;
  }
};

static void
check_caps (Src &s, const char *expected)
{
  std::string caps = s.caps ();
  fail_unless_equals_string (caps.c_str (), expected);
}

static std::string
bytes_of (GstBuffer *buf)
{
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  std::string s (reinterpret_cast<const char *> (map.data), map.size);
  gst_buffer_unmap (buf, &map);
  return s;
}

/* fail_unless_equals_string keeps pointers past the statement: keep the
 * strings alive for it. */
#define assert_bytes(buf, expected)                                            \
  G_STMT_START                                                                 \
  {                                                                            \
    std::string got_ = bytes_of (buf);                                         \
    std::string expected_ = (expected);                                        \
    fail_unless_equals_string (got_.c_str (), expected_.c_str ());             \
  }                                                                            \
  G_STMT_END

static std::vector<std::string>
payloads_of (const std::vector<GstBuffer *> &bufs)
{
  std::vector<std::string> out;
  for (GstBuffer *b : bufs)
    out.push_back (bytes_of (b));
  return out;
}

/* The caps of every caps event the element pushed so far, in order. */
static std::vector<std::string>
caps_pushed (GstHarness *h)
{
  std::vector<std::string> out;
  GstEvent *ev;
  while ((ev = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_CAPS) {
      GstCaps *caps;
      gst_event_parse_caps (ev, &caps);
      g_autofree gchar *str = gst_caps_to_string (caps);
      out.push_back (str);
    }
    gst_event_unref (ev);
  }
  return out;
}

static std::vector<std::string>
expected_payloads (int from, int to)
{
  std::vector<std::string> out;
  for (int i = from; i < to; i++)
    out.push_back (payload (i));
  return out;
}

static void
unref_all (std::vector<GstBuffer *> &bufs)
{
  for (GstBuffer *b : bufs)
    gst_buffer_unref (b);
  bufs.clear ();
}

static std::string
message_text (GstMessage *msg)
{
  g_autoptr (GError) err = nullptr;
  g_autofree gchar *debug = nullptr;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
    gst_message_parse_warning (msg, &err, &debug);
  else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
    gst_message_parse_error (msg, &err, &debug);
  else
    return "";
  return std::string (err->message) + " | " + (debug ? debug : "");
}

/* Takes the next warning from @s's bus, waiting up to @seconds, and checks
 * that its text (message and details) holds each of @words. */
static void
expect_warning (Src &s, std::initializer_list<const char *> words,
    int seconds = 0)
{
  GstMessage *warning = s.wait_message (GST_MESSAGE_WARNING, seconds);
  fail_unless (warning != nullptr, "no warning with '%s'", *words.begin ());
  std::string text = message_text (warning);
  gst_message_unref (warning);
  for (const char *w : words)
    fail_unless (strstr (text.c_str (), w), "'%s' not in: %s", w,
        text.c_str ());
}

/* --- Tests --------------------------------------------------------------- */

GST_START_TEST (test_headers_restored)
{
  std::string topic = filled_topic ("src-headers", 10);
  Src s (topic, "is-live=false stop-at=end");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();

  fail_unless (payloads_of (bufs) == expected_payloads (0, 10));
  check_caps (s, CAPS_STR);
  for (int i = 0; i < 10; i++) {
    GstBuffer *b = bufs[i];
    /* Not live: the first buffer at 0, then the producer's spacing. */
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DTS (b), i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 40 * GST_MSECOND);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b,
                                GST_BUFFER_FLAG_DELTA_UNIT),
        i % 5 != 0);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), i);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT),
        i == 0);
  }
  guint64 messages, bytes;
  g_object_get (s.src, "messages", &messages, "bytes", &bytes, nullptr);
  fail_unless_equals_uint64 (messages, 10);
  fail_unless_equals_uint64 (bytes, 10 * payload (0).size ());
  gint64 lag;
  g_object_get (s.src, "consumer-lag", &lag, nullptr);
  fail_unless_equals_int64 (lag, 0);
  GstCaps *unix_caps = gst_caps_new_empty_simple ("timestamp/x-unix");
  for (GstBuffer *b : bufs)
    fail_if (gst_buffer_get_reference_timestamp_meta (b, unix_caps));
  unref_all (bufs);

  /* The Kafka timestamps, as reference timestamps, when asked for. */
  topic = kafkatest::unique_topic ("src-reference-ts");
  fail_unless (kafkatest::create_topic (topic));
  const gint64 t0 = 1700000000000; /* ms since the epoch */
  {
    Producer p;
    for (int i = 0; i < 5; i++) {
      gstkafka::FrameInfo info = frame_info (3, i, i * 40 * GST_MSECOND);
      p.send (topic, payload (i), &info, RD_KAFKA_PARTITION_UA, t0 + i * 40);
    }
  }
  Src r (topic, "is-live=false stop-at=end add-reference-timestamp-meta=true");
  r.play ();
  bufs = r.until_eos ();
  fail_unless_equals_int (bufs.size (), 5);
  for (int i = 0; i < 5; i++) {
    GstReferenceTimestampMeta
        *meta = gst_buffer_get_reference_timestamp_meta (bufs[i], unix_caps);
    fail_unless (meta);
    fail_unless_equals_uint64 (meta->timestamp,
        GstClockTime (t0 + i * 40) * GST_MSECOND);
  }
  gst_caps_unref (unix_caps);
  unref_all (bufs);
}
GST_END_TEST;

GST_START_TEST (test_caps_change_and_discont)
{
  std::string topic = kafkatest::unique_topic ("src-discont");
  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    const char *other = "video/x-test, width=(int)8, height=(int)8";
    gstkafka::FrameInfo a0 = frame_info (1, 0, 0);
    gstkafka::FrameInfo a1 = frame_info (1, 1, 40 * GST_MSECOND, nullptr);
    /* A gap: seq 2 was lost. */
    gstkafka::FrameInfo a3 = frame_info (1, 3, 120 * GST_MSECOND, other);
    /* A restarted producer, whose timestamps start again at 0. */
    gstkafka::FrameInfo b0 = frame_info (2, 0, 0, other);
    gstkafka::FrameInfo b1 = frame_info (2, 1, 40 * GST_MSECOND, nullptr);
    for (auto *info : {&a0, &a1, &a3, &b0, &b1})
      p.send (topic, "x", info);
  }
  Src s (topic, "is-live=false stop-at=end");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless_equals_int (bufs.size (), 5);

  bool discont[5];
  for (int i = 0; i < 5; i++)
    discont[i] = GST_BUFFER_FLAG_IS_SET (bufs[i], GST_BUFFER_FLAG_DISCONT);
  fail_unless (
      discont[0] && !discont[1] && discont[2] && discont[3] && !discont[4]);
  /* Timestamps stay monotonic across the restart. */
  fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[1]), 40 * GST_MSECOND);
  fail_unless (GST_BUFFER_PTS (bufs[3]) >= GST_BUFFER_PTS (bufs[2]));
  fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[4]) -
                                 GST_BUFFER_PTS (bufs[3]),
      40 * GST_MSECOND);

  /* The caps changed once, as a caps event. */
  std::vector<std::string> caps = caps_pushed (s.h);
  fail_unless_equals_int (caps.size (), 2);
  fail_unless_equals_string (caps.back ().c_str (),
      "video/x-test, width=(int)8, height=(int)8");
  unref_all (bufs);
}
GST_END_TEST;

GST_START_TEST (test_start_from_earliest_offset_tail)
{
  /* Keyframes, which carry the caps, at offsets 0 and 5. */
  std::string topic = filled_topic ("src-start", 6);
  struct
  {
    const char *props;
    int first;
    /* Messages skipped before the first one with caps. */
    bool skipped;
  } cases[] = {
      {"start-from=earliest", 0, false},
      {"start-from=committed", 0, false},
      {"start-from=offset start-offset=5", 5, false},
      {"start-from=offset start-offset=-1", 5, false},
      /* A delta frame without caps, whose payload typefinding does not
       * recognise: skipped until the keyframe at 5. */
      {"start-from=offset start-offset=3", 5, true},
      {"start-from=offset start-offset=-2", 5, true},
  };
  for (auto &c : cases) {
    Src s (topic, std::string ("is-live=false stop-at=end ") + c.props);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == expected_payloads (c.first, 6),
        "%s: %d buffers", c.props, (int) bufs.size ());
    /* Joining mid-stream: the first buffer still starts at 0. */
    fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[0]), 0);
    GstMessage *info = s.wait_message (GST_MESSAGE_INFO, 0);
    fail_unless_equals_int (info != nullptr, c.skipped);
    if (info) {
      GError *err = nullptr;
      gst_message_parse_info (info, &err, nullptr);
      fail_unless (strstr (err->message, "skipping messages until one does"),
          "%s", err->message);
      g_error_free (err);
      gst_message_unref (info);
    }
    fail_if (s.wait_message (GST_MESSAGE_WARNING, 0));
    unref_all (bufs);
  }

  /* The end of the topic comes before a message with caps: no buffer, and
   * a warning that says how many messages were skipped. */
  topic = filled_topic ("src-start-nocaps", 5);
  Src s (topic, "is-live=false stop-at=end start-from=offset start-offset=2");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless_equals_int (bufs.size (), 0);
  GstMessage *warning = s.wait_message (GST_MESSAGE_WARNING, 0);
  fail_unless (warning);
  GError *err = nullptr;
  gst_message_parse_warning (warning, &err, nullptr);
  fail_unless (strstr (err->message, "3 messages were skipped"), "%s",
      err->message);
  g_error_free (err);
  gst_message_unref (warning);

  /* A producer that sends the caps with some of its keyframes only (small
   * audio packets, Ogg pages): the others say so, and a consumer that
   * starts at one of them looks for the caps in the messages just before,
   * else waits for the next ones, even when typefinding recognises the
   * container (an Ogg page without the stream's headers is no stream to
   * play)... */
  const std::string ogg_page = std::string ("OggS\0\2", 6) +
                               std::string (400, '\1');
  {
    g_autoptr (GstCaps) found = gst_type_find_helper_for_data (nullptr,
        reinterpret_cast<const guint8 *> (ogg_page.data ()), ogg_page.size (),
        nullptr);
    fail_unless (found != nullptr);
  }
  gint64 now_ms = g_get_real_time () / 1000;
  for (gint64 first_ts : {now_ms - 100, now_ms - 10000}) {
    topic = kafkatest::unique_topic ("src-start-elsewhere");
    fail_unless (kafkatest::create_topic (topic));
    {
      Producer p;
      for (int i = 0; i < 6; i++) {
        gstkafka::FrameInfo info = frame_info (9, i, i * 20 * GST_MSECOND,
            i % 4 ? nullptr : "application/ogg");
        info.caps_elsewhere = i % 4;
        p.send (topic, ogg_page + payload (i), &info, RD_KAFKA_PARTITION_UA,
            i ? now_ms + i : first_ts);
      }
    }
    Src e (topic, "is-live=false stop-at=end start-from=offset start-offset=1");
    e.play ();
    bufs = e.until_eos ();
    std::vector<std::string> pushed = caps_pushed (e.h);
    fail_unless_equals_int (pushed.size (), 1);
    fail_unless_equals_string (pushed[0].c_str (), "application/ogg");
    GstMessage *skipping = e.wait_message (GST_MESSAGE_INFO, 0);
    if (first_ts == now_ms - 100) {
      /* The caps went with a message 100 ms earlier: kafkasrc reads them
       * there and starts where it was asked to, losing nothing. */
      fail_unless_equals_int (bufs.size (), 5);
      assert_bytes (bufs[0], ogg_page + payload (1));
      fail_if (skipping != nullptr);
    } else {
      /* 10 s earlier, further than kafkasink ever leaves them: skipped to
       * the next message with caps, and said so. */
      fail_unless_equals_int (bufs.size (), 2);
      assert_bytes (bufs[0], ogg_page + payload (4));
      fail_unless (skipping != nullptr);
    }
    if (skipping)
      gst_message_unref (skipping);
    unref_all (bufs);
  }
  /* ...but a picture stands alone: a PNG plays at once. */
  topic = kafkatest::unique_topic ("src-start-elsewhere-png");
  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    std::string png (reinterpret_cast<const char *> (png_2x3),
        sizeof (png_2x3));
    for (int i = 0; i < 3; i++) {
      gstkafka::FrameInfo info = frame_info (10, i, i * 40 * GST_MSECOND,
          i ? nullptr : "image/png, width=(int)2, height=(int)3");
      info.caps_elsewhere = i;
      p.send (topic, png, &info);
    }
  }
  {
    Src e (topic, "is-live=false stop-at=end start-from=offset start-offset=1");
    e.play ();
    bufs = e.until_eos ();
    fail_unless_equals_int (bufs.size (), 2);
    unref_all (bufs);
    std::vector<std::string> pushed = caps_pushed (e.h);
    fail_unless (!pushed.empty ());
    fail_unless (g_str_has_prefix (pushed[0].c_str (), "image/png"));
    fail_if (e.wait_message (GST_MESSAGE_INFO, 0));
  }

  /* A producer that never had caps (appsrc without any): its keyframes
   * carry none either, so nothing is skipped; the payload goes out as
   * application/octet-stream, with a warning naming the caps property. */
  topic = kafkatest::unique_topic ("src-start-capsless");
  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    for (int i = 0; i < 3; i++) {
      gstkafka::FrameInfo info = frame_info (8, i, i * 40 * GST_MSECOND,
          nullptr);
      p.send (topic, payload (i), &info);
    }
  }
  Src c (topic, "is-live=false stop-at=end");
  c.play ();
  bufs = c.until_eos ();
  fail_unless (payloads_of (bufs) == expected_payloads (0, 3));
  unref_all (bufs);
  std::vector<std::string> caps = caps_pushed (c.h);
  fail_unless_equals_int (caps.size (), 1);
  fail_unless_equals_string (caps[0].c_str (), "application/octet-stream");
  warning = c.wait_message (GST_MESSAGE_WARNING, 0);
  fail_unless (warning);
  gst_message_parse_warning (warning, &err, nullptr);
  fail_unless (strstr (err->message, "set the caps property"), "%s",
      err->message);
  g_error_free (err);
  gst_message_unref (warning);
}
GST_END_TEST;

/* The offset @group committed for partition 0 of @topic. */
static gint64
committed_offset (const std::string &topic, const std::string &group)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_conf_set (conf, "bootstrap.servers", kafkatest::brokers (), errstr,
      sizeof (errstr));
  rd_kafka_conf_set (conf, "group.id", group.c_str (), errstr, sizeof (errstr));
  gstkafka::Handle rk (
      rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof (errstr)));
  fail_unless (rk != nullptr, "%s", errstr);
  gstkafka::TopicPartitionList list (rd_kafka_topic_partition_list_new (1));
  rd_kafka_topic_partition_list_add (list.get (), topic.c_str (), 0);
  fail_unless_equals_int (rd_kafka_committed (rk.get (), list.get (), 10000),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  return list->elems[0].offset;
}

/* A viewer whose group's offset retention deleted meanwhile resumes at the
 * oldest message and says which offsets it never saw; a viewer that
 * resumes where it was says nothing. */
GST_START_TEST (test_resume_after_retention)
{
  std::string topic = filled_topic ("src-retention", 20);
  std::string group = "retention-" + topic;
  {
    Src s (topic, "is-live=false num-buffers=6 group-id=" + group);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless_equals_int (bufs.size (), 6);
    unref_all (bufs);
  }
  gint64 committed = committed_offset (topic, group);
  fail_unless (committed == 5 || committed == 6, "committed %" G_GINT64_FORMAT,
      committed);
  fail_unless (kafkatest::delete_records (topic, 10));
  {
    Src s (topic, "is-live=false stop-at=end group-id=" + group);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == expected_payloads (10, 20));
    std::string deleted = "deleted offsets " + std::to_string (committed) +
                          " to 9 before group '" + group + "'";
    expect_warning (s,
        {deleted.c_str (), "resuming at offset 10", "retention.ms"});
    unref_all (bufs);
  }
  {
    Producer p;
    gstkafka::FrameInfo info = frame_info (7, 20, 0);
    p.send (topic, payload (20), &info);
  }
  Src s (topic, "is-live=false stop-at=end group-id=" + group);
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (!bufs.empty ());
  assert_bytes (bufs.back (), payload (20));
  fail_if (s.wait_message (GST_MESSAGE_WARNING, 0));
  unref_all (bufs);
}
GST_END_TEST;

/* A start-offset that the partition does not hold: deleted by retention,
 * kafkasrc starts at the oldest message; past the end, at the next one
 * produced. Either way it says so, instead of librdkafka's silent start at
 * the beginning. */
GST_START_TEST (test_start_offset_out_of_range)
{
  std::string topic = filled_topic ("src-offset-range", 10);
  fail_unless (kafkatest::delete_records (topic, 5));
  {
    Src s (topic, "is-live=false stop-at=end start-from=offset start-offset=1");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == expected_payloads (5, 10));
    unref_all (bufs);
    expect_warning (s, {"start-offset 1 is no longer in the log",
                           "starting at offset 5", "holds offsets 5 to 9"});
  }

  Src s (topic, "start-from=offset start-offset=100");
  s.play ();
  expect_warning (s,
      {"start-offset 100 is past the end",
          "starting at offset 10, with the next message produced"},
      30);
  {
    Producer p;
    gstkafka::FrameInfo info = frame_info (7, 10, 0);
    p.send (topic, payload (10), &info);
  }
  GstBuffer *buf = gst_harness_pull (s.h);
  fail_unless (buf != nullptr);
  assert_bytes (buf, payload (10));
  gst_buffer_unref (buf);
}
GST_END_TEST;

/* Two cameras in one topic under their keys, with messages of other
 * clients between them: key= plays one camera, with its own caps, and
 * commits past the others' messages. */
GST_START_TEST (test_key_filter)
{
  const char *caps_2 = "video/x-test, width=(int)8, height=(int)8";
  std::string topic = kafkatest::unique_topic ("src-key");
  fail_unless (kafkatest::create_topic (topic));
  std::vector<std::string> cam_1;
  gint64 now_ms = g_get_real_time () / 1000;
  {
    Producer p;
    for (int i = 0; i < 6; i++) {
      /* cam-1: caps with its first frame only, later ones say they went
       * elsewhere; cam-2: other caps, and an end-of-stream marker in the
       * middle; a client without headers or key. */
      gstkafka::FrameInfo one = frame_info (1, i, i * 40 * GST_MSECOND,
          i ? nullptr : CAPS_STR);
      one.caps_elsewhere = i;
      p.send (topic, "one-" + payload (i), &one, 0, now_ms + i, "cam-1");
      cam_1.push_back ("one-" + payload (i));
      gstkafka::FrameInfo two = frame_info (2, i, i * 40 * GST_MSECOND, caps_2);
      two.eos = i == 3;
      p.send (topic, "two-" + payload (i), &two, 0, now_ms + i, "cam-2");
      p.send (topic, "bare-" + payload (i), nullptr, 0, now_ms + i);
    }
  }
  std::string group = "key-" + topic;
  {
    Src s (topic, "is-live=false stop-at=end key=cam-1 group-id=" + group);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == cam_1, "%d buffers", (int) bufs.size ());
    std::vector<std::string> pushed = caps_pushed (s.h);
    fail_unless_equals_int (pushed.size (), 1);
    fail_unless_equals_string (pushed[0].c_str (), CAPS_STR);
    for (size_t i = 1; i < bufs.size (); i++)
      fail_if (GST_BUFFER_FLAG_IS_SET (bufs[i], GST_BUFFER_FLAG_DISCONT),
          "buffer %d", (int) i);
    fail_if (s.wait_message (GST_MESSAGE_WARNING, 0));
    unref_all (bufs);
  }
  /* Committed past the last message, whatever its key. */
  fail_unless_equals_int64 (committed_offset (topic, group), 18);

  /* cam-2's end-of-stream marker (its message 3) has messages after it:
   * passed over, as without a key, and the five others played. */
  {
    Src s (topic, "is-live=false stop-at=end key=cam-2");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless_equals_int (bufs.size (), 5);
    unref_all (bufs);
  }

  /* Starting at a cam-1 frame without caps: the look back for them finds
   * cam-1's, not the cam-2 caps between. */
  {
    Src s (topic,
        "is-live=false stop-at=end key=cam-1 start-from=offset start-offset=6");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) ==
                 std::vector<std::string> (cam_1.begin () + 2, cam_1.end ()));
    std::vector<std::string> pushed = caps_pushed (s.h);
    fail_unless_equals_int (pushed.size (), 1);
    fail_unless_equals_string (pushed[0].c_str (), CAPS_STR);
    fail_if (s.wait_message (GST_MESSAGE_INFO, 0));
    unref_all (bufs);
  }

  /* A key nobody wrote (a typo): nothing, EOS at the end, and a warning
   * that names the keys there are. */
  Src s (topic, "is-live=false stop-at=end key=cam-3");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless_equals_int (bufs.size (), 0);
  expect_warning (s, {"None of the 18 messages", "'cam-3' up to the end",
                         "keys seen: 'cam-1', 'cam-2', '(no key)'"});

  /* The same typo in a live viewer, which waits for more: said once it
   * read the whole topic. */
  Src live (topic, "key=cam-3");
  live.play ();
  expect_warning (live,
      {"None of the 18 messages", "up to the end of the topic"}, 30);
}
GST_END_TEST;

/* Sends parts @from to @to - 1 of the @count parts kafkasink splits @data
 * into, as buffer @seq of session 9; @size is what the parts say the whole
 * holds (@data's size when 0). */
static void
send_parts (Producer &p, const std::string &topic, guint64 seq,
    const std::string &data, guint32 count, guint32 from, guint32 to,
    const char *key = nullptr, guint64 size = 0)
{
  gsize part = (data.size () + count - 1) / count;
  for (guint32 i = from; i < to; i++) {
    gstkafka::FrameInfo info = frame_info (9, seq, seq * 40 * GST_MSECOND,
        i == 0 ? CAPS_STR : nullptr);
    info.caps_elsewhere = i > 0;
    info.frag_index = i;
    info.frag_count = count;
    info.frag_size = size ? size : data.size ();
    p.send (topic, data.substr (i * part, part), &info, 0, 0, key);
  }
}

/* Buffers kafkasink split into several messages (max-message-size) come
 * out whole, one memory per part; a buffer that lacks a part is dropped
 * with a warning, and a viewer that starts among the parts of one starts
 * with the next whole buffer. */
GST_START_TEST (test_split_buffers)
{
  std::string topic = kafkatest::unique_topic ("src-split");
  fail_unless (kafkatest::create_topic (topic));
  const std::string a (30, 'a'), b (20, 'b'), c (30, 'c'), d (25, 'd'),
      e (12, 'e');
  {
    Producer p;
    send_parts (p, topic, 0, a, 3, 0, 3); /* offsets 0 to 2 */
    send_parts (p, topic, 1, b, 2, 0, 2); /* 3, 4 */
    /* The producer stopped before the last part. */
    send_parts (p, topic, 2, c, 3, 0, 2); /* 5, 6 */
    send_parts (p, topic, 3, d, 5, 0, 5); /* 7 to 11 */
    /* Parts that do not add up to the size they announce. */
    send_parts (p, topic, 4, e, 2, 0, 2, nullptr, 13); /* 12, 13 */
    gstkafka::FrameInfo whole = frame_info (9, 5, 5 * 40 * GST_MSECOND,
        nullptr);
    p.send (topic, payload (5), &whole, 0); /* 14 */
  }
  {
    Src s (topic, "is-live=false stop-at=end");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless_equals_int (bufs.size (), 4);
    /* (Before mapping them: a map merges the memories of a writable
     * buffer.) */
    const guint memories[] = {3, 2, 5, 1};
    const guint64 offsets[][2] = {{0, 3}, {3, 5}, {7, 12}, {14, 15}};
    for (guint i = 0; i < 4; i++) {
      fail_unless_equals_int (gst_buffer_n_memory (bufs[i]), memories[i]);
      fail_unless_equals_uint64 (GST_BUFFER_OFFSET (bufs[i]), offsets[i][0]);
      fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (bufs[i]),
          offsets[i][1]);
    }
    fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[1]) -
                                   GST_BUFFER_PTS (bufs[0]),
        40 * GST_MSECOND);
    fail_unless (payloads_of (bufs) ==
                 std::vector<std::string> ({a, b, d, payload (5)}));
    fail_if (GST_BUFFER_FLAG_IS_SET (bufs[1], GST_BUFFER_FLAG_DISCONT));
    fail_unless (GST_BUFFER_FLAG_IS_SET (bufs[2], GST_BUFFER_FLAG_DISCONT));
    std::vector<std::string> pushed = caps_pushed (s.h);
    fail_unless_equals_int (pushed.size (), 1);
    fail_unless_equals_string (pushed[0].c_str (), CAPS_STR);
    unref_all (bufs);

    const char *expected[][2] =
        {{"of 30 bytes that kafkasink split into 3 messages",
             "offset 7 is part 0 of 5 of another buffer, not part 2"},
            {"of 13 bytes that kafkasink split into 2 messages",
                "its parts hold 12 bytes"}};
    for (auto &words : expected)
      expect_warning (s, {words[0], words[1]});
    fail_if (s.wait_message (GST_MESSAGE_WARNING, 0));
  }

  /* Started at the second part of a buffer: the next whole one, and no
   * warning for the parts passed over. */
  {
    Src s (topic, "is-live=false stop-at=end start-from=offset start-offset=1");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (
        payloads_of (bufs) == std::vector<std::string> ({b, d, payload (5)}));
    unref_all (bufs);
    expect_warning (s, {"of 30 bytes"});
  }

  /* Started at the first part of a buffer whose caps went with an earlier
   * message (raw video: no frame is a delta unit, not every one carries
   * the caps): the caps found by looking back apply to the joined buffer. */
  std::string raw = kafkatest::unique_topic ("src-split-lookback");
  fail_unless (kafkatest::create_topic (raw));
  {
    Producer p;
    gstkafka::FrameInfo first = frame_info (9, 0, 0);
    p.send (raw, a, &first, 0); /* offset 0, with the caps */
    for (guint32 i = 0; i < 2; i++) {
      gstkafka::FrameInfo part = frame_info (9, 1, 40 * GST_MSECOND, nullptr);
      part.caps_elsewhere = true;
      part.frag_index = i;
      part.frag_count = 2;
      part.frag_size = b.size ();
      p.send (raw, b.substr (i * 10, 10), &part, 0); /* 1, 2 */
    }
    gstkafka::FrameInfo next = frame_info (9, 2, 80 * GST_MSECOND, nullptr);
    next.caps_elsewhere = true;
    p.send (raw, c, &next, 0); /* 3 */
  }
  {
    Src s (raw, "is-live=false stop-at=end start-from=offset start-offset=1");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == std::vector<std::string> ({b, c}),
        "%d buffers", (int) bufs.size ());
    std::vector<std::string> pushed = caps_pushed (s.h);
    fail_unless_equals_int (pushed.size (), 1);
    fail_unless_equals_string (pushed[0].c_str (), CAPS_STR);
    fail_if (s.wait_message (GST_MESSAGE_INFO, 0));
    unref_all (bufs);
  }

  /* A group commits no offset past the first part of a buffer it has not
   * joined yet, even past messages of other keys: the next run reads all
   * its parts. */
  std::string keyed = kafkatest::unique_topic ("src-split-commit");
  fail_unless (kafkatest::create_topic (keyed));
  {
    Producer p;
    send_parts (p, keyed, 0, a, 3, 0, 2, "cam");    /* 0, 1 */
    p.send (keyed, "other", nullptr, 0, 0, "yard"); /* 2 */
  }
  std::string props = "is-live=false stop-at=end key=cam group-id=" + keyed;
  {
    Src s (keyed, props);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless_equals_int (bufs.size (), 0);
  }
  fail_unless_equals_int64 (committed_offset (keyed, keyed), 0);
  {
    Producer p;
    send_parts (p, keyed, 0, a, 3, 2, 3, "cam"); /* 3 */
  }
  {
    Src s (keyed, props);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == std::vector<std::string> ({a}));
    unref_all (bufs);
  }
  fail_unless_equals_int64 (committed_offset (keyed, keyed), 4);
}
GST_END_TEST;

/* A split buffer whose producer died between two parts, followed by
 * another producer's whole buffers: once its next part is not among the
 * next 10000 messages (kafkasrc's JOIN_WINDOW_MESSAGES), it is dropped
 * with a warning, and the group commits past it again. */
GST_START_TEST (test_split_buffer_abandoned)
{
  const int window = 10000;
  std::string topic = kafkatest::unique_topic ("src-split-abandoned");
  fail_unless (kafkatest::create_topic (topic));
  const std::string a (30, 'a');
  {
    Producer p;
    send_parts (p, topic, 0, a, 3, 0, 2); /* offsets 0, 1 */
    for (int i = 0; i <= window; i++) {   /* offsets 2 to window + 2 */
      gstkafka::FrameInfo info = frame_info (10, i, i * 40 * GST_MSECOND,
          i == 0 ? CAPS_STR : nullptr);
      info.caps_elsewhere = i > 0;
      p.send (topic, payload (i), &info, 0);
    }
  }
  std::string group = "abandoned-" + topic;
  {
    Src s (topic, "is-live=false stop-at=end group-id=" + group);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless_equals_int (bufs.size (), window + 1);
    assert_bytes (bufs[0], payload (0));
    assert_bytes (bufs[window], payload (window));
    /* Offset window + 1, the window-th message after the last part, was
     * handed out when the buffer was dropped: the next one is DISCONT. */
    fail_if (
        GST_BUFFER_FLAG_IS_SET (bufs[window - 1], GST_BUFFER_FLAG_DISCONT));
    fail_unless (
        GST_BUFFER_FLAG_IS_SET (bufs[window], GST_BUFFER_FLAG_DISCONT));
    unref_all (bufs);

    expect_warning (s, {"of 30 bytes that kafkasink split into 3 messages",
                           "its next part did not come within 10000 messages",
                           "parts 0 to 1 at offsets 0 to 1"});
    fail_if (s.wait_message (GST_MESSAGE_WARNING, 0));
  }
  fail_unless_equals_int64 (committed_offset (topic, group), window + 3);
}
GST_END_TEST;

/* add-kafka-meta: each buffer says where its message came from, and keeps
 * it through a copy. */
GST_START_TEST (test_kafka_meta)
{
  std::string topic = kafkatest::unique_topic ("src-meta");
  fail_unless (kafkatest::create_topic (topic));
  gint64 now_ms = g_get_real_time () / 1000;
  {
    Producer p;
    gstkafka::FrameInfo info = frame_info (3, 0, 0);
    p.send (topic, payload (0), &info, 0, now_ms - 5, "cam\0-1", 5);
    p.send (topic, payload (1), nullptr, 0, now_ms);
  }
  Src s (topic, "is-live=false stop-at=end add-kafka-meta=true");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless_equals_int (bufs.size (), 2);
  for (int i = 0; i < 2; i++) {
    GstBuffer *copy = gst_buffer_copy (bufs[i]);
    for (GstBuffer *b : {bufs[i], copy}) {
      GstCustomMeta *meta = gst_buffer_get_custom_meta (b, "GstKafkaMeta");
      fail_unless (meta != nullptr, "buffer %d", i);
      const GstStructure *st = gst_custom_meta_get_structure (meta);
      fail_unless_equals_string (gst_structure_get_string (st, "topic"),
          topic.c_str ());
      gint partition = -1;
      gint64 offset = -1, timestamp = -1;
      fail_unless (gst_structure_get (st, "partition", G_TYPE_INT, &partition,
          "offset", G_TYPE_INT64, &offset, "timestamp", G_TYPE_INT64,
          &timestamp, nullptr));
      fail_unless_equals_int (partition, 0);
      fail_unless_equals_int64 (offset, i);
      fail_unless_equals_int64 (timestamp, i ? now_ms : now_ms - 5);
      const GValue *key = gst_structure_get_value (st, "key");
      if (i == 0) {
        fail_unless (key && G_VALUE_HOLDS (key, G_TYPE_BYTES));
        GBytes *bytes = static_cast<GBytes *> (g_value_get_boxed (key));
        gsize size;
        const void *data = g_bytes_get_data (bytes, &size);
        fail_unless_equals_int (size, 5);
        fail_unless (memcmp (data, "cam\0-1", 5) == 0);
      } else {
        fail_unless (key == nullptr, "a key-less message has no key field");
      }
    }
    gst_buffer_unref (copy);
  }
  unref_all (bufs);

  /* Off by default. */
  Src plain (topic, "is-live=false stop-at=end");
  plain.play ();
  bufs = plain.until_eos ();
  fail_unless_equals_int (bufs.size (), 2);
  fail_if (gst_buffer_get_custom_meta (bufs[0], "GstKafkaMeta"));
  unref_all (bufs);
}
GST_END_TEST;

GST_START_TEST (test_start_from_latest)
{
  std::string topic = filled_topic ("src-latest", 3);
  Src s (topic, "start-from=latest");
  s.play ();
  /* Only messages produced after the element started: produce until one
   * arrives, the three old ones must never show up. */
  Producer p;
  GstBuffer *buf = nullptr;
  for (int i = 0; i < 300 && !buf; i++) {
    p.send (topic, "new");
    p.flush ();
    buf = gst_harness_try_pull (s.h);
    if (!buf)
      g_usleep (100 * 1000);
  }
  fail_unless (buf != nullptr);
  assert_bytes (buf, "new");
  fail_unless (GST_BUFFER_OFFSET (buf) >= 3);
  gst_buffer_unref (buf);
}
GST_END_TEST;

GST_START_TEST (test_start_and_stop_timestamp)
{
  std::string topic = kafkatest::unique_topic ("src-time");
  fail_unless (kafkatest::create_topic (topic));
  gint64 base = g_get_real_time () / 1000 - 60000;
  {
    Producer p;
    for (int i = 0; i < 8; i++)
      p.send (topic, payload (i), nullptr, 0, base + i * 1000);
  }
  g_autofree gchar *props =
      g_strdup_printf ("is-live=false caps=text/plain start-from=timestamp "
                       "start-time=%" G_GINT64_FORMAT
                       " stop-at=timestamp stop-time=%" G_GINT64_FORMAT,
          base + 2500, base + 5000);
  Src s (topic, props);
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  /* Messages at 3 s and 4 s; the one at 5 s is the stop. */
  fail_unless (payloads_of (bufs) == expected_payloads (3, 5));
  /* Three messages after the stop. */
  gint64 lag;
  g_object_get (s.src, "consumer-lag", &lag, nullptr);
  fail_unless_equals_int64 (lag, 3);
  /* No gst.* headers: timed by the Kafka timestamps. */
  fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[0]), 0);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[1]), GST_SECOND);
  check_caps (s, "text/plain");
  unref_all (bufs);
}
GST_END_TEST;

GST_START_TEST (test_resume_committed)
{
  std::string topic = filled_topic ("src-resume", 5);
  std::string group = kafkatest::unique_topic ("group");
  std::string props = "is-live=false stop-at=end group-id=" + group;
  {
    Src s (topic, props);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == expected_payloads (0, 5));
    unref_all (bufs);
  }
  {
    Producer p;
    for (int i = 5; i < 8; i++)
      p.send (topic, payload (i));
  }
  /* Committed at EOS: the next run starts right after. */
  {
    Src s (topic, props);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == expected_payloads (5, 8));
    unref_all (bufs);
  }
  {
    Producer p;
    for (int i = 8; i < 12; i++)
      p.send (topic, payload (i));
  }
  /* Stopped while waiting for more (no EOS): committed at stop. Delivery
   * is at least once: the last buffer may come again, nothing is lost. */
  {
    Src s (topic, "is-live=false group-id=" + group);
    s.play ();
    for (int i = 8; i < 12; i++) {
      GstBuffer *b = gst_harness_pull (s.h);
      assert_bytes (b, payload (i));
      gst_buffer_unref (b);
    }
  }
  {
    Producer p;
    p.send (topic, payload (12));
  }
  {
    Src s (topic, props);
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    std::vector<std::string> got = payloads_of (bufs);
    fail_unless (got == expected_payloads (11, 13) ||
                     got == expected_payloads (12, 13),
        "resumed at %s", got.empty () ? "nothing" : got[0].c_str ());
    unref_all (bufs);
  }
  {
    Producer p;
    p.send (topic, payload (13));
  }
  /* An explicit partition resumes from the group's offset too. */
  {
    Src s (topic, props + " partition=0");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == expected_payloads (13, 14));
    unref_all (bufs);
  }
}
GST_END_TEST;

GST_START_TEST (test_typefind_kcat)
{
  std::string topic = kafkatest::unique_topic ("src-png");
  fail_unless (kafkatest::create_topic (topic));
  std::string png (reinterpret_cast<const char *> (png_2x3), sizeof (png_2x3));
  kcat_produce (topic, png, {});
  kcat_produce (topic, png, {});

  Src s (topic, "is-live=false stop-at=end");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless_equals_int (bufs.size (), 2);
  fail_unless (bytes_of (bufs[0]) == png);
  std::string caps = s.caps ();
  fail_unless (g_str_has_prefix (caps.c_str (), "image/png"), "%s",
      caps.c_str ());
  unref_all (bufs);
}
GST_END_TEST;

GST_START_TEST (test_malformed_headers)
{
  std::string topic = kafkatest::unique_topic ("src-malformed");
  fail_unless (kafkatest::create_topic (topic));
  kcat_produce (topic, "A", {"-H", "gst.caps=video/x-raw,width=(int)oops{"});
  kcat_produce (topic, "B", {"-H", "gst.pts=abc"});
  kcat_produce (topic, "C",
      {"-H", "gst.seq=aaaaaaaa", "-H", "gst.seq=bbbbbbbb"});
  kcat_produce (topic, "D", {});

  {
    Src s (topic, "is-live=false stop-at=end caps=text/plain");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (
        payloads_of (bufs) == std::vector<std::string> ({"A", "B", "C", "D"}));
    check_caps (s, "text/plain");
    const char *expect[] = {"offset 0", "offset 1", "offset 2"};
    for (const char *e : expect) {
      g_autoptr (GstMessage) msg = s.wait_message (GST_MESSAGE_WARNING, 5);
      fail_unless (msg != nullptr, "no warning for %s", e);
      std::string text = message_text (msg);
      fail_unless (strstr (text.c_str (), e) != nullptr, "%s", text.c_str ());
      fail_unless (strstr (text.c_str (), topic.c_str ()) != nullptr);
    }
    unref_all (bufs);
  }
  {
    Src s (topic,
        "is-live=false stop-at=end caps=text/plain malformed-policy=skip");
    s.play ();
    std::vector<GstBuffer *> bufs = s.until_eos ();
    fail_unless (payloads_of (bufs) == std::vector<std::string> ({"D"}));
    unref_all (bufs);
  }
}
GST_END_TEST;

/* Caps strings that come back, malformed ones repeated, and a string that
 * differs from the last one but gives equal caps. */
GST_START_TEST (test_caps_strings_repeat)
{
  std::string topic = kafkatest::unique_topic ("src-caps-repeat");
  fail_unless (kafkatest::create_topic (topic));
  const char *bad = "gst.caps=video/x-raw,width=(int)oops{";
  kcat_produce (topic, "A", {"-H", "gst.caps=text/x-one"});
  kcat_produce (topic, "B", {"-H", bad});
  kcat_produce (topic, "C", {"-H", bad});
  kcat_produce (topic, "D", {"-H", "gst.caps=text/x-two"});
  kcat_produce (topic, "E", {"-H", "gst.caps=text/x-one"});
  kcat_produce (topic, "F", {"-H", "gst.caps=text/x-one "});
  kcat_produce (topic, "G", {"-H", bad});

  Src s (topic, "is-live=false stop-at=end");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (payloads_of (bufs) ==
               std::vector<std::string> ({"A", "B", "C", "D", "E", "F", "G"}));

  std::vector<std::string> caps = caps_pushed (s.h);
  fail_unless (caps == std::vector<std::string> (
                           {"text/x-one", "text/x-two", "text/x-one"}));

  /* One warning for the malformed caps, posted before the buffer. */
  g_autoptr (GstMessage)
      msg = gst_bus_pop_filtered (s.bus, GST_MESSAGE_WARNING);
  fail_unless (msg != nullptr);
  std::string text = message_text (msg);
  fail_unless (strstr (text.c_str (), "offset 1") != nullptr, "%s",
      text.c_str ());
  fail_unless (strstr (text.c_str (), "oops{") != nullptr, "%s", text.c_str ());
  g_autoptr (GstMessage)
      more = gst_bus_pop_filtered (s.bus, GST_MESSAGE_WARNING);
  fail_unless (more == nullptr);
  unref_all (bufs);
}
GST_END_TEST;

/* The zero-copy contract: each buffer's memory is librdkafka's payload,
 * whose address kafkasrc logs when wrapping it. */
static std::mutex wrapped_lock;
static std::map<guint64, std::string> wrapped;

static void
record_wrapped (GstDebugCategory *category, GstDebugLevel, const gchar *,
    const gchar *, gint, GObject *, GstDebugMessage *message, gpointer)
{
  if (strcmp (gst_debug_category_get_name (category), "kafkasrc") != 0)
    return;
  const gchar *text = gst_debug_message_get (message);
  const gchar *off = strstr (text, "offset ");
  const gchar *payload = strstr (text, "wraps payload ");
  if (!off || !payload)
    return;
  guint64 offset = g_ascii_strtoull (off + 7, nullptr, 10);
  payload += strlen ("wraps payload ");
  std::lock_guard<std::mutex> lk (wrapped_lock);
  wrapped[offset] = std::string (payload, strcspn (payload, " "));
}

GST_START_TEST (test_zero_copy)
{
  std::string topic = filled_topic ("src-zerocopy", 5);
  gst_debug_set_threshold_for_name ("kafkasrc", GST_LEVEL_LOG);
  gst_debug_remove_log_function (gst_debug_log_default);
  gst_debug_add_log_function (record_wrapped, nullptr, nullptr);

  Src s (topic, "is-live=false stop-at=end");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  gst_debug_remove_log_function (record_wrapped);
  gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
  gst_debug_set_threshold_for_name ("kafkasrc", GST_LEVEL_NONE);

  fail_unless_equals_int (bufs.size (), 5);
  for (GstBuffer *b : bufs) {
    fail_unless_equals_int (gst_buffer_n_memory (b), 1);
    GstMapInfo map;
    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    g_autofree gchar *ptr = g_strdup_printf ("%p", map.data);
    gst_buffer_unmap (b, &map);
    std::lock_guard<std::mutex> lk (wrapped_lock);
    fail_unless_equals_string (ptr, wrapped[GST_BUFFER_OFFSET (b)].c_str ());
  }
  unref_all (bufs);
}
GST_END_TEST;

/* A buffer may outlive the element that made it: stopping does not wait
 * for it, and its bytes stay valid. */
GST_START_TEST (test_buffer_outlives_stop)
{
  std::string topic = filled_topic ("src-outlive", 3);
  GstBuffer *buf;
  {
    Src s (topic, "is-live=false");
    s.play ();
    buf = gst_harness_pull (s.h);
    fail_unless_equals_int (gst_element_set_state (s.src, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  assert_bytes (buf, payload (0));
  gst_buffer_unref (buf);
}
GST_END_TEST;

static void
check_prompt_stop (const char *extra)
{
  Src s ("no-such-topic", extra);
  gst_util_set_object_arg (G_OBJECT (s.src), "brokers", "127.0.0.1:1");
  s.play ();
  /* It is polling: the unreachable broker is on the bus. */
  g_autoptr (GstMessage) msg = s.wait_message (GST_MESSAGE_WARNING);
  fail_unless (msg != nullptr);
  std::string text = message_text (msg);
  fail_unless (strstr (text.c_str (), "127.0.0.1:1") != nullptr, "%s",
      text.c_str ());
  /* The state change returns (the test timeout is the judge). */
  fail_unless_equals_int (gst_element_set_state (s.src, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
}

GST_START_TEST (test_unlock_broker_down)
{
  check_prompt_stop ("");
  check_prompt_stop ("group-id=down");
}
GST_END_TEST;

GST_START_TEST (test_broker_down_timeout)
{
  Src s ("no-such-topic", "timeout=1");
  gst_util_set_object_arg (G_OBJECT (s.src), "brokers", "127.0.0.1:1");
  s.play ();
  g_autoptr (GstMessage) msg = s.wait_message (GST_MESSAGE_ERROR);
  fail_unless (msg != nullptr);
  std::string text = message_text (msg);
  fail_unless (strstr (text.c_str (), "for 1 seconds") != nullptr, "%s",
      text.c_str ());
}
GST_END_TEST;

GST_START_TEST (test_invalid_topic_name)
{
  /* The broker would answer "Invalid topic" forever: kafkasrc refuses to
   * start instead of waiting for the topic to appear. */
  for (const char *topic : {"my topic", "frames/1", ""}) {
    GstElement *src = gst_element_factory_make ("kafkasrc", nullptr);
    gst_object_ref_sink (src);
    g_object_set (src, "brokers", kafkatest::brokers (), "topic", topic,
        nullptr);
    GstBus *bus = gst_bus_new ();
    gst_element_set_bus (src, bus);
    fail_unless_equals_int (gst_element_set_state (src, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (msg != nullptr);
    g_autoptr (GError) err = nullptr;
    gst_message_parse_error (msg, &err, nullptr);
    fail_unless (g_error_matches (err, GST_RESOURCE_ERROR,
                     GST_RESOURCE_ERROR_SETTINGS),
        "%s", err->message);
    if (*topic) {
      std::string expected = std::string ("'") + topic +
                             "' is not a valid Kafka topic name: it contains";
      fail_unless (strstr (err->message, expected.c_str ()) != nullptr, "%s",
          err->message);
    } else {
      fail_unless (strstr (err->message, "topic property") != nullptr, "%s",
          err->message);
    }
    gst_element_set_state (src, GST_STATE_NULL);
    gst_element_set_bus (src, nullptr);
    gst_object_unref (bus);
    gst_object_unref (src);
  }
}
GST_END_TEST;

GST_START_TEST (test_time_settings)
{
  /* Times that select nothing are refused at start, saying why. */
  struct
  {
    const char *props;
    const char *words;
  } cases[] = {
      {"start-from=timestamp start-time=1795741009",
          "start-time=1795741009 is in the first days of 1970"},
      {"start-from=timestamp start-time=1795741009",
          "start-time=1795741009000 if it is in seconds"},
      {"stop-at=timestamp", "stop-at=timestamp needs stop-time"},
      {"stop-at=timestamp stop-time=1795741009", "stop-time=1795741009 is in"},
      {"start-from=timestamp start-time=1795741009000 stop-at=timestamp "
       "stop-time=1795741008000",
          "is not after start-time=1795741009000"},
  };
  for (auto &c : cases) {
    GstElement *src = gst_element_factory_make ("kafkasrc", nullptr);
    gst_object_ref_sink (src);
    g_object_set (src, "brokers", kafkatest::brokers (), "topic", "t", nullptr);
    g_auto (GStrv) kv = g_strsplit (c.props, " ", -1);
    for (guint i = 0; kv[i]; i++) {
      gchar *eq = strchr (kv[i], '=');
      *eq = '\0';
      gst_util_set_object_arg (G_OBJECT (src), kv[i], eq + 1);
    }
    GstBus *bus = gst_bus_new ();
    gst_element_set_bus (src, bus);
    fail_unless_equals_int (gst_element_set_state (src, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (msg != nullptr, "%s", c.props);
    std::string text = message_text (msg);
    fail_unless (strstr (text.c_str (), c.words), "%s: %s", c.props,
        text.c_str ());
    gst_element_set_state (src, GST_STATE_NULL);
    gst_element_set_bus (src, nullptr);
    gst_object_unref (bus);
    gst_object_unref (src);
  }
}
GST_END_TEST;

GST_START_TEST (test_topic_appears_later)
{
  std::string topic = kafkatest::unique_topic ("src-later");
  Src s (topic, "caps=text/plain stats-interval=100");
  s.play ();
  g_autoptr (GstMessage) msg = s.wait_message (GST_MESSAGE_WARNING);
  fail_unless (msg != nullptr);
  std::string text = message_text (msg);
  fail_unless (strstr (text.c_str (), "does not exist") != nullptr, "%s",
      text.c_str ());

  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    p.send (topic, "hello");
  }
  GstBuffer *buf = gst_harness_pull (s.h);
  fail_unless (buf != nullptr);
  assert_bytes (buf, "hello");
  gst_buffer_unref (buf);

  /* Statistics on the bus, counting the message. */
  for (;;) {
    g_autoptr (GstMessage) stats = s.wait_message (GST_MESSAGE_ELEMENT, 10);
    fail_unless (stats != nullptr);
    const GstStructure *st = gst_message_get_structure (stats);
    guint64 messages = 0;
    if (!gst_structure_has_name (st, "kafkasrc-stats") ||
        !gst_structure_get_uint64 (st, "messages", &messages) || !messages)
      continue;
    fail_unless_equals_uint64 (messages, 1);
    fail_unless (gst_structure_has_field (st, "librdkafka"));
    break;
  }
}
GST_END_TEST;

/* A topic that does not exist while the broker is up: one warning, not one
 * every few seconds, and #GstKafkaSrc:timeout ends the wait. */
GST_START_TEST (test_missing_topic_timeout)
{
  std::string topic = kafkatest::unique_topic ("src-missing");
  Src s (topic, "timeout=3");
  s.play ();
  int warnings = 0, infos = 0;
  for (;;) {
    g_autoptr (GstMessage) m = s.wait_message (GstMessageType (
        GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_INFO));
    fail_unless (m != nullptr, "no error after 30 s");
    std::string text = message_text (m);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_INFO) {
      infos++;
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING) {
      fail_unless (strstr (text.c_str (), "does not exist (yet)") != nullptr,
          "%s", text.c_str ());
      warnings++;
    } else {
      fail_unless (strstr (text.c_str (), "did not appear within 3 seconds") !=
                       nullptr,
          "%s", text.c_str ());
      break;
    }
  }
  fail_unless_equals_int (warnings, 1);
  fail_unless_equals_int (infos, 0);
}
GST_END_TEST;

/* The topic is deleted while a group member reads it: a warning says so,
 * and once it is created again the member reads it from its start. */
GST_START_TEST (test_topic_deleted)
{
  std::string topic = kafkatest::unique_topic ("src-deleted");
  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    p.send (topic, "before");
  }
  Src s (topic, "caps=text/plain group-id=" + topic);
  s.play ();
  GstBuffer *buf = gst_harness_pull (s.h);
  assert_bytes (buf, "before");
  gst_buffer_unref (buf);

  fail_unless (kafkatest::delete_topic (topic));
  expect_warning (s, {"no longer exists"}, 30);
  /* Not back before it is, and warned once. */
  GstMessage *early = s.wait_message (GstMessageType (GST_MESSAGE_INFO |
                                                      GST_MESSAGE_WARNING),
      5);
  fail_if (early != nullptr, "%s", early ? message_text (early).c_str () : "");

  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    p.send (topic, "after");
  }
  g_autoptr (GstMessage) info = s.wait_message (GST_MESSAGE_INFO, 30);
  fail_unless (info != nullptr);
  buf = gst_harness_pull (s.h);
  fail_unless (buf != nullptr);
  assert_bytes (buf, "after");
  gst_buffer_unref (buf);
}
GST_END_TEST;

/* A second member of a group on a topic of one partition gets nothing:
 * it says why, and takes over when the first one leaves. */
GST_START_TEST (test_idle_group_member)
{
  std::string topic = kafkatest::unique_topic ("src-idle");
  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    p.send (topic, "first");
  }
  std::string props = "caps=text/plain group-id=" + topic;
  auto a = std::make_unique<Src> (topic, props);
  a->play ();
  GstBuffer *buf = gst_harness_pull (a->h);
  assert_bytes (buf, "first");
  gst_buffer_unref (buf);

  Src b (topic, props);
  b.play ();
  g_autoptr (GstMessage) info = b.wait_message (GST_MESSAGE_INFO, 60);
  fail_unless (info != nullptr);
  g_autoptr (GError) err = nullptr;
  gst_message_parse_info (info, &err, nullptr);
  fail_unless (strstr (err->message, "no partition") &&
                   strstr (err->message, "set another group-id"),
      "%s", err->message);

  /* The first one leaves (committing "first"): the second one reads on. */
  a.reset ();
  {
    Producer p;
    p.send (topic, "second");
  }
  buf = gst_harness_pull (b.h);
  fail_unless (buf != nullptr);
  assert_bytes (buf, "second");
  gst_buffer_unref (buf);
}
GST_END_TEST;

GST_START_TEST (test_eos_marker)
{
  std::string topic = filled_topic ("src-eos", 3);
  {
    Producer p;
    gstkafka::FrameInfo eos;
    eos.eos = true;
    eos.session = 7;
    eos.seq = 3;
    p.send (topic, "", &eos);
  }
  /* Live, never stopping on its own: the marker ends the stream. */
  Src s (topic, "");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (payloads_of (bufs) == expected_payloads (0, 3));
  /* Live: from the running time of the first buffer (the harness clock
   * stands at 0) at the producer's pace. */
  for (int i = 0; i < 3; i++)
    fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[i]), i * 40 * GST_MSECOND);
  unref_all (bufs);

  /* A marker followed by a later session is skipped. */
  {
    Producer p;
    gstkafka::FrameInfo next = frame_info (8, 0, 0);
    p.send (topic, "next", &next);
  }
  Src s2 (topic, "is-live=false stop-at=end");
  s2.play ();
  bufs = s2.until_eos ();
  fail_unless_equals_int (bufs.size (), 4);
  assert_bytes (bufs[3], "next");
  fail_unless (GST_BUFFER_FLAG_IS_SET (bufs[3], GST_BUFFER_FLAG_DISCONT));
  unref_all (bufs);
}
GST_END_TEST;

GST_START_TEST (test_group_members_share)
{
  const int partitions = 4;
  std::string topic = kafkatest::unique_topic ("src-group");
  fail_unless (kafkatest::create_topic (topic, partitions));
  std::string props = "caps=text/plain group-id=" +
                      kafkatest::unique_topic ("g");
  Src a (topic, props);
  auto b = std::make_unique<Src> (topic, props);
  a.play ();
  b->play ();

  std::map<std::string, int> seen;
  int from_a = 0, from_b = 0, produced = 0;
  Producer p;
  auto drain = [&] (Src &s, int &count) {
    GstBuffer *buf;
    while ((buf = gst_harness_try_pull (s.h))) {
      seen[bytes_of (buf)]++;
      count++;
      gst_buffer_unref (buf);
    }
  };
  /* Produce a round per partition until both members have read some,
   * which proves they share the partitions. */
  for (int round = 0; round < 300 && (from_a == 0 || from_b == 0); round++) {
    for (int i = 0; i < partitions; i++)
      p.send (topic, payload (produced++), nullptr, i);
    p.flush ();
    g_usleep (100 * 1000);
    drain (a, from_a);
    drain (*b, from_b);
  }
  fail_unless (from_a > 0 && from_b > 0, "a %d, b %d", from_a, from_b);
  for (int i = 0; i < 40; i++)
    p.send (topic, payload (produced++), nullptr, i % partitions);
  p.flush ();
  for (int i = 0; i < 600 && from_a + from_b < produced; i++) {
    g_usleep (50 * 1000);
    drain (a, from_a);
    drain (*b, from_b);
  }
  fail_unless_equals_int (from_a + from_b, produced);
  fail_unless_equals_int (seen.size (), produced);
  for (auto &it : seen)
    fail_unless_equals_int (it.second, 1);

  /* b leaves (committing what it pushed): a takes over its partitions
   * without losing a message. */
  drain (*b, from_b);
  b.reset ();
  for (int i = 0; i < 40; i++)
    p.send (topic, payload (produced++), nullptr, i % partitions);
  p.flush ();
  for (int i = 0; i < 600 && (int) seen.size () < produced; i++) {
    g_usleep (50 * 1000);
    drain (a, from_a);
  }
  fail_unless_equals_int (seen.size (), produced);
  /* At least once: the last buffer b pushed may come again. */
  fail_unless (from_a + from_b <= produced + 1, "%d of %d", from_a + from_b,
      produced);
}
GST_END_TEST;

/* Buffers reaching the fakesink, recorded by a pad probe. */
struct Seen
{
  std::mutex lock;
  std::vector<std::pair<guint64, GstClockTime>> bufs;
};

/* kafkasrc pushes what it takes from librdkafka at once as a buffer list. */
static GstPadProbeReturn
record_buffer (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  auto seen = static_cast<Seen *> (data);
  std::lock_guard<std::mutex> lk (seen->lock);
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
    for (guint i = 0; i < gst_buffer_list_length (list); i++) {
      GstBuffer *buf = gst_buffer_list_get (list, i);
      seen->bufs.emplace_back (GST_BUFFER_OFFSET (buf), GST_BUFFER_PTS (buf));
    }
    return GST_PAD_PROBE_OK;
  }
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  seen->bufs.emplace_back (GST_BUFFER_OFFSET (buf), GST_BUFFER_PTS (buf));
  return GST_PAD_PROBE_OK;
}

static const GstPadProbeType buffers_and_lists = static_cast<GstPadProbeType> (
    GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);

#define CAPS_STR_2 "video/x-test, width=(int)8, height=(int)2"

/* Ten messages 1 s apart, read in PAUSED, then a flushing seek to 5 s.
 * From message @caps_from on the caps differ. */
static void
check_seek (const char *props, int caps_from)
{
  std::string topic = kafkatest::unique_topic ("src-seek");
  fail_unless (kafkatest::create_topic (topic));
  gint64 base = g_get_real_time () / 1000 - 60000;
  {
    Producer p;
    for (int i = 0; i < 10; i++) {
      gstkafka::FrameInfo info = frame_info (3, i, i * GST_SECOND,
          i < caps_from ? CAPS_STR : CAPS_STR_2);
      info.duration = GST_SECOND;
      p.send (topic, payload (i), &info, 0, base + i * 1000);
    }
  }
  g_autofree gchar *desc = g_strdup_printf (
      "kafkasrc name=src brokers=%s topic=%s is-live=false stop-at=end %s ! "
      "fakesink name=sink sync=false",
      kafkatest::brokers (), topic.c_str (), props);
  GstElement *pipeline = gst_parse_launch (desc, nullptr);
  fail_unless (pipeline != nullptr);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  Seen seen;
  gst_pad_add_probe (pad, buffers_and_lists, record_buffer, &seen, nullptr);
  GstBus *bus = gst_element_get_bus (pipeline);

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PAUSED),
      GST_STATE_CHANGE_ASYNC);
  fail_unless_equals_int (gst_element_get_state (pipeline, nullptr, nullptr,
                              GST_CLOCK_TIME_NONE),
      GST_STATE_CHANGE_SUCCESS);

  GstQuery *q = gst_query_new_seeking (GST_FORMAT_TIME);
  fail_unless (gst_element_query (pipeline, q));
  gboolean seekable;
  gst_query_parse_seeking (q, nullptr, &seekable, nullptr, nullptr);
  fail_unless (seekable);
  gst_query_unref (q);

  /* Kafka cannot play backwards: refused before anything is flushed. */
  fail_if (
      gst_element_seek (pipeline, -1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH,
          GST_SEEK_TYPE_SET, 0, GST_SEEK_TYPE_SET, 5 * GST_SECOND));

  /* The source waits in the preroll: nothing arrives until the seek. */
  {
    std::lock_guard<std::mutex> lk (seen.lock);
    seen.bufs.clear ();
  }
  fail_unless (gst_element_seek_simple (pipeline, GST_FORMAT_TIME,
      static_cast<GstSeekFlags> (GST_SEEK_FLAG_FLUSH), 5 * GST_SECOND));
  fail_unless_equals_int (gst_element_get_state (pipeline, nullptr, nullptr,
                              GST_CLOCK_TIME_NONE),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless (msg != nullptr);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  /* From the message at 5 s on, timed from the seek position. */
  std::lock_guard<std::mutex> lk (seen.lock);
  fail_unless_equals_int (seen.bufs.size (), 5);
  for (int i = 0; i < 5; i++) {
    fail_unless_equals_uint64 (seen.bufs[i].first, 5 + i);
    fail_unless_equals_uint64 (seen.bufs[i].second, (5 + i) * GST_SECOND);
  }
  gst_object_unref (pad);
  gst_object_unref (sink);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_START_TEST (test_seek_time)
{
  check_seek ("", 10);
}
GST_END_TEST;

/* With buffer-list, the messages 0-7 arrive at once: 0-2 go out as a list
 * (the caps change at 3), the sink prerolls on 0, and 3-7 wait in kafkasrc
 * when the seek comes. They are dropped: nothing before the seek position
 * comes out, and nothing twice. */
GST_START_TEST (test_seek_partly_handed_out)
{
  check_seek ("buffer-list=true", 3);
}
GST_END_TEST;

/* Buffer lists carry every message once, in order, with the caps and the
 * metadata of single buffers. */
GST_START_TEST (test_buffer_list)
{
  std::string topic = kafkatest::unique_topic ("src-list");
  fail_unless (kafkatest::create_topic (topic));
  {
    Producer p;
    for (int i = 0; i < 40; i++) {
      gstkafka::FrameInfo info = frame_info (5, i, i * 40 * GST_MSECOND,
          (i / 7) % 2 ? CAPS_STR_2 : CAPS_STR,
          i % 7 ? GST_BUFFER_FLAG_DELTA_UNIT : 0);
      /* GstBaseSrc marks the first buffer DISCONT, kafkasrc the one after
       * a gap in the sequence, at 20. */
      if (i >= 20)
        info.seq++;
      p.send (topic, payload (i), &info);
    }
  }
  Src s (topic, "is-live=false stop-at=end buffer-list=true");
  gboolean lists;
  g_object_get (s.src, "buffer-list", &lists, nullptr);
  fail_unless (lists);
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (payloads_of (bufs) == expected_payloads (0, 40));
  for (int i = 0; i < 40; i++) {
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (bufs[i]), i);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[i]), i * 40 * GST_MSECOND);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (bufs[i],
                                GST_BUFFER_FLAG_DELTA_UNIT),
        i % 7 != 0);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (bufs[i],
                                GST_BUFFER_FLAG_DISCONT),
        i == 0 || i == 20);
  }
  /* The last caps (messages 35-39). */
  check_caps (s, CAPS_STR_2);
  guint64 messages;
  g_object_get (s.src, "messages", &messages, nullptr);
  fail_unless_equals_uint64 (messages, 40);
  unref_all (bufs);
}
GST_END_TEST;

/* A second member joins the group while the first holds messages it has
 * not handed out yet (its pushes block until the test pulls them, and the
 * caps change every three messages, which splits its buffer lists). The
 * partitions move without a message lost or delivered twice, and each
 * member delivers each partition in order. */
GST_START_TEST (test_rebalance_partly_handed_out)
{
  const int partitions = 2, per_partition = 150;
  std::string topic = kafkatest::unique_topic ("src-rebalance");
  fail_unless (kafkatest::create_topic (topic, partitions));
  {
    Producer p;
    for (int i = 0; i < per_partition; i++) {
      for (int part = 0; part < partitions; part++) {
        gstkafka::FrameInfo info = frame_info (part, i, i * 40 * GST_MSECOND,
            (i / 3) % 2 ? CAPS_STR_2 : CAPS_STR);
        p.send (topic, "p" + std::to_string (part) + "-" + std::to_string (i),
            &info, part);
      }
    }
  }
  /* The first member learns of the second one's join at its next
   * heartbeat (3 s apart by default), and only then hands partitions over:
   * on a busy machine it could read everything before that. */
  std::string props = "is-live=false buffer-list=true group-id=" +
                      kafkatest::unique_topic ("g") +
                      " config=kafka,heartbeat.interval.ms=100";
  Src a (topic, props);
  gst_harness_set_blocking_push_mode (a.h);
  a.play ();

  std::map<std::string, int> seen;
  /* Per member and partition: the last offset delivered. */
  std::map<std::pair<int, int>, gint64> last;
  int total = 0;
  auto take = [&] (int member, GstBuffer *buf) {
    std::string data = bytes_of (buf);
    seen[data]++;
    int part = data[1] - '0';
    auto key = std::make_pair (member, part);
    auto it = last.find (key);
    gint64 offset = GST_BUFFER_OFFSET (buf);
    fail_unless (it == last.end () || offset > it->second,
        "member %d partition %d: offset %" G_GINT64_FORMAT
        " after %" G_GINT64_FORMAT,
        member, part, offset, it->second);
    last[key] = offset;
    total++;
    gst_buffer_unref (buf);
  };
  for (int i = 0; i < 20; i++)
    take (0, gst_harness_pull (a.h));

  Src b (topic, props);
  b.play ();
  for (int i = 0; i < 1200 && total < partitions * per_partition; i++) {
    GstBuffer *buf;
    bool any = false;
    if ((buf = gst_harness_try_pull (a.h))) {
      take (0, buf);
      any = true;
    }
    if ((buf = gst_harness_try_pull (b.h))) {
      take (1, buf);
      any = true;
    }
    if (!any)
      g_usleep (50 * 1000);
  }
  fail_unless_equals_int (total, partitions * per_partition);
  fail_unless_equals_int (seen.size (), partitions * per_partition);
  /* Both members read: the partitions did move. */
  fail_unless (last.count ({1, 0}) + last.count ({1, 1}) > 0);
}
GST_END_TEST;

/* --- Round trips through kafkasink --------------------------------------- */

static GstBuffer *
appsrc_buffer (int i)
{
  std::string data = payload (i);
  GstBuffer *buf = gst_buffer_new_memdup (data.data (), data.size ());
  GST_BUFFER_DTS (buf) = 500 * GST_MSECOND + i * 40 * GST_MSECOND;
  GST_BUFFER_PTS (buf) = GST_BUFFER_DTS (buf) + 80 * GST_MSECOND;
  GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
  if (i % 3)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  if (i == 0)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_HEADER);
  return buf;
}

GST_START_TEST (test_roundtrip_appsrc)
{
  const int n = 12;
  std::string topic = kafkatest::unique_topic ("src-roundtrip");
  fail_unless (kafkatest::create_topic (topic));
  g_autofree gchar *desc = g_strdup_printf (
      "appsrc name=src format=time caps=\"video/x-test, width=(int)4\" ! "
      "kafkasink brokers=%s topic=%s",
      kafkatest::brokers (), topic.c_str ());
  GstElement *producer = gst_parse_launch (desc, nullptr);
  fail_unless (producer != nullptr);
  GstElement *appsrc = gst_bin_get_by_name (GST_BIN (producer), "src");
  fail_unless (gst_element_set_state (producer, GST_STATE_PLAYING) !=
               GST_STATE_CHANGE_FAILURE);
  for (int i = 0; i < n; i++) {
    if (i == 6) {
      g_autoptr (GstCaps)
          caps = gst_caps_from_string ("video/x-test, width=(int)8");
      g_object_set (appsrc, "caps", caps, nullptr);
    }
    GstFlowReturn ret;
    GstBuffer *buf = appsrc_buffer (i);
    g_signal_emit_by_name (appsrc, "push-buffer", buf, &ret);
    gst_buffer_unref (buf);
    fail_unless_equals_int (ret, GST_FLOW_OK);
  }
  GstFlowReturn ret;
  g_signal_emit_by_name (appsrc, "end-of-stream", &ret);
  gst_object_unref (appsrc);
  /* Moves the state back to PLAYING for the bus wait. */
  std::string ran = kafkatest::run_to_eos (producer);
  fail_unless (ran.empty (), "%s", ran.c_str ());
  gst_object_unref (producer);

  Src s (topic, "is-live=false stop-at=end");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (payloads_of (bufs) == expected_payloads (0, n));
  for (int i = 0; i < n; i++) {
    GstBuffer *b = bufs[i];
    /* The first buffer's DTS is at 0, the rest keeps its distance. */
    fail_unless_equals_uint64 (GST_BUFFER_DTS (b), i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b),
        i * 40 * GST_MSECOND + 80 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 40 * GST_MSECOND);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b,
                                GST_BUFFER_FLAG_DELTA_UNIT),
        i % 3 != 0);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_HEADER),
        i == 0);
  }
  std::vector<std::string> caps = caps_pushed (s.h);
  fail_unless (caps == std::vector<std::string> ({"video/x-test, width=(int)4",
                           "video/x-test, width=(int)8"}));
  unref_all (bufs);
}
GST_END_TEST;

static GstPadProbeReturn
keep_buffer (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  auto kept = static_cast<std::vector<std::string> *> (data);
  kept->push_back (bytes_of (GST_PAD_PROBE_INFO_BUFFER (info)));
  return GST_PAD_PROBE_OK;
}

/* A PNG video through kafkasink with an end-of-stream marker, played back
 * by a default (live) kafkasrc, which ends at the marker. */
GST_START_TEST (test_roundtrip_png_video)
{
  std::string topic = kafkatest::unique_topic ("src-png-video");
  fail_unless (kafkatest::create_topic (topic));
  g_autofree gchar *desc = g_strdup_printf (
      "videotestsrc num-buffers=10 pattern=ball ! "
      "video/x-raw,width=64,height=48,framerate=25/1 ! pngenc ! "
      "kafkasink name=sink brokers=%s topic=%s eos-marker=true",
      kafkatest::brokers (), topic.c_str ());
  GstElement *producer = gst_parse_launch (desc, nullptr);
  fail_unless (producer != nullptr);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (producer), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  std::vector<std::string> sent;
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, keep_buffer, &sent,
      nullptr);
  gst_object_unref (pad);
  gst_object_unref (sink);
  std::string ran = kafkatest::run_to_eos (producer);
  fail_unless (ran.empty (), "%s", ran.c_str ());
  gst_object_unref (producer);
  fail_unless_equals_int (sent.size (), 10);

  Src s (topic, "");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (payloads_of (bufs) == sent);
  std::string caps = s.caps ();
  fail_unless (g_str_has_prefix (caps.c_str (), "image/png"), "%s",
      caps.c_str ());
  fail_unless (strstr (caps.c_str (), "width=(int)64") != nullptr);
  fail_unless (strstr (caps.c_str (), "framerate=(fraction)25/1") != nullptr);
  for (size_t i = 0; i < bufs.size (); i++)
    fail_unless_equals_uint64 (GST_BUFFER_PTS (bufs[i]), i * GST_SECOND / 25);
  unref_all (bufs);
}
GST_END_TEST;

/* Live: timestamps start at the running time of the first buffer, follow
 * the producer, and re-anchor when a buffer arrives more than a second
 * late. The harness' test clock gives the running time. */
GST_START_TEST (test_live_timing)
{
  std::string topic = kafkatest::unique_topic ("src-live");
  fail_unless (kafkatest::create_topic (topic));
  Producer p;
  gstkafka::FrameInfo info = frame_info (5, 0, 10 * GST_SECOND);
  p.send (topic, "a", &info);
  p.flush ();

  Src s (topic, "latency=150");
  gst_harness_set_time (s.h, 3 * GST_SECOND);
  s.play ();
  GstBuffer *buf = gst_harness_pull (s.h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), 3 * GST_SECOND);
  fail_unless (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref (buf);

  info = frame_info (5, 1, 10 * GST_SECOND + 40 * GST_MSECOND, nullptr);
  p.send (topic, "b", &info);
  p.flush ();
  buf = gst_harness_pull (s.h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buf),
      3 * GST_SECOND + 40 * GST_MSECOND);
  fail_unless (!GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref (buf);

  /* The producer stalled: the next buffer would be 7 s late. */
  gst_harness_set_time (s.h, 10 * GST_SECOND);
  info = frame_info (5, 2, 10 * GST_SECOND + 80 * GST_MSECOND, nullptr);
  p.send (topic, "c", &info);
  p.flush ();
  buf = gst_harness_pull (s.h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), 10 * GST_SECOND);
  fail_unless (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref (buf);

  GstQuery *q = gst_query_new_latency ();
  fail_unless (gst_pad_peer_query (s.h->sinkpad, q));
  gboolean live;
  GstClockTime min;
  gst_query_parse_latency (q, &live, &min, nullptr);
  fail_unless (live);
  fail_unless_equals_uint64 (min, 150 * GST_MSECOND);
  gst_query_unref (q);
}
GST_END_TEST;

/* Two keyed streams interleaved in a topic, copied with kafkasrc
 * add-kafka-meta=true ! kafkasink into a topic of three partitions: every
 * message keeps its key (and goes to Kafka's partition for it), and a key
 * viewer of the copy plays its stream. */
GST_START_TEST (test_copy_keeps_keys)
{
  const char *caps_2 = "video/x-test, width=(int)8, height=(int)8";
  std::string from = kafkatest::unique_topic ("src-copy-keys");
  std::string to = kafkatest::unique_topic ("src-copy-keys-to");
  fail_unless (kafkatest::create_topic (from));
  fail_unless (kafkatest::create_topic (to, 3));
  std::vector<std::string> one;
  {
    Producer p;
    for (int i = 0; i < 6; i++) {
      gstkafka::FrameInfo a = frame_info (1, i, i * 40 * GST_MSECOND);
      p.send (from, "one-" + payload (i), &a, 0, 0, "cam-1");
      one.push_back ("one-" + payload (i));
      gstkafka::FrameInfo b = frame_info (2, i, i * 40 * GST_MSECOND, caps_2);
      p.send (from, "two-" + payload (i), &b, 0, 0, "cam-2");
    }
  }
  g_autofree gchar *desc = g_strdup_printf (
      "kafkasrc brokers=%s topic=%s is-live=false stop-at=end "
      "add-kafka-meta=true ! kafkasink brokers=%s topic=%s sync=false",
      kafkatest::brokers (), from.c_str (), kafkatest::brokers (), to.c_str ());
  GstElement *copy = gst_parse_launch (desc, nullptr);
  fail_unless (copy != nullptr);
  std::string ran = kafkatest::run_to_eos (copy);
  fail_unless (ran.empty (), "%s", ran.c_str ());
  gst_object_unref (copy);

  std::vector<std::string> lines = kafkatest::kcat_lines (to, "%k %p %s\n");
  fail_unless_equals_int (lines.size (), 12);
  std::map<std::string, std::set<std::string>> partitions_of;
  for (const std::string &l : lines) {
    g_auto (GStrv) f = g_strsplit (l.c_str (), " ", 3);
    fail_unless (g_strv_length (f) == 3, "%s", l.c_str ());
    fail_unless_equals_string (f[0],
        g_str_has_prefix (f[2], "one-") ? "cam-1" : "cam-2");
    partitions_of[f[0]].insert (f[1]);
  }
  fail_unless_equals_int (partitions_of["cam-1"].size (), 1);
  fail_unless_equals_int (partitions_of["cam-2"].size (), 1);

  Src s (to, "is-live=false stop-at=end key=cam-1");
  s.play ();
  std::vector<GstBuffer *> bufs = s.until_eos ();
  fail_unless (payloads_of (bufs) == one, "%d buffers", (int) bufs.size ());
  /* In order, and timed as the copy was: the gaps in the copy's sequence
   * numbers, where cam-2's messages were, start nothing new. */
  for (size_t i = 1; i < bufs.size (); i++)
    fail_unless (GST_BUFFER_PTS (bufs[i]) > GST_BUFFER_PTS (bufs[i - 1]),
        "buffer %d", (int) i);
  unref_all (bufs);
}
GST_END_TEST;

static Suite *
kafkasrc_suite (void)
{
  Suite *s = suite_create ("kafkasrc");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_headers_restored);
  tcase_add_test (tc, test_caps_change_and_discont);
  tcase_add_test (tc, test_start_from_earliest_offset_tail);
  tcase_add_test (tc, test_key_filter);
  tcase_add_test (tc, test_start_offset_out_of_range);
  tcase_add_test (tc, test_resume_after_retention);
  tcase_add_test (tc, test_kafka_meta);
  tcase_add_test (tc, test_split_buffers);
  tcase_add_test (tc, test_split_buffer_abandoned);
  tcase_add_test (tc, test_start_from_latest);
  tcase_add_test (tc, test_start_and_stop_timestamp);
  tcase_add_test (tc, test_resume_committed);
  tcase_add_test (tc, test_typefind_kcat);
  tcase_add_test (tc, test_malformed_headers);
  tcase_add_test (tc, test_caps_strings_repeat);
  tcase_add_test (tc, test_zero_copy);
  tcase_add_test (tc, test_buffer_outlives_stop);
  tcase_add_test (tc, test_unlock_broker_down);
  tcase_add_test (tc, test_broker_down_timeout);
  tcase_add_test (tc, test_invalid_topic_name);
  tcase_add_test (tc, test_time_settings);
  tcase_add_test (tc, test_topic_appears_later);
  tcase_add_test (tc, test_missing_topic_timeout);
  tcase_add_test (tc, test_topic_deleted);
  tcase_add_test (tc, test_idle_group_member);
  tcase_add_test (tc, test_eos_marker);
  tcase_add_test (tc, test_group_members_share);
  tcase_add_test (tc, test_seek_time);
  tcase_add_test (tc, test_seek_partly_handed_out);
  tcase_add_test (tc, test_buffer_list);
  tcase_add_test (tc, test_rebalance_partly_handed_out);
  tcase_add_test (tc, test_live_timing);
  tcase_add_test (tc, test_roundtrip_appsrc);
  tcase_add_test (tc, test_roundtrip_png_video);
  tcase_add_test (tc, test_copy_keeps_keys);
  return s;
}

int
main (int argc, char **argv)
{
  kafkatest::brokers ();
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (kafkasrc_suite (), "kafkasrc", __FILE__);
}
