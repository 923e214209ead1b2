/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-kafkasrc
 * @title: kafkasrc
 *
 * Consumes an Apache Kafka topic with librdkafka and pushes one buffer per
 * message. Messages written by kafkasink come back with their caps,
 * timestamps and flags (see docs/message-format.md); messages of other
 * clients (kcat, Python producers) get the #GstKafkaSrc:caps property or,
 * when it is unset, the caps GStreamer's typefinders recognise in the first
 * payload.
 *
 * kafkasink sends the caps with every keyframe and at least once a second,
 * not with every message. Starting in between (a committed offset, a
 * start-offset), kafkasrc typefinds the first message; if that is a delta
 * unit no typefinder recognises on its own (a VP8 or H.264 delta frame), it
 * skips the messages up to the next one that carries the caps, and says so
 * in an INFO message on the bus.
 *
 * The payload is not copied: each output buffer wraps librdkafka's message,
 * which is released when the buffer is freed. A buffer that kafkasink split
 * into several messages (#GstKafkaSink:max-message-size) comes out whole,
 * one memory per message; a viewer that starts among its parts starts with
 * the next whole buffer, and a buffer that lacks a part is dropped with a
 * warning (at the latest when 10000 messages of its partition went by
 * without its next part). Buffers may outlive the
 * element: the consumer handle is destroyed when the last of them is freed,
 * and stopping never waits for them. The buffer's offset is the message's
 * Kafka offset; with #GstKafkaSrc:add-reference-timestamp-meta its Kafka
 * timestamp comes as a `timestamp/x-unix` reference timestamp.
 *
 * A producer's end-of-stream marker (kafkasink `eos-marker=true`) ends the
 * stream when nothing follows it in the topic (#GstKafkaSrc:handle-eos-marker);
 * a marker followed by a later producer run is skipped.
 *
 * With a #GstKafkaSrc:group-id the element joins that consumer group: the
 * group's members share the partitions, and offsets are committed, at least
 * once: an offset is stored only after its buffer was pushed downstream, and
 * committed every `auto.commit.interval.ms`, when partitions are taken away,
 * at EOS and when the element stops. A restarted viewer resumes after the last
 * pushed message (the last buffer, or buffer list, pushed before the stop may
 * come again). Without a group-id the element reads every partition
 * (or #GstKafkaSrc:partition) on its own and commits nothing.
 *
 * With #GstKafkaSrc:key only the messages with that key are delivered:
 * several streams can share a topic, each under the key its kafkasink
 * gives it.
 *
 * With #GstKafkaSrc:buffer-list the messages already waiting in librdkafka
 * go downstream together as a #GstBufferList, which costs less per small
 * message. Messages taken from librdkafka but not pushed yet are dropped
 * when their partition is taken away or sought, and read again from the
 * committed offset or the seek position, so none is skipped or pushed stale.
 *
 * Timestamps: buffers are re-timed so that running time starts at the
 * running time of the first buffer (live, the default) or at 0, and then
 * follows the producer's timestamps; a downstream sink with `sync=true` plays
 * at the original rate, also when joining in the middle of a topic. A new
 * producer session, a gap in the sequence numbers, or (live) a buffer that
 * arrives more than a second late re-anchors the timestamps and marks the
 * buffer DISCONT. Messages without gst.* headers are timed by their Kafka
 * timestamps.
 *
 * A TIME seek jumps to the first message whose Kafka timestamp is at least
 * the timestamp of the first message kafkasrc delivered plus the seek
 * position (Kafka's offsetsForTimes).
 *
 * An unreachable broker or a missing topic is a warning on the bus, and
 * kafkasrc keeps trying (a viewer started before the producer shows the
 * stream once it appears); #GstKafkaSrc:timeout turns that into an error.
 * A topic deleted while being read is a warning too; once it is created
 * again, kafkasrc reads the new topic from its start.
 * State changes never wait for the broker: unlock() interrupts a poll at once.
 *
 * Defaults, each overridable through #GstKafkaSrc:config or
 * #GstKafkaSrc:config-file: `enable.auto.offset.store=false`,
 * `auto.offset.reset=earliest`, `enable.partition.eof=true`, `client.id` set
 * to the element's name, and, without a group-id, a private `group.id` with
 * `enable.auto.commit=false`.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 kafkasrc brokers=localhost:9092 topic=my-topic group-id=view !
 * \ multipartmux boundary=frame ! souphttpserversink port=5000
 * ]| Serves the topic's PNG frames to web browsers; the group `view` keeps
 * the position across restarts.
 * |[
 * gst-launch-1.0 kafkasrc topic=my-topic ! decodebin ! videoconvert ! \
 *     autovideosink
 * ]| Plays a topic from its beginning at the original rate.
 * |[
 * gst-launch-1.0 kafkasrc topic=my-topic is-live=false start-from=earliest \
 *     stop-at=end ! decodebin ! videoconvert ! pngenc ! \
 *     multifilesink location=frame-%05d.png
 * ]| Saves every frame of a topic as fast as possible, then stops.
 * |[
 * gst-launch-1.0 kafkasrc topic=camera-1 is-live=false start-from=earliest \
 *     stop-at=end buffer-list=true add-reference-timestamp-meta=true \
 *     add-kafka-meta=true ! kafkasink topic=camera-1-archive sync=false
 * ]| Copies a topic to another with its timing, flags, caps, keys and Kafka
 * timestamps, a list of messages at a time, then stops.
 * |[
 * gst-launch-1.0 playbin uri=kafka://localhost:9092/my-topic
 * ]| kafkasrc handles `kafka://` URIs (#GstKafkaSrc:uri), so players and
 * uridecodebin open a topic like a file or an HTTP stream.
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkafkasrc.h"
#include "gstkafkacommon.h"
#include "gstkafkaelements.h"

#include <gst/base/gsttypefindhelper.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

GST_DEBUG_CATEGORY_STATIC (gst_kafka_src_debug);
#define GST_CAT_DEFAULT gst_kafka_src_debug

#define DEFAULT_TOPIC nullptr
#define DEFAULT_GROUP_ID nullptr
#define DEFAULT_PARTITION -1
#define DEFAULT_START_FROM GST_KAFKA_SRC_START_FROM_COMMITTED
#define DEFAULT_START_OFFSET 0
#define DEFAULT_START_TIME 0
#define DEFAULT_STOP_AT GST_KAFKA_SRC_STOP_AT_NEVER
#define DEFAULT_STOP_TIME 0
#define DEFAULT_IS_LIVE TRUE
#define DEFAULT_HANDLE_EOS_MARKER TRUE
#define DEFAULT_MALFORMED_POLICY GST_KAFKA_SRC_MALFORMED_DELIVER
#define DEFAULT_TIMEOUT 0
#define DEFAULT_LATENCY 200
#define DEFAULT_STATS_INTERVAL 0
#define DEFAULT_BUFFER_LIST FALSE
#define DEFAULT_ADD_REFERENCE_TIMESTAMP_META FALSE
#define DEFAULT_ADD_KAFKA_META FALSE

/* Longest single poll: deadlines (timeout, stop-time) are checked this
 * often. unlock() wakes a poll at once, whatever its timeout. */
#define POLL_SLICE_MS 1000
/* First timeout of a metadata request while looking for the topic; doubled
 * on timeouts, up to METADATA_SLICE_MAX_MS, for far-away brokers. Each is
 * the longest unlock() may wait while the element looks for the topic. */
#define METADATA_SLICE_MS 250
#define METADATA_SLICE_MAX_MS 2000
/* Pause between two lookups of a topic that does not exist yet. */
#define RETRY_INTERVAL_MS 500
/* Bound on offset lookups (ListOffsets) and seeks. */
#define LIST_OFFSETS_TIMEOUT_MS 5000
/* Bound on the final commit and on leaving the group in stop(). */
#define CLOSE_TIMEOUT_MS 5000
/* A live buffer this late re-anchors the timestamps. */
#define LATE_RESYNC GST_SECOND
/* How often the element looks for the topic while it cannot read it. */
#define PROBE_INTERVAL_US (2 * G_USEC_PER_SEC)
/* How often the consumer lag is recomputed. */
#define LAG_INTERVAL_US (250 * G_TIME_SPAN_MILLISECOND)
/* With buffer-list: bounds on the messages taken from librdkafka in one go
 * (all of which were waiting already), so on a buffer list. Longer lists
 * cost more in malloc than they save in GStreamer: every message allocates
 * its buffer and headers, and a long list keeps them all alive at once. */
#define BATCH_MAX_MESSAGES 8
#define BATCH_MAX_BYTES (1024 * 1024)
/* A split buffer whose next part is not among the next this many messages
 * of its partition is dropped: its producer died between two parts, and
 * the messages after it came from another one. kafkasink sends the parts
 * of a buffer one right after the other, so only other producers' messages
 * come between them. Until then, offsets are not committed past its first
 * part. */
#define JOIN_WINDOW_MESSAGES 10000

enum
{
  PROP_0,
  PROP_URI,
  PROP_BROKERS,
  PROP_TOPIC,
  PROP_GROUP_ID,
  PROP_PARTITION,
  PROP_KEY,
  PROP_CONFIG,
  PROP_CONFIG_FILE,
  PROP_START_FROM,
  PROP_START_OFFSET,
  PROP_START_TIME,
  PROP_STOP_AT,
  PROP_STOP_TIME,
  PROP_CAPS,
  PROP_IS_LIVE,
  PROP_HANDLE_EOS_MARKER,
  PROP_MALFORMED_POLICY,
  PROP_TIMEOUT,
  PROP_LATENCY,
  PROP_STATS_INTERVAL,
  PROP_BUFFER_LIST,
  PROP_ADD_REFERENCE_TIMESTAMP_META,
  PROP_ADD_KAFKA_META,
  PROP_MESSAGES,
  PROP_BYTES,
  PROP_CONSUMER_LAG,
  PROP_STATS,
};

/* Properties, guarded by GST_OBJECT_LOCK; start() takes a copy. */
struct Settings
{
  gchar *brokers = g_strdup (GST_KAFKA_DEFAULT_BROKERS);
  gchar *topic = nullptr;
  gchar *group_id = nullptr;
  gint partition = DEFAULT_PARTITION;
  gchar *key = nullptr;
  GstStructure *config = nullptr;
  gchar *config_file = nullptr;
  GstKafkaSrcStartFrom start_from = DEFAULT_START_FROM;
  gint64 start_offset = DEFAULT_START_OFFSET;
  gint64 start_time = DEFAULT_START_TIME;
  GstKafkaSrcStopAt stop_at = DEFAULT_STOP_AT;
  gint64 stop_time = DEFAULT_STOP_TIME;
  GstCaps *caps = nullptr;
  gboolean handle_eos_marker = DEFAULT_HANDLE_EOS_MARKER;
  GstKafkaSrcMalformedPolicy malformed_policy = DEFAULT_MALFORMED_POLICY;
  guint timeout = DEFAULT_TIMEOUT;
  guint latency = DEFAULT_LATENCY;
  guint stats_interval = DEFAULT_STATS_INTERVAL;
  gboolean buffer_list = DEFAULT_BUFFER_LIST;
  gboolean add_reference_timestamp_meta = DEFAULT_ADD_REFERENCE_TIMESTAMP_META;
  gboolean add_kafka_meta = DEFAULT_ADD_KAFKA_META;

  Settings () = default;
  Settings (const Settings &) = delete;
  Settings &operator= (const Settings &) = delete;
  ~Settings ()
  {
    g_free (brokers);
    g_free (topic);
    g_free (group_id);
    g_free (key);
    g_free (config_file);
    if (config)
      gst_structure_free (config);
    gst_clear_caps (&caps);
  }
};

/* What start() keeps of the settings for the running session. */
struct Run
{
  std::string brokers;
  std::string topic;
  gint partition = DEFAULT_PARTITION;
  /* Deliver only the messages with this key, unless empty. */
  std::string key;
  GstKafkaSrcStartFrom start_from = DEFAULT_START_FROM;
  gint64 start_offset = DEFAULT_START_OFFSET;
  gint64 start_time = DEFAULT_START_TIME;
  GstKafkaSrcStopAt stop_at = DEFAULT_STOP_AT;
  gint64 stop_time = DEFAULT_STOP_TIME;
  bool handle_eos_marker = DEFAULT_HANDLE_EOS_MARKER;
  GstKafkaSrcMalformedPolicy malformed_policy = DEFAULT_MALFORMED_POLICY;
  guint timeout = DEFAULT_TIMEOUT;
  bool live = DEFAULT_IS_LIVE;
  bool buffer_list = DEFAULT_BUFFER_LIST;
  bool add_reference_timestamp_meta = DEFAULT_ADD_REFERENCE_TIMESTAMP_META;
  bool add_kafka_meta = DEFAULT_ADD_KAFKA_META;
  /* Group that commits (the user's), or a private one that does not. */
  bool commits = false;
  /* Partitions come from the group (subscribe) or from us (assign). */
  bool subscribe = false;
  /* group.id, as configured. */
  std::string group;
};

/* The consumer handle, shared with the buffers that wrap its messages:
 * rd_kafka_destroy() waits until every message is destroyed, so whoever
 * lets go last, stop() or the last buffer downstream, destroys it. It keeps
 * the element alive for librdkafka's log callback. */
struct Consumer
{
  std::atomic<gint> refs{1};
  rd_kafka_t *rk;
  GstElement *element;

  Consumer (rd_kafka_t *handle, GstElement *owner)
      : rk (handle), element (GST_ELEMENT (gst_object_ref (owner)))
  {
  }
};

static void
consumer_unref (Consumer *c)
{
  if (c->refs.fetch_sub (1) != 1)
    return;
  GST_CAT_DEBUG_OBJECT (gst_kafka_src_debug, c->element,
      "destroying the consumer handle");
  rd_kafka_destroy_flags (c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  gst_object_unref (c->element);
  delete c;
}

/* What a buffer's memory holds on to. */
struct WrappedMessage
{
  rd_kafka_message_t *msg;
  Consumer *consumer;
};

static void
wrapped_message_free (gpointer data)
{
  auto w = static_cast<WrappedMessage *> (data);
  Consumer *consumer = w->consumer;
  rd_kafka_message_destroy (w->msg);
  delete w;
  consumer_unref (consumer);
}

/* What the memory that wraps @m's payload owns (wrapped_message_free()):
 * @m, and a reference to @consumer, whose handle outlives the message. */
static WrappedMessage *
hold_message (rd_kafka_message_t *m, Consumer *consumer)
{
  consumer->refs++;
  return new WrappedMessage{m, consumer};
}

/* What the streaming thread knows of one assigned partition. */
struct PartitionState
{
  /* stop-at=end: offset after the last message to deliver, -1 unknown. */
  gint64 end = -1;
  /* Offset after the last message delivered, -1 before the first. */
  gint64 next = -1;
  /* Reached its stop-at limit. */
  bool done = false;
  /* Nothing more to read right now. */
  bool at_eof = false;
  /* Looking back for the caps of the message at this offset, -1 when not
   * (look_back_for_caps()); done at most once per partition. */
  gint64 lookback_until = -1;
  bool looked_back = false;
  /* The last gst.caps seen while looking back. */
  std::string lookback_caps;
  /* The group's committed offset this partition resumes at, until its
   * first message shows whether retention deleted messages after it
   * (check_resumed()); -1 when not resuming. */
  gint64 resume_from = -1;
  /* The parts taken so far of a buffer that kafkasink split into several
   * messages (gst.frag), in order, and what the first one said of the
   * whole (join_part()). */
  std::vector<gstkafka::Message> pieces;
  guint64 pieces_session = 0;
  guint64 pieces_seq = 0;
  guint32 pieces_count = 0;
  guint64 pieces_size = 0;
  guint64 pieces_bytes = 0;
  /* Caps an earlier message gave the first part (read_back()). */
  std::string pieces_caps;
};

enum class Trouble
{
  BROKER,
  TOPIC,
};

struct GstKafkaSrcPrivate
{
  Settings settings;

  /* Guards rk and the queues against unlock() and stop(). */
  std::mutex lock;
  rd_kafka_t *rk = nullptr;
  Consumer *consumer = nullptr;
  gstkafka::Queue consumer_queue;
  gstkafka::Queue commit_queue;
  std::atomic<bool> flushing{false};

  /* Statistics behind the read-only properties. */
  std::atomic<guint64> messages{0};
  std::atomic<guint64> bytes{0};
  std::atomic<gint64> lag{-1};

  /* Streaming state: the streaming thread, start(), stop() and do_seek()
   * (which GstBaseSrc never runs at the same time) touch it. librdkafka's
   * callbacks run inside our polls, so on one of these threads too. */
  Run run;
  rd_kafka_topic_t *rkt = nullptr;
  bool assigned = false;
  gint metadata_slice = METADATA_SLICE_MS;
  gint64 next_attempt = 0;
  std::map<gint32, PartitionState> parts;
  /* Partitions assigned at least once since start(): start-from applies to
   * the first assignment only, later ones resume from the group's commits. */
  std::set<gint32> seen;
  /* Messages and consumer events taken from librdkafka in one go and not
   * handled yet, in their order: batch[batch_pos] is the next. Entries of
   * partitions taken away or sought meanwhile are nullptr. */
  std::vector<rd_kafka_message_t *> batch;
  size_t batch_pos = 0;
  /* Offsets to store (partition, next offset) once the buffers create()
   * returned last were pushed: create() running again proves it. */
  std::vector<std::pair<gint32, gint64>> to_store;
  /* Offsets were stored since the last commit. */
  bool uncommitted = false;
  bool eos = false;
  std::string fatal;
  /* The broker refused the credentials: retrying will not help. */
  std::string auth_error;

  /* Timestamps: out = anchor_out + (in - anchor_in). */
  bool need_anchor = true;
  bool seeked = false;
  GstClockTime seek_pos = 0;
  GstClockTime anchor_in = 0;
  GstClockTime anchor_out = 0;
  GstClockTime last_end = GST_CLOCK_TIME_NONE;
  /* Kafka timestamp (ms) of the first message delivered: position 0. */
  gint64 base_ts = -1;
  bool have_session = false;
  guint64 session = 0;
  guint64 seq = 0;
  bool discont = false;

  /* Caps pushed last. */
  GstCaps *caps = nullptr;
  /* Messages of a kafkasink stream skipped before one carried its caps. */
  guint64 skipped_for_caps = 0;
  /* With a key: messages of other keys passed over before the first one
   * with it (counting stops there), and a few of their keys. */
  guint64 other_keys = 0;
  bool key_seen = false;
  bool key_warned = false;
  std::vector<std::string> other_key_names;
  /* Of the reference timestamp that carries a message's Kafka timestamp. */
  GstCaps *unix_caps = gst_caps_new_empty_simple ("timestamp/x-unix");
  /* The gst.caps header parsed last and what came of it: the caps, or
   * nullptr and the problem. Most topics repeat one caps string. */
  bool have_parsed = false;
  std::string parsed_str;
  GstCaps *parsed_caps = nullptr;
  std::string parsed_problem;
  std::set<std::string> warned;

  /* Broker or topic trouble since (monotonic µs), 0 when none. */
  gint64 trouble_since = 0;
  gint64 last_probe = 0;
  Trouble trouble = Trouble::BROKER;
  std::string trouble_text;
  std::set<std::string> trouble_warned;
  /* The topic went away while being read: when it is back, it is another
   * topic under the same name. */
  bool topic_lost = false;
  /* The group gave this member no partition: said once. */
  bool idle_noted = false;
  /* Some partition looks back for the caps (look_back_for_caps()). */
  bool looking_back = false;
  /* Some partition resumes at a committed offset (check_resumed()). */
  bool resuming = false;
  /* Partitions holding some parts of a split buffer (join_part()). */
  guint joining = 0;
  gint64 lag_updated = 0;
  guint lag_count = 0;
};

struct _GstKafkaSrc
{
  GstPushSrc parent;
  GstKafkaSrcPrivate *priv;
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_kafka_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstKafkaSrc, gst_kafka_src, GST_TYPE_PUSH_SRC,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gstkafka::uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (kafkasrc, "kafkasrc", GST_RANK_NONE,
    GST_TYPE_KAFKA_SRC, kafka_element_init (plugin));

GType
gst_kafka_src_start_from_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_KAFKA_SRC_START_FROM_COMMITTED,
          "The group's committed offset (earliest when it has none)",
          "committed"},
      {GST_KAFKA_SRC_START_FROM_EARLIEST, "The earliest message", "earliest"},
      {GST_KAFKA_SRC_START_FROM_LATEST, "Only new messages", "latest"},
      {GST_KAFKA_SRC_START_FROM_OFFSET, "The offset in start-offset", "offset"},
      {GST_KAFKA_SRC_START_FROM_TIMESTAMP,
          "The first message at or after start-time", "timestamp"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstKafkaSrcStartFrom", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_kafka_src_stop_at_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_KAFKA_SRC_STOP_AT_NEVER, "Never: wait for new messages (live)",
          "never"},
      {GST_KAFKA_SRC_STOP_AT_END,
          "EOS at the end the partitions had when assigned", "end"},
      {GST_KAFKA_SRC_STOP_AT_TIMESTAMP,
          "EOS at the first message at or after stop-time", "timestamp"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstKafkaSrcStopAt", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_kafka_src_malformed_policy_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_KAFKA_SRC_MALFORMED_DELIVER,
          "Deliver the payload with the fallback caps", "deliver"},
      {GST_KAFKA_SRC_MALFORMED_SKIP, "Drop the message", "skip"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstKafkaSrcMalformedPolicy", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* --- Properties ---------------------------------------------------------- */

static GstStructure *
stats_structure (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  return gst_structure_new ("GstKafkaSrcStats", "messages", G_TYPE_UINT64,
      priv->messages.load (), "bytes", G_TYPE_UINT64, priv->bytes.load (),
      "consumer-lag", G_TYPE_INT64, priv->lag.load (), nullptr);
}

static void
gst_kafka_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (object);
  Settings &s = self->priv->settings;

  if (prop_id == PROP_IS_LIVE) {
    gst_base_src_set_live (GST_BASE_SRC (self), g_value_get_boolean (value));
    return;
  }
  if (prop_id == PROP_URI) {
    gstkafka::uri_set_property (GST_ELEMENT (self), g_value_get_string (value));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
  case PROP_BROKERS:
    g_free (s.brokers);
    s.brokers = g_value_dup_string (value);
    break;
  case PROP_TOPIC:
    g_free (s.topic);
    s.topic = g_value_dup_string (value);
    break;
  case PROP_GROUP_ID:
    g_free (s.group_id);
    s.group_id = g_value_dup_string (value);
    break;
  case PROP_PARTITION:
    s.partition = g_value_get_int (value);
    break;
  case PROP_KEY:
    g_free (s.key);
    s.key = g_value_dup_string (value);
    break;
  case PROP_CONFIG:
    if (s.config)
      gst_structure_free (s.config);
    s.config = static_cast<GstStructure *> (g_value_dup_boxed (value));
    break;
  case PROP_CONFIG_FILE:
    g_free (s.config_file);
    s.config_file = g_value_dup_string (value);
    break;
  case PROP_START_FROM:
    s.start_from = static_cast<GstKafkaSrcStartFrom> (g_value_get_enum (value));
    break;
  case PROP_START_OFFSET:
    s.start_offset = g_value_get_int64 (value);
    break;
  case PROP_START_TIME:
    s.start_time = g_value_get_int64 (value);
    break;
  case PROP_STOP_AT:
    s.stop_at = static_cast<GstKafkaSrcStopAt> (g_value_get_enum (value));
    break;
  case PROP_STOP_TIME:
    s.stop_time = g_value_get_int64 (value);
    break;
  case PROP_CAPS:
    gst_caps_replace (&s.caps,
        const_cast<GstCaps *> (gst_value_get_caps (value)));
    break;
  case PROP_HANDLE_EOS_MARKER:
    s.handle_eos_marker = g_value_get_boolean (value);
    break;
  case PROP_MALFORMED_POLICY:
    s.malformed_policy = static_cast<GstKafkaSrcMalformedPolicy> (
        g_value_get_enum (value));
    break;
  case PROP_TIMEOUT:
    s.timeout = g_value_get_uint (value);
    break;
  case PROP_LATENCY:
    s.latency = g_value_get_uint (value);
    break;
  case PROP_STATS_INTERVAL:
    s.stats_interval = g_value_get_uint (value);
    break;
  case PROP_BUFFER_LIST:
    s.buffer_list = g_value_get_boolean (value);
    break;
  case PROP_ADD_REFERENCE_TIMESTAMP_META:
    s.add_reference_timestamp_meta = g_value_get_boolean (value);
    break;
  case PROP_ADD_KAFKA_META:
    s.add_kafka_meta = g_value_get_boolean (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_kafka_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (object);
  GstKafkaSrcPrivate *priv = self->priv;
  Settings &s = priv->settings;

  switch (prop_id) {
  case PROP_URI:
    g_value_take_string (value,
        gstkafka::uri_get_property (GST_ELEMENT (self)));
    return;
  case PROP_IS_LIVE:
    g_value_set_boolean (value, gst_base_src_is_live (GST_BASE_SRC (self)));
    return;
  case PROP_MESSAGES:
    g_value_set_uint64 (value, priv->messages.load ());
    return;
  case PROP_BYTES:
    g_value_set_uint64 (value, priv->bytes.load ());
    return;
  case PROP_CONSUMER_LAG:
    g_value_set_int64 (value, priv->lag.load ());
    return;
  case PROP_STATS:
    g_value_take_boxed (value, stats_structure (self));
    return;
  default:
    break;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
  case PROP_BROKERS:
    g_value_set_string (value, s.brokers);
    break;
  case PROP_TOPIC:
    g_value_set_string (value, s.topic);
    break;
  case PROP_GROUP_ID:
    g_value_set_string (value, s.group_id);
    break;
  case PROP_KEY:
    g_value_set_string (value, s.key);
    break;
  case PROP_PARTITION:
    g_value_set_int (value, s.partition);
    break;
  case PROP_CONFIG:
    g_value_take_boxed (value, gstkafka::conf_redact (s.config));
    break;
  case PROP_CONFIG_FILE:
    g_value_set_string (value, s.config_file);
    break;
  case PROP_START_FROM:
    g_value_set_enum (value, s.start_from);
    break;
  case PROP_START_OFFSET:
    g_value_set_int64 (value, s.start_offset);
    break;
  case PROP_START_TIME:
    g_value_set_int64 (value, s.start_time);
    break;
  case PROP_STOP_AT:
    g_value_set_enum (value, s.stop_at);
    break;
  case PROP_STOP_TIME:
    g_value_set_int64 (value, s.stop_time);
    break;
  case PROP_CAPS:
    gst_value_set_caps (value, s.caps);
    break;
  case PROP_HANDLE_EOS_MARKER:
    g_value_set_boolean (value, s.handle_eos_marker);
    break;
  case PROP_MALFORMED_POLICY:
    g_value_set_enum (value, s.malformed_policy);
    break;
  case PROP_TIMEOUT:
    g_value_set_uint (value, s.timeout);
    break;
  case PROP_LATENCY:
    g_value_set_uint (value, s.latency);
    break;
  case PROP_STATS_INTERVAL:
    g_value_set_uint (value, s.stats_interval);
    break;
  case PROP_BUFFER_LIST:
    g_value_set_boolean (value, s.buffer_list);
    break;
  case PROP_ADD_REFERENCE_TIMESTAMP_META:
    g_value_set_boolean (value, s.add_reference_timestamp_meta);
    break;
  case PROP_ADD_KAFKA_META:
    g_value_set_boolean (value, s.add_kafka_meta);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* --- Trouble: unreachable brokers, missing topic ---------------------------
 */

/* Posts a warning the first time each problem shows up, and starts the
 * clock of #GstKafkaSrc:timeout. */
static void
note_trouble (GstKafkaSrc *self, Trouble kind, const std::string &text,
    const std::string &detail)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (!priv->trouble_since)
    priv->trouble_since = g_get_monotonic_time ();
  priv->trouble = kind;
  priv->trouble_text = text;
  if (!priv->trouble_warned.insert (text).second) {
    GST_DEBUG_OBJECT (self, "still: %s (%s)", text.c_str (), detail.c_str ());
    return;
  }
  if (kind == Trouble::TOPIC)
    GST_ELEMENT_WARNING (self, RESOURCE, NOT_FOUND, ("%s", text.c_str ()),
        ("%s", detail.c_str ()));
  else
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ, ("%s", text.c_str ()),
        ("%s", detail.c_str ()));
}

static void drop_batch (GstKafkaSrc *self,
    const rd_kafka_topic_partition_list_t *list);

/* Moves the partitions of @list to their offsets, and drops what was taken
 * from librdkafka before for those that moved. Returns librdkafka's error;
 * a partition that could not move has its err set and plays on. */
static gstkafka::Error
seek_partitions (GstKafkaSrc *self, rd_kafka_topic_partition_list_t *list)
{
  gstkafka::Error error (
      rd_kafka_seek_partitions (self->priv->rk, list, LIST_OFFSETS_TIMEOUT_MS));
  if (error)
    return error;
  gstkafka::TopicPartitionList sought (
      rd_kafka_topic_partition_list_new (list->cnt));
  for (int i = 0; i < list->cnt; i++) {
    if (list->elems[i].err)
      continue;
    rd_kafka_topic_partition_list_add (sought.get (), list->elems[i].topic,
        list->elems[i].partition);
    /* Elsewhere than the group's offset now. */
    auto it = self->priv->parts.find (list->elems[i].partition);
    if (it != self->priv->parts.end ())
      it->second.resume_from = -1;
  }
  drop_batch (self, sought.get ());
  return error;
}

/* The topic was deleted and created again: the position librdkafka kept
 * for each partition belongs to the old topic, and would skip as many
 * messages of the new one, all of which are new. Reads it from its start,
 * without what was taken from librdkafka before. */
static void
restart_recreated_topic (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  rd_kafka_topic_partition_list_t *assignment = nullptr;

  rd_kafka_resp_err_t err = rd_kafka_assignment (priv->rk, &assignment);
  gstkafka::TopicPartitionList list (assignment);
  if (err || !list || list->cnt == 0)
    return;
  for (int i = 0; i < list->cnt; i++) {
    list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    auto it = priv->parts.find (list->elems[i].partition);
    if (it == priv->parts.end ())
      continue;
    if (!it->second.pieces.empty ())
      priv->joining--;
    it->second = PartitionState ();
  }
  GST_INFO_OBJECT (self,
      "topic created again: reading its %d partition(s) "
      "from the start",
      list->cnt);
  gstkafka::Error error = seek_partitions (self, list.get ());
  if (error)
    GST_ELEMENT_WARNING (self, RESOURCE, SEEK,
        ("Could not go back to the start of Kafka topic '%s', created "
         "again: some of its first messages may be missed",
            priv->run.topic.c_str ()),
        ("%s", rd_kafka_error_string (error.get ())));
}

static void
clear_trouble (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (G_LIKELY (!priv->trouble_since))
    return;
  GST_ELEMENT_INFO (self, RESOURCE, OPEN_READ,
      ("Reading Kafka topic '%s' again", priv->run.topic.c_str ()),
      ("after: %s", priv->trouble_text.c_str ()));
  priv->trouble_since = 0;
  priv->trouble_warned.clear ();
  if (priv->topic_lost) {
    priv->topic_lost = false;
    restart_recreated_topic (self);
  }
}

static void
note_broker_trouble (GstKafkaSrc *self, const std::string &detail)
{
  g_autofree gchar
      *text = g_strdup_printf ("Cannot reach a Kafka broker of '%s'; retrying",
          self->priv->run.brokers.c_str ());
  note_trouble (self, Trouble::BROKER, text, detail);
}

static void
note_topic_trouble (GstKafkaSrc *self, const std::string &detail)
{
  GstKafkaSrcPrivate *priv = self->priv;
  g_autofree gchar *what =
      priv->run.partition >= 0
          ? g_strdup_printf ("Kafka topic '%s' partition %d",
                priv->run.topic.c_str (), priv->run.partition)
          : g_strdup_printf ("Kafka topic '%s'", priv->run.topic.c_str ());
  /* Once read from, it was there: deleted since. */
  g_autofree gchar *text = g_strdup_printf ("%s %s", what,
      priv->messages.load () > 0
          ? "no longer exists (deleted?); waiting for it to come back"
          : "does not exist (yet); waiting for it");
  note_trouble (self, Trouble::TOPIC, text, detail);
}

/* Asks the broker for the topic. Returns the number of partitions, 0 when
 * the topic does not exist, -1 when no broker answered. */
static gint
lookup_topic (GstKafkaSrc *self, gint timeout_ms, std::string &detail)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const rd_kafka_metadata_t *md = nullptr;

  rd_kafka_resp_err_t err = rd_kafka_metadata (priv->rk, 0, priv->rkt, &md,
      timeout_ms);
  if (err) {
    detail = "metadata request: " + gstkafka::err_text (err);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT)
      priv->metadata_slice = MIN (priv->metadata_slice * 2,
          METADATA_SLICE_MAX_MS);
    return -1;
  }
  gint n = 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    n = md->topics[0].partition_cnt;
  else if (md->topic_cnt == 1)
    detail = "metadata: " + gstkafka::err_text (md->topics[0].err);
  rd_kafka_metadata_destroy (md);
  return n;
}

/* While in trouble, looks for the topic now and then: librdkafka says
 * nothing when an idle connection comes back. Posts the error when
 * #GstKafkaSrc:timeout ran out. */
static GstFlowReturn
check_trouble (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const Run &run = priv->run;

  if (G_LIKELY (!priv->trouble_since))
    return GST_FLOW_OK;
  gint64 now = g_get_monotonic_time ();
  bool expired = run.timeout && now - priv->trouble_since >=
                                    gint64 (run.timeout) * G_USEC_PER_SEC;
  if (!expired && now - priv->last_probe < PROBE_INTERVAL_US)
    return GST_FLOW_OK;
  priv->last_probe = now;

  std::string detail;
  gint n = lookup_topic (self, priv->metadata_slice, detail);
  if (n > 0 && n > run.partition) {
    clear_trouble (self);
    return GST_FLOW_OK;
  }
  if (!expired)
    return GST_FLOW_OK;
  if (priv->trouble == Trouble::TOPIC && n >= 0)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Kafka topic '%s' did not appear within %u seconds",
            run.topic.c_str (), run.timeout),
        ("%s; %s", priv->trouble_text.c_str (), detail.c_str ()));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not read Kafka topic '%s' from '%s' for %u seconds",
            run.topic.c_str (), run.brokers.c_str (), run.timeout),
        ("%s; %s", priv->trouble_text.c_str (), detail.c_str ()));
  return GST_FLOW_ERROR;
}

/* --- librdkafka callbacks (run inside our polls) ------------------------- */

static void
error_cb (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (opaque);
  auto code = static_cast<rd_kafka_resp_err_t> (err);

  switch (code) {
  case RD_KAFKA_RESP_ERR__FATAL: {
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error (rk, buf, sizeof (buf));
    self->priv->fatal = gstkafka::err_text (orig) + ": " + buf;
    break;
  }
  case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    self->priv->auth_error = gstkafka::err_text (code) + ": " + reason;
    break;
  case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
  case RD_KAFKA_RESP_ERR__RESOLVE:
  case RD_KAFKA_RESP_ERR__SSL:
    note_broker_trouble (self, gstkafka::err_text (code) + ": " + reason);
    break;
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    /* The topic (or the partition read) was deleted while being read. */
    if (self->priv->messages.load () > 0)
      self->priv->topic_lost = true;
    note_topic_trouble (self, gstkafka::err_text (code) + ": " + reason);
    break;
  default:
    /* A single broker's disconnect and the like: librdkafka retries. */
    GST_INFO_OBJECT (self, "%s: %s", gstkafka::err_text (code).c_str (),
        reason);
    break;
  }
}

static int
stats_cb (rd_kafka_t *, char *json, size_t json_len, void *opaque)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (opaque);
  GstStructure *s = stats_structure (self);

  gst_structure_set_name (s, "kafkasrc-stats");
  g_autofree gchar *text = g_strndup (json, json_len);
  gst_structure_set (s, "librdkafka", G_TYPE_STRING, text, nullptr);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
  return 0;
}

/* Waits for the commit of the stored offsets; unlock() interrupts the wait
 * when @interruptible. */
static bool
commit_stored (GstKafkaSrc *self, gint timeout_ms, bool interruptible)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (!priv->run.commits || !priv->uncommitted || !priv->commit_queue)
    return true;

  rd_kafka_resp_err_t err = rd_kafka_commit_queue (priv->rk, nullptr,
      priv->commit_queue.get (), nullptr, nullptr);
  if (err) {
    GST_WARNING_OBJECT (self, "commit: %s", gstkafka::err_text (err).c_str ());
    return false;
  }
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  for (;;) {
    gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
    if (left <= 0) {
      GST_WARNING_OBJECT (self, "commit did not complete in %d ms", timeout_ms);
      return false;
    }
    gstkafka::Event ev (rd_kafka_queue_poll (priv->commit_queue.get (),
        static_cast<int> (left)));
    if (ev && rd_kafka_event_type (ev.get ()) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
      err = rd_kafka_event_error (ev.get ());
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR ||
          err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        const rd_kafka_topic_partition_list_t
            *done = rd_kafka_event_topic_partition_list (ev.get ());
        for (int i = 0; done && i < done->cnt; i++)
          GST_DEBUG_OBJECT (self,
              "committed partition %d offset %" G_GINT64_FORMAT ": %s",
              done->elems[i].partition, done->elems[i].offset,
              rd_kafka_err2name (done->elems[i].err));
        priv->uncommitted = false;
        return true;
      }
      GST_WARNING_OBJECT (self, "commit failed: %s",
          gstkafka::err_text (err).c_str ());
      return false;
    }
    if (interruptible && priv->flushing.load ()) {
      GST_DEBUG_OBJECT (self, "commit wait interrupted");
      return false;
    }
  }
}

static void
store_offset (GstKafkaSrc *self, gint32 partition, gint64 next)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (!priv->run.commits)
    return;
  /* rd_kafka_offset_store() stores next - 1 + 1. (A reused partition list
   * would not do: librdkafka caches the partition of each element.) */
  rd_kafka_resp_err_t err = rd_kafka_offset_store (priv->rkt, partition,
      next - 1);
  if (err) {
    /* The partition was taken away meanwhile: its new owner reads it. */
    GST_DEBUG_OBJECT (self,
        "not storing offset %" G_GINT64_FORMAT " of partition %d: %s", next,
        partition, gstkafka::err_text (err).c_str ());
    return;
  }
  priv->uncommitted = true;
}

/* Remembers that @partition is done up to @next, to be stored once the
 * buffers handed out before were pushed. */
static void
defer_store (GstKafkaSrc *self, gint32 partition, gint64 next)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (!priv->run.commits)
    return;
  if (G_UNLIKELY (priv->joining)) {
    /* Not past the first part of a buffer not joined yet: a restarted
     * viewer reads all its parts again. */
    auto ps = priv->parts.find (partition);
    if (ps != priv->parts.end () && !ps->second.pieces.empty ())
      next = MIN (next, ps->second.pieces.front ()->offset);
  }
  for (auto &it : priv->to_store) {
    if (it.first == partition) {
      it.second = next;
      return;
    }
  }
  priv->to_store.emplace_back (partition, next);
}

/* The buffers create() returned last were pushed: their offsets, and those
 * of the messages skipped among them, may be stored. */
static void
store_deferred (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;

  for (auto &it : priv->to_store)
    store_offset (self, it.first, it.second);
  priv->to_store.clear ();
}

/* Drops the messages not handled yet of the partitions in @list (all when
 * nullptr): they were taken away, or a seek moved past them. */
static void
drop_batch (GstKafkaSrc *self, const rd_kafka_topic_partition_list_t *list)
{
  GstKafkaSrcPrivate *priv = self->priv;
  guint dropped = 0;

  for (size_t i = priv->batch_pos; i < priv->batch.size (); i++) {
    rd_kafka_message_t *m = priv->batch[i];
    if (!m || (list && !rd_kafka_topic_partition_list_find (list,
                           priv->run.topic.c_str (), m->partition)))
      continue;
    rd_kafka_message_destroy (m);
    priv->batch[i] = nullptr;
    dropped++;
  }
  for (auto &it : priv->parts) {
    PartitionState &ps = it.second;
    if (ps.pieces.empty () ||
        (list && !rd_kafka_topic_partition_list_find (list,
                     priv->run.topic.c_str (), it.first)))
      continue;
    dropped += ps.pieces.size ();
    ps.pieces.clear ();
    priv->joining--;
  }
  if (!list) {
    priv->batch.clear ();
    priv->batch_pos = 0;
    priv->joining = 0;
  }
  if (dropped)
    GST_DEBUG_OBJECT (self, "dropped %u messages not handed out yet", dropped);
}

/* Sets the start offsets of newly assigned partitions per start-from, looks
 * up their end for stop-at=end, and tracks them. */
static bool
prepare_partitions (GstKafkaSrc *self, rd_kafka_topic_partition_list_t *list)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const Run &run = priv->run;
  rd_kafka_t *rk = priv->rk;
  gstkafka::TopicPartitionList by_time (
      rd_kafka_topic_partition_list_new (list->cnt));
  gstkafka::TopicPartitionList resumed (
      rd_kafka_topic_partition_list_new (list->cnt));

  for (int i = 0; i < list->cnt; i++) {
    rd_kafka_topic_partition_t *e = &list->elems[i];
    bool first = priv->seen.insert (e->partition).second;

    if (first) {
      switch (run.start_from) {
      case GST_KAFKA_SRC_START_FROM_COMMITTED:
        if (!run.subscribe)
          e->offset = run.commits ? RD_KAFKA_OFFSET_STORED
                                  : RD_KAFKA_OFFSET_BEGINNING;
        if (run.commits)
          rd_kafka_topic_partition_list_add (resumed.get (), e->topic,
              e->partition);
        break;
      case GST_KAFKA_SRC_START_FROM_EARLIEST:
        e->offset = RD_KAFKA_OFFSET_BEGINNING;
        break;
      case GST_KAFKA_SRC_START_FROM_LATEST:
        e->offset = RD_KAFKA_OFFSET_END;
        break;
      case GST_KAFKA_SRC_START_FROM_OFFSET:
        e->offset = run.start_offset >= 0
                        ? run.start_offset
                        : RD_KAFKA_OFFSET_TAIL (-run.start_offset);
        break;
      case GST_KAFKA_SRC_START_FROM_TIMESTAMP:
        rd_kafka_topic_partition_list_add (by_time.get (), e->topic,
            e->partition)
            ->offset = run.start_time;
        break;
      }
    } else if (!run.subscribe) {
      e->offset = RD_KAFKA_OFFSET_STORED;
    }

    PartitionState ps;
    bool at_offset = first &&
                     run.start_from == GST_KAFKA_SRC_START_FROM_OFFSET &&
                     run.start_offset >= 0;
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t marks_err = RD_KAFKA_RESP_ERR__NOENT;
    if (run.stop_at == GST_KAFKA_SRC_STOP_AT_END || at_offset)
      marks_err = rd_kafka_query_watermark_offsets (rk, e->topic, e->partition,
          &lo, &hi, LIST_OFFSETS_TIMEOUT_MS);
    if (run.stop_at == GST_KAFKA_SRC_STOP_AT_END) {
      if (marks_err)
        GST_WARNING_OBJECT (self,
            "end of partition %d unknown (%s): "
            "stopping at the first end reached",
            e->partition, gstkafka::err_text (marks_err).c_str ());
      else
        ps.end = hi;
      GST_DEBUG_OBJECT (self, "partition %d: stop at offset %" G_GINT64_FORMAT,
          e->partition, ps.end);
    }
    /* librdkafka would start an offset it does not have at the beginning
     * (auto.offset.reset), in silence. */
    if (at_offset && !marks_err &&
        (run.start_offset > hi || run.start_offset < lo)) {
      bool past_end = run.start_offset > hi;
      e->offset = past_end ? hi : lo;
      GST_ELEMENT_WARNING (self, RESOURCE, SEEK,
          ("start-offset %" G_GINT64_FORMAT " is %s of Kafka topic '%s' "
           "partition %d: starting at offset %" G_GINT64_FORMAT "%s",
              run.start_offset,
              past_end ? "past the end" : "no longer in the log",
              run.topic.c_str (), e->partition, e->offset,
              past_end ? ", with the next message produced"
                       : ", the oldest message still stored (retention "
                         "deleted the ones before)"),
          ("partition %d holds offsets %" G_GINT64_FORMAT
           " to %" G_GINT64_FORMAT,
              e->partition, gint64 (lo), gint64 (hi) - 1));
    }
    priv->parts[e->partition] = std::move (ps);
  }

  if (resumed->cnt > 0) {
    /* One request, to tell a resumed viewer what retention took. */
    rd_kafka_resp_err_t err = rd_kafka_committed (rk, resumed.get (),
        LIST_OFFSETS_TIMEOUT_MS);
    for (int i = 0; !err && i < resumed->cnt; i++) {
      const rd_kafka_topic_partition_t *c = &resumed->elems[i];
      if (c->err || c->offset < 0)
        continue;
      priv->parts[c->partition].resume_from = c->offset;
      priv->resuming = true;
    }
    if (err)
      GST_DEBUG_OBJECT (self, "committed offsets unknown: %s",
          gstkafka::err_text (err).c_str ());
  }

  if (by_time->cnt > 0) {
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times (rk, by_time.get (),
        LIST_OFFSETS_TIMEOUT_MS);
    if (err) {
      priv->fatal = "looking up start-time offsets: " +
                    gstkafka::err_text (err);
      return false;
    }
    for (int i = 0; i < by_time->cnt; i++) {
      rd_kafka_topic_partition_t *t = &by_time->elems[i];
      rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_find (list,
          t->topic, t->partition);
      /* No message that late (yet): start with the next one. */
      e->offset = (t->err || t->offset < 0) ? RD_KAFKA_OFFSET_END : t->offset;
      GST_DEBUG_OBJECT (self,
          "partition %d: start-time %" G_GINT64_FORMAT
          " is offset %" G_GINT64_FORMAT,
          t->partition, run.start_time, e->offset);
    }
  }
  return true;
}

/* After an assignment: a member that holds no partition reads nothing, as
 * a second viewer with the same group-id as the first on a topic of one
 * partition. Not an error (it stands by to take over), but a user who
 * expected the stream needs to know why nothing comes. */
static void
note_idle_member (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  rd_kafka_topic_partition_list_t *assignment = nullptr;

  if (rd_kafka_assignment (priv->rk, &assignment))
    return;
  gstkafka::TopicPartitionList held (assignment);
  if (held->cnt > 0) {
    priv->idle_noted = false;
    return;
  }
  if (priv->idle_noted)
    return;
  priv->idle_noted = true;
  /* gst-launch-1.0 prints the debug part of an INFO message only. */
  g_autofree gchar *text = g_strdup_printf (
      "Consumer group '%s' gave this kafkasrc no partition of Kafka topic "
      "'%s': other members of the group read them all. It reads nothing "
      "until one of them leaves; set another group-id to read the whole "
      "stream",
      priv->run.group.c_str (), priv->run.topic.c_str ());
  GST_ELEMENT_INFO (self, RESOURCE, READ, ("%s", text), ("%s", text));
}

static void
rebalance_cb (rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *list, void *opaque)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (opaque);
  GstKafkaSrcPrivate *priv = self->priv;
  bool cooperative = strcmp (rd_kafka_rebalance_protocol (rk), "COOPERATIVE") ==
                     0;
  gstkafka::Error error;
  rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < list->cnt; i++)
      GST_INFO_OBJECT (self, "assigned partition %d", list->elems[i].partition);
    prepare_partitions (self, list);
    if (cooperative)
      error.reset (rd_kafka_incremental_assign (rk, list));
    else
      ret = rd_kafka_assign (rk, list);
    priv->assigned = true;
    clear_trouble (self);
    note_idle_member (self);
  } else {
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS &&
        !rd_kafka_assignment_lost (rk))
      commit_stored (self, CLOSE_TIMEOUT_MS, true);
    /* Their new owner, or this element after the next assignment, reads
     * them again from the committed offsets. */
    drop_batch (self, list);
    for (int i = 0; i < list->cnt; i++) {
      GST_INFO_OBJECT (self, "partition %d revoked", list->elems[i].partition);
      priv->parts.erase (list->elems[i].partition);
    }
    if (cooperative)
      error.reset (rd_kafka_incremental_unassign (rk, list));
    else
      ret = rd_kafka_assign (rk, nullptr);
  }
  if (error)
    GST_WARNING_OBJECT (self, "rebalance: %s",
        rd_kafka_error_string (error.get ()));
  if (ret)
    GST_WARNING_OBJECT (self, "rebalance: %s",
        gstkafka::err_text (ret).c_str ());
}

/* Assign mode: finds the topic's partitions and assigns them. Returns false
 * while the topic cannot be found; the caller polls meanwhile. */
static bool
assign_partitions (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const Run &run = priv->run;
  gint64 now = g_get_monotonic_time ();

  if (now < priv->next_attempt)
    return false;
  priv->next_attempt = now + RETRY_INTERVAL_MS * 1000;

  std::string detail;
  gint n = lookup_topic (self, priv->metadata_slice, detail);
  if (n < 0) {
    note_broker_trouble (self, detail);
    return false;
  }
  if (n <= run.partition || n == 0) {
    note_topic_trouble (self,
        detail.empty () ? "topic has " + std::to_string (n) + " partitions"
                        : detail);
    return false;
  }

  gstkafka::TopicPartitionList list (rd_kafka_topic_partition_list_new (n));
  for (gint p = 0; p < n; p++) {
    if (run.partition < 0 || run.partition == p)
      rd_kafka_topic_partition_list_add (list.get (), run.topic.c_str (), p);
  }
  if (!prepare_partitions (self, list.get ()))
    return false;
  rd_kafka_resp_err_t err = rd_kafka_assign (priv->rk, list.get ());
  if (err) {
    priv->fatal = "assign: " + gstkafka::err_text (err);
    return false;
  }
  GST_INFO_OBJECT (self, "reading %d partition(s) of '%s'", list->cnt,
      run.topic.c_str ());
  priv->assigned = true;
  clear_trouble (self);
  return true;
}

/* --- Start and stop ------------------------------------------------------ */

static gboolean gst_kafka_src_stop (GstBaseSrc *bsrc);

/* Kafka timestamps are milliseconds since the epoch; before this one
 * (March 1973) a time is surely in seconds. */
#define EARLIEST_PLAUSIBLE_MS G_GINT64_CONSTANT (100000000000)

/* Why start-time and stop-time cannot select anything, or "". */
static std::string
time_settings_problem (const Run &run)
{
  auto in_seconds = [] (const char *name, gint64 ms) -> std::string {
    if (ms <= 0 || ms >= EARLIEST_PLAUSIBLE_MS)
      return "";
    return std::string (name) + "=" + std::to_string (ms) +
           " is in the first days of 1970: Kafka times are milliseconds "
           "since the epoch (" +
           name + "=" + std::to_string (ms) + "000 if it is in seconds)";
  };
  std::string problem;
  if (run.start_from == GST_KAFKA_SRC_START_FROM_TIMESTAMP)
    problem = in_seconds ("start-time", run.start_time);
  if (problem.empty () && run.stop_at == GST_KAFKA_SRC_STOP_AT_TIMESTAMP) {
    if (run.stop_time <= 0)
      problem = "stop-at=timestamp needs stop-time, in milliseconds since "
                "the epoch";
    else
      problem = in_seconds ("stop-time", run.stop_time);
    if (problem.empty () &&
        run.start_from == GST_KAFKA_SRC_START_FROM_TIMESTAMP &&
        run.stop_time <= run.start_time)
      problem = "stop-time=" + std::to_string (run.stop_time) +
                " is not after start-time=" + std::to_string (run.start_time) +
                ": there is nothing to play between them";
  }
  return problem;
}

static gboolean
gst_kafka_src_start (GstBaseSrc *bsrc)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);
  GstKafkaSrcPrivate *priv = self->priv;
  Run &run = priv->run;
  Settings &s = priv->settings;
  g_autofree gchar *group_id = nullptr;
  g_autofree gchar *config_file = nullptr;
  g_autoptr (GstStructure) config = nullptr;

  GST_OBJECT_LOCK (self);
  run = Run ();
  run.brokers = s.brokers ? s.brokers : "";
  run.topic = s.topic ? s.topic : "";
  run.partition = s.partition;
  run.key = s.key ? s.key : "";
  run.start_from = s.start_from;
  run.start_offset = s.start_offset;
  run.start_time = s.start_time;
  run.stop_at = s.stop_at;
  run.stop_time = s.stop_time;
  run.handle_eos_marker = s.handle_eos_marker;
  run.malformed_policy = s.malformed_policy;
  run.timeout = s.timeout;
  run.buffer_list = s.buffer_list;
  run.add_reference_timestamp_meta = s.add_reference_timestamp_meta;
  run.add_kafka_meta = s.add_kafka_meta;
  group_id = g_strdup (s.group_id);
  config_file = g_strdup (s.config_file);
  config = s.config ? gst_structure_copy (s.config) : nullptr;
  guint stats_interval = s.stats_interval;
  GST_OBJECT_UNLOCK (self);
  run.live = gst_base_src_is_live (bsrc);

  std::string uri_problem = gstkafka::uri_problem (GST_ELEMENT (self));
  if (!uri_problem.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid 'uri' property: %s", uri_problem.c_str ()), (nullptr));
    return FALSE;
  }
  if (run.topic.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("No Kafka topic set: set the topic property"), (nullptr));
    return FALSE;
  }
  std::string topic_problem = gstkafka::topic_name_problem (run.topic);
  if (!topic_problem.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("'%s' is not a valid Kafka topic name: %s", run.topic.c_str (),
            topic_problem.c_str ()),
        (nullptr));
    return FALSE;
  }
  std::string time_problem = time_settings_problem (run);
  if (!time_problem.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", time_problem.c_str ()),
        (nullptr));
    return FALSE;
  }

  /* A private group: librdkafka's assign() wants a group, but it never
   * commits, so nothing is left behind on the broker. */
  g_autofree gchar *private_group = g_strdup_printf ("gst-kafkasrc-%08x%08x",
      g_random_int (), g_random_int ());
  std::string interval = std::to_string (stats_interval);
  gstkafka::ConfDefault defaults[] = {
      {"group.id", group_id && *group_id ? group_id : private_group},
      {"enable.auto.commit", group_id && *group_id ? "true" : "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "true"},
      {"statistics.interval.ms", interval.c_str ()},
  };
  GError *error = nullptr;
  gstkafka::Conf conf = gstkafka::conf_new (GST_ELEMENT (self),
      gst_kafka_src_debug, defaults, G_N_ELEMENTS (defaults),
      run.brokers.c_str (), config_file, config, &error);
  if (!conf) {
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        error->domain, error->code, g_strdup (error->message), nullptr,
        __FILE__, GST_FUNCTION, __LINE__);
    g_error_free (error);
    return FALSE;
  }

  char value[512];
  size_t value_size = sizeof (value);
  rd_kafka_conf_get (conf.get (), "group.id", value, &value_size);
  run.commits = strcmp (value, private_group) != 0;
  run.subscribe = run.commits && run.partition < 0;
  run.group = value;
  value_size = sizeof (value);
  if (rd_kafka_conf_get (conf.get (), "bootstrap.servers", value,
          &value_size) == RD_KAFKA_CONF_OK)
    run.brokers = value;

  rd_kafka_conf_set_error_cb (conf.get (), error_cb);
  rd_kafka_conf_set_stats_cb (conf.get (), stats_cb);
  if (run.subscribe)
    rd_kafka_conf_set_rebalance_cb (conf.get (), rebalance_cb);

  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf.get (), errstr,
      sizeof (errstr));
  if (!rk) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Could not create a Kafka consumer: %s", errstr), (nullptr));
    return FALSE;
  }
  conf.release (); /* rd_kafka_new() took it. */
  rd_kafka_poll_set_consumer (rk);

  {
    std::lock_guard<std::mutex> lk (priv->lock);
    priv->rk = rk;
    priv->consumer = new Consumer (rk, GST_ELEMENT (self));
    priv->consumer_queue.reset (rd_kafka_queue_get_consumer (rk));
    priv->commit_queue.reset (rd_kafka_queue_new (rk));
  }
  priv->rkt = rd_kafka_topic_new (rk, run.topic.c_str (), nullptr);

  priv->assigned = false;
  priv->metadata_slice = METADATA_SLICE_MS;
  priv->next_attempt = 0;
  priv->parts.clear ();
  priv->seen.clear ();
  drop_batch (self, nullptr);
  priv->to_store.clear ();
  priv->uncommitted = false;
  priv->eos = false;
  priv->fatal.clear ();
  priv->auth_error.clear ();
  priv->need_anchor = true;
  priv->seeked = false;
  priv->last_end = GST_CLOCK_TIME_NONE;
  priv->base_ts = -1;
  priv->have_session = false;
  priv->discont = false;
  gst_clear_caps (&priv->caps);
  priv->skipped_for_caps = 0;
  priv->other_keys = 0;
  priv->key_seen = false;
  priv->key_warned = false;
  priv->other_key_names.clear ();
  priv->have_parsed = false;
  priv->parsed_str.clear ();
  gst_clear_caps (&priv->parsed_caps);
  priv->parsed_problem.clear ();
  priv->warned.clear ();
  priv->trouble_since = 0;
  priv->last_probe = 0;
  priv->trouble_warned.clear ();
  priv->topic_lost = false;
  priv->idle_noted = false;
  priv->looking_back = false;
  priv->resuming = false;
  priv->messages = 0;
  priv->bytes = 0;
  priv->lag = -1;
  priv->lag_updated = 0;

  if (run.subscribe) {
    gstkafka::TopicPartitionList topics (rd_kafka_topic_partition_list_new (1));
    rd_kafka_topic_partition_list_add (topics.get (), run.topic.c_str (),
        RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe (rk, topics.get ());
    if (err) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("Could not subscribe to Kafka topic '%s'", run.topic.c_str ()),
          ("%s", gstkafka::err_text (err).c_str ()));
      gst_kafka_src_stop (bsrc);
      return FALSE;
    }
  }
  GST_INFO_OBJECT (self, "consuming '%s' from %s (%s, %s)", run.topic.c_str (),
      run.brokers.c_str (), run.subscribe ? "group" : "assigned partitions",
      run.commits ? "committing offsets" : "no commits");
  return TRUE;
}

/* Leaves the group without waiting longer than CLOSE_TIMEOUT_MS. */
static void
close_consumer (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  rd_kafka_t *rk = priv->rk;
  gstkafka::Queue queue (rd_kafka_queue_new (rk));
  gstkafka::Error error (rd_kafka_consumer_close_queue (rk, queue.get ()));

  if (error) {
    GST_WARNING_OBJECT (self, "close: %s",
        rd_kafka_error_string (error.get ()));
    return;
  }
  gint64 deadline = g_get_monotonic_time () + CLOSE_TIMEOUT_MS * 1000;
  while (!rd_kafka_consumer_closed (rk)) {
    gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
    if (left <= 0) {
      GST_WARNING_OBJECT (self, "leaving the consumer group timed out");
      return;
    }
    gstkafka::Event ev (rd_kafka_queue_poll (queue.get (), MIN (left, 100)));
    if (ev && rd_kafka_event_type (ev.get ()) == RD_KAFKA_EVENT_REBALANCE) {
      if (strcmp (rd_kafka_rebalance_protocol (rk), "COOPERATIVE") == 0)
        gstkafka::Error (rd_kafka_incremental_unassign (rk,
            rd_kafka_event_topic_partition_list (ev.get ())));
      else
        rd_kafka_assign (rk, nullptr);
    }
  }
}

static gboolean
gst_kafka_src_stop (GstBaseSrc *bsrc)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);
  GstKafkaSrcPrivate *priv = self->priv;

  if (priv->rk) {
    /* With the brokers known to be away there is nobody to talk to. */
    if (!priv->trouble_since) {
      commit_stored (self, CLOSE_TIMEOUT_MS, false);
      if (priv->run.subscribe)
        close_consumer (self);
    }
    /* Not pushed: not stored, so the next run reads them. */
    drop_batch (self, nullptr);
    priv->to_store.clear ();
    if (priv->rkt) {
      rd_kafka_topic_destroy (priv->rkt);
      priv->rkt = nullptr;
    }
    Consumer *consumer;
    {
      std::lock_guard<std::mutex> lk (priv->lock);
      priv->consumer_queue.reset ();
      priv->commit_queue.reset ();
      priv->rk = nullptr;
      consumer = priv->consumer;
      priv->consumer = nullptr;
    }
    consumer_unref (consumer);
  }
  priv->parts.clear ();
  gst_clear_caps (&priv->caps);
  priv->have_parsed = false;
  gst_clear_caps (&priv->parsed_caps);
  GST_INFO_OBJECT (self, "stopped after %" G_GUINT64_FORMAT " messages",
      priv->messages.load ());
  return TRUE;
}

static gboolean
gst_kafka_src_unlock (GstBaseSrc *bsrc)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);
  GstKafkaSrcPrivate *priv = self->priv;
  std::lock_guard<std::mutex> lk (priv->lock);

  GST_LOG_OBJECT (self, "unlock");
  priv->flushing = true;
  if (priv->consumer_queue)
    rd_kafka_queue_yield (priv->consumer_queue.get ());
  if (priv->commit_queue)
    rd_kafka_queue_yield (priv->commit_queue.get ());
  return TRUE;
}

static gboolean
gst_kafka_src_unlock_stop (GstBaseSrc *bsrc)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);

  GST_LOG_OBJECT (self, "unlock stop");
  self->priv->flushing = false;
  return TRUE;
}

/* --- Buffers ------------------------------------------------------------- */

static GstClockTime
running_time_now (GstKafkaSrc *self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock)
    return 0;
  GstClockTime now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));
  return now > base ? now - base : 0;
}

static GstClockTime
map_time (GstKafkaSrcPrivate *priv, GstClockTime in)
{
  if (!GST_CLOCK_TIME_IS_VALID (in))
    return GST_CLOCK_TIME_NONE;
  if (in >= priv->anchor_in)
    return priv->anchor_out + (in - priv->anchor_in);
  GstClockTime back = priv->anchor_in - in;
  return back <= priv->anchor_out ? priv->anchor_out - back : 0;
}

static void
anchor (GstKafkaSrc *self, GstClockTime in)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (priv->run.live)
    priv->anchor_out = running_time_now (self);
  else if (priv->seeked)
    priv->anchor_out = priv->seek_pos;
  else if (GST_CLOCK_TIME_IS_VALID (priv->last_end))
    priv->anchor_out = priv->last_end;
  else
    priv->anchor_out = 0;
  priv->anchor_in = in;
  priv->need_anchor = false;
  priv->seeked = false;
  GST_DEBUG_OBJECT (self,
      "timestamps anchored: %" GST_TIME_FORMAT " -> %" GST_TIME_FORMAT,
      GST_TIME_ARGS (in), GST_TIME_ARGS (priv->anchor_out));
}

/* Restores the buffer's timestamps, mapped to our running time. */
static void
set_timestamps (GstKafkaSrc *self, GstBuffer *buf, const rd_kafka_message_t *m,
    const gstkafka::FrameInfo &info, bool &discont)
{
  GstKafkaSrcPrivate *priv = self->priv;
  GstClockTime pts = info.pts, dts = info.dts;
  GstClockTime duration = info.duration;

  if (!info.has_gst_headers) {
    gint64 ts = rd_kafka_message_timestamp (m, nullptr);
    pts = ts >= 0 ? ts * GST_MSECOND : GST_CLOCK_TIME_NONE;
  }
  GstClockTime in = GST_CLOCK_TIME_IS_VALID (dts) ? dts : pts;
  if (!GST_CLOCK_TIME_IS_VALID (in))
    return;

  bool anchored = false;
  if (priv->need_anchor || discont) {
    anchor (self, in);
    anchored = true;
  }
  if (priv->run.live && !anchored &&
      map_time (priv, in) + LATE_RESYNC < running_time_now (self)) {
    GST_INFO_OBJECT (self,
        "buffer at offset %" G_GINT64_FORMAT " arrived "
        "more than a second late: re-anchoring",
        m->offset);
    anchor (self, in);
    discont = true;
  }

  GST_BUFFER_PTS (buf) = map_time (priv, pts);
  GST_BUFFER_DTS (buf) = map_time (priv, dts);
  GST_BUFFER_DURATION (buf) = duration;

  GstClockTime end = GST_BUFFER_PTS (buf);
  if (GST_CLOCK_TIME_IS_VALID (end) && GST_CLOCK_TIME_IS_VALID (duration))
    end += duration;
  if (GST_CLOCK_TIME_IS_VALID (end) &&
      (!GST_CLOCK_TIME_IS_VALID (priv->last_end) || end > priv->last_end))
    priv->last_end = end;
}

static void
warn_malformed (GstKafkaSrc *self, const rd_kafka_message_t *m,
    const std::string &problems)
{
  GstKafkaSrcPrivate *priv = self->priv;
  bool skip = priv->run.malformed_policy == GST_KAFKA_SRC_MALFORMED_SKIP;

  if (!priv->warned.insert (problems).second) {
    GST_DEBUG_OBJECT (self, "partition %d offset %" G_GINT64_FORMAT ": %s",
        m->partition, m->offset, problems.c_str ());
    return;
  }
  GST_ELEMENT_WARNING (self, STREAM, DECODE,
      ("Malformed gst.* headers in Kafka topic '%s' partition %d offset "
       "%" G_GINT64_FORMAT ": %s; %s",
          priv->run.topic.c_str (), m->partition, m->offset, problems.c_str (),
          skip ? "message skipped" : "payload delivered with fallback caps"),
      ("further messages with the same problem are only logged"));
}

/* Returned by update_caps() for a message to skip: one of a kafkasink
 * stream joined between two messages that carry its caps. */
#define FLOW_WAIT_FOR_CAPS GST_FLOW_CUSTOM_SUCCESS
/* Returned by update_caps() for a message whose producer sent the caps with
 * an earlier message, which look_back_for_caps() may find. */
#define FLOW_LOOK_BACK GST_FLOW_CUSTOM_SUCCESS_1

/* How far look_back_for_caps() reads back, in Kafka timestamps (twice
 * kafkasink's longest interval between two messages with the caps) and in
 * messages. */
#define LOOKBACK_MS 2000
#define LOOKBACK_MAX_MESSAGES 10000

static void
note_skipped_for_caps (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  GstKafkaSrcPrivate *priv = self->priv;

  if (priv->skipped_for_caps++ == 0)
    GST_ELEMENT_INFO (self, STREAM, TYPE_NOT_FOUND,
        ("Joined the stream of Kafka topic '%s' between two messages "
         "that carry its caps: skipping messages until one does (the "
         "next keyframe, or within a second)",
            priv->run.topic.c_str ()),
        ("partition %d offset %" G_GINT64_FORMAT " (%" G_GSIZE_FORMAT
         " bytes) carries no gst.caps and is not a file that typefinding "
         "recognises: waiting for a message with gst.caps",
            m->partition, m->offset, m->len));
}

/* Messages of other keys passed over, without one of the key, before
 * kafkasrc says so. */
#define OTHER_KEYS_WARNING 100
#define OTHER_KEY_NAMES 4

/* Says once that no message read so far has the key, if so. */
static void
warn_no_key (GstKafkaSrc *self, const char *when)
{
  GstKafkaSrcPrivate *priv = self->priv;
  if (priv->key_seen || priv->key_warned || priv->other_keys == 0)
    return;
  priv->key_warned = true;
  std::string names;
  for (const std::string &n : priv->other_key_names)
    names += (names.empty () ? "'" : ", '") + n + "'";
  if (names.empty ())
    names = "none";
  GST_ELEMENT_WARNING (self, RESOURCE, NOT_FOUND,
      ("None of the %" G_GUINT64_FORMAT " messages read from Kafka topic "
       "'%s' has the key '%s'%s: check the key property (keys seen: %s)",
          priv->other_keys, priv->run.topic.c_str (), priv->run.key.c_str (),
          when, names.c_str ()),
      (nullptr));
}

/* A message passed over for its key: says so once when the key looks
 * wrong. */
static void
note_other_key (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  GstKafkaSrcPrivate *priv = self->priv;
  if (priv->key_seen)
    return;
  if (priv->other_key_names.size () < OTHER_KEY_NAMES) {
    std::string name = m->key ? std::string (static_cast<const char *> (m->key),
                                    m->key_len)
                              : "(no key)";
    if (!g_utf8_validate (name.data (), name.size (), nullptr))
      name = "(" + std::to_string (m->key_len) + " bytes, not text)";
    if (std::find (priv->other_key_names.begin (), priv->other_key_names.end (),
            name) == priv->other_key_names.end ())
      priv->other_key_names.push_back (name);
  }
  if (++priv->other_keys == OTHER_KEYS_WARNING)
    warn_no_key (self, "; still reading");
}

/* A viewer that resumes at a message without the caps, whose producer sent
 * them with an earlier one (an audio packet, a small message; not a delta
 * unit, which cannot start a stream): reads the
 * messages of the last LOOKBACK_MS before it again, for their caps only, so
 * that it starts where it should instead of at the next message with caps.
 * Returns false when there is nothing to read back; the message is then
 * skipped. */
static bool
look_back_for_caps (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  GstKafkaSrcPrivate *priv = self->priv;
  auto it = priv->parts.find (m->partition);
  if (it == priv->parts.end ())
    return false;
  PartitionState &ps = it->second;
  ps.looked_back = true;

  gint64 ts = rd_kafka_message_timestamp (m, nullptr);
  if (ts < 0)
    return false;
  gstkafka::TopicPartitionList list (rd_kafka_topic_partition_list_new (1));
  rd_kafka_topic_partition_t
      *e = rd_kafka_topic_partition_list_add (list.get (),
          priv->run.topic.c_str (), m->partition);
  e->offset = ts - LOOKBACK_MS;
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times (priv->rk, list.get (),
      LIST_OFFSETS_TIMEOUT_MS);
  if (err || e->err || e->offset < 0 || e->offset >= m->offset) {
    GST_DEBUG_OBJECT (self, "partition %d: nothing to look back at: %s",
        m->partition, gstkafka::err_text (err ? err : e->err).c_str ());
    return false;
  }
  e->offset = MAX (e->offset, m->offset - LOOKBACK_MAX_MESSAGES);
  gint64 from = e->offset;
  gstkafka::Error error = seek_partitions (self, list.get ());
  if (error || e->err) {
    GST_WARNING_OBJECT (self, "partition %d: could not look back: %s",
        m->partition,
        error ? rd_kafka_error_string (error.get ())
              : gstkafka::err_text (e->err).c_str ());
    return false;
  }
  GST_INFO_OBJECT (self,
      "partition %d offset %" G_GINT64_FORMAT " carries no caps: looking "
      "for them from offset %" G_GINT64_FORMAT,
      m->partition, m->offset, from);
  ps.lookback_until = m->offset;
  priv->looking_back = true;
  return true;
}

/* Decides the caps of a message and pushes them when they change. */
static GstFlowReturn
update_caps (GstKafkaSrc *self, const rd_kafka_message_t *m,
    const gstkafka::FrameInfo &info, GstCaps *header_caps)
{
  GstKafkaSrcPrivate *priv = self->priv;
  g_autoptr (GstCaps) caps = nullptr;

  if (header_caps) {
    caps = gst_caps_ref (header_caps);
  } else if (priv->caps) {
    return GST_FLOW_OK;
  } else {
    GST_OBJECT_LOCK (self);
    if (priv->settings.caps)
      caps = gst_caps_ref (priv->settings.caps);
    GST_OBJECT_UNLOCK (self);
    GstTypeFindProbability typefind_prob = GST_TYPE_FIND_NONE;
    bool typefound = false;
    if (!caps && m->len > 0) {
      typefound = true;
      caps = gst_type_find_helper_for_data (GST_OBJECT (self),
          static_cast<const guint8 *> (m->payload), m->len, &typefind_prob);
      if (caps)
        GST_INFO_OBJECT (self, "typefind: %" GST_PTR_FORMAT " (probability %d)",
            caps, typefind_prob);
    }
    /* A delta unit of kafkasink's (a VP8 or H.264 delta frame, which needs
     * the frames before it) is no file to recognise: kafkasink sends the
     * caps with the next keyframe, or within a second. Nor is a message
     * whose producer sent the caps with other ones (an Opus packet, an Ogg
     * page without the stream's headers), unless it is a picture of its
     * own. (Older producers sent the caps with every keyframe, and a
     * producer without caps marks no message.) */
    bool delta = info.has_gst_headers && info.has_flags &&
                 (info.flags & GST_BUFFER_FLAG_DELTA_UNIT);
    bool elsewhere = info.has_gst_headers && info.caps_elsewhere;
    if (caps && typefound && (delta || elsewhere)) {
      bool picture = g_str_has_prefix (gst_structure_get_name (
                                           gst_caps_get_structure (caps, 0)),
          "image/");
      if (typefind_prob < GST_TYPE_FIND_LIKELY || (elsewhere && !picture))
        gst_clear_caps (&caps);
    }
    /* A delta unit cannot start the stream anyway: the next message with
     * the caps (a keyframe, a WebM cluster) is where to start. */
    if (!caps && elsewhere && !delta) {
      auto it = priv->parts.find (m->partition);
      if (it != priv->parts.end () && !it->second.looked_back)
        return FLOW_LOOK_BACK;
    }
    if (!caps && (delta || elsewhere)) {
      note_skipped_for_caps (self, m);
      return FLOW_WAIT_FOR_CAPS;
    }
    if (!caps) {
      GST_ELEMENT_WARNING (self, STREAM, TYPE_NOT_FOUND,
          ("Could not recognise the data in Kafka topic '%s' and it carries "
           "no caps: set the caps property",
              priv->run.topic.c_str ()),
          ("offset %" G_GINT64_FORMAT ", %" G_GSIZE_FORMAT " bytes, %s",
              m->offset, m->len,
              info.has_gst_headers ? "gst.* headers without gst.caps"
                                   : "no gst.* headers"));
      caps = gst_caps_new_empty_simple ("application/octet-stream");
    }
  }

  if (priv->caps && gst_caps_is_equal (priv->caps, caps))
    return GST_FLOW_OK;
  if (!priv->caps && priv->skipped_for_caps)
    GST_INFO_OBJECT (self,
        "caps at partition %d offset %" G_GINT64_FORMAT
        ", after skipping %" G_GUINT64_FORMAT " messages without them",
        m->partition, m->offset, priv->skipped_for_caps);
  GST_INFO_OBJECT (self, "caps %" GST_PTR_FORMAT, caps);
  if (!gst_base_src_set_caps (GST_BASE_SRC (self), caps)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (nullptr),
        ("downstream refused %" GST_PTR_FORMAT, caps));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  gst_caps_replace (&priv->caps, caps);
  return GST_FLOW_OK;
}

/* The message is the last of its partition for now. */
static bool
at_partition_end (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  int64_t lo = -1, hi = -1;
  if (rd_kafka_get_watermark_offsets (self->priv->rk,
          self->priv->run.topic.c_str (), m->partition, &lo, &hi))
    return true;
  return hi <= m->offset + 1;
}

static void
update_lag (GstKafkaSrc *self, bool now)
{
  GstKafkaSrcPrivate *priv = self->priv;

  /* Reading the clock for every small message shows in profiles. */
  if (!now && (++priv->lag_count & 15))
    return;
  gint64 t = g_get_monotonic_time ();
  if (!now && t - priv->lag_updated < LAG_INTERVAL_US)
    return;
  priv->lag_updated = t;
  gint64 lag = 0;
  for (auto &it : priv->parts) {
    int64_t lo = -1, hi = -1;
    if (it.second.next < 0 ||
        rd_kafka_get_watermark_offsets (priv->rk, priv->run.topic.c_str (),
            it.first, &lo, &hi) ||
        hi < 0)
      continue;
    lag += MAX (hi - it.second.next, 0);
  }
  priv->lag = lag;
}

/* A message's gst.* headers, decoded. */
struct Parsed
{
  gstkafka::FrameInfo info;
  bool ok = true;
  std::string problems;
  /* Caps of its gst.caps header, owned by priv->parsed_caps. */
  GstCaps *header_caps = nullptr;
};

/* Sets p.header_caps from p.info.caps. */
static void
parse_caps (GstKafkaSrc *self, Parsed &p)
{
  GstKafkaSrcPrivate *priv = self->priv;

  /* Parses only a string that differs from the last one. */
  if (!priv->have_parsed || priv->parsed_str.size () != p.info.caps_len ||
      memcmp (priv->parsed_str.data (), p.info.caps, p.info.caps_len) != 0) {
    priv->parsed_problem.clear ();
    gst_clear_caps (&priv->parsed_caps);
    priv->parsed_caps = gstkafka::frame_info_parse_caps (p.info,
        priv->parsed_problem);
    priv->parsed_str.assign (p.info.caps, p.info.caps_len);
    priv->have_parsed = true;
  }
  if (priv->parsed_caps) {
    p.header_caps = priv->parsed_caps;
  } else {
    if (!p.problems.empty ())
      p.problems += "; ";
    p.problems += priv->parsed_problem;
    p.ok = false;
  }
}

static void
parse_message (GstKafkaSrc *self, const rd_kafka_message_t *m, Parsed &p)
{
  p.ok = gstkafka::headers_read (m, p.info, p.problems);
  if (p.info.caps)
    parse_caps (self, p);
}

/* Whether the message needs other caps than those pushed last. */
static bool
changes_caps (GstKafkaSrcPrivate *priv, const Parsed &p)
{
  if (!priv->caps)
    return true;
  return p.header_caps && p.header_caps != priv->caps &&
         !gst_caps_is_equal (p.header_caps, priv->caps);
}

/* Wraps the message's payload into a buffer with its metadata. Takes @msg
 * when the payload is not empty. */
static GstBuffer *
make_buffer (GstKafkaSrc *self, gstkafka::Message &msg, const Parsed &p)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const rd_kafka_message_t *m = msg.get ();
  const gstkafka::FrameInfo &info = p.info;

  bool discont = priv->discont;
  priv->discont = false;
  if (info.has_session) {
    if (priv->have_session && info.session != priv->session) {
      GST_INFO_OBJECT (self, "new producer session at offset %" G_GINT64_FORMAT,
          m->offset);
      discont = true;
    } else if (priv->have_session && info.has_seq &&
               info.seq != priv->seq + 1 && priv->run.key.empty ()) {
      /* (Not with a key: a copy of a topic, kafkasrc ! kafkasink, numbers
       * every key's messages in one session, so one key's have gaps.) */
      GST_INFO_OBJECT (self,
          "sequence gap at offset %" G_GINT64_FORMAT ": %" G_GUINT64_FORMAT
          " after %" G_GUINT64_FORMAT,
          m->offset, info.seq, priv->seq);
      discont = true;
    }
    priv->have_session = true;
    priv->session = info.session;
    if (info.has_seq)
      priv->seq = info.seq;
  }

  if (G_UNLIKELY (priv->base_ts < 0)) {
    gint64 ts = rd_kafka_message_timestamp (m, nullptr);
    if (ts >= 0)
      priv->base_ts = ts;
  }

  /* Zero copy: the buffer owns the message from here on. */
  GstBuffer *buf;
  if (m->len > 0) {
    buf = gst_buffer_new_wrapped_full (static_cast<GstMemoryFlags> (0),
        m->payload, m->len, 0, m->len,
        hold_message (msg.get (), priv->consumer), wrapped_message_free);
    GST_LOG_OBJECT (self,
        "partition %d offset %" G_GINT64_FORMAT ": buffer %p "
        "wraps payload %p (%" G_GSIZE_FORMAT " bytes)",
        m->partition, m->offset, buf, m->payload, m->len);
  } else {
    buf = gst_buffer_new ();
  }

  if (info.has_flags)
    GST_BUFFER_FLAGS (buf) = info.flags & GST_KAFKA_BUFFER_FLAGS_MASK;
  set_timestamps (self, buf, m, info, discont);
  if (priv->run.add_reference_timestamp_meta) {
    gint64 kafka_ts = rd_kafka_message_timestamp (m, nullptr);
    if (kafka_ts >= 0)
      gst_buffer_add_reference_timestamp_meta (buf, priv->unix_caps,
          GstClockTime (kafka_ts) * GST_MSECOND, GST_CLOCK_TIME_NONE);
  }
  if (priv->run.add_kafka_meta)
    gstkafka::kafka_meta_add (buf, priv->run.topic.c_str (), m);
  if (discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  GST_BUFFER_OFFSET (buf) = m->offset;
  GST_BUFFER_OFFSET_END (buf) = m->offset + 1;
  if (m->len > 0)
    msg.release ();
  return buf;
}

/* The buffers one create() hands out: one buffer, or a list of them. */
struct Output
{
  GstBuffer *first = nullptr;
  GstBufferList *list = nullptr;
  guint n = 0;
  guint64 bytes = 0;

  void add (GstBuffer *buf, guint hint)
  {
    bytes += gst_buffer_get_size (buf);
    if (n++ == 0) {
      first = buf;
      return;
    }
    if (!list) {
      list = gst_buffer_list_new_sized (hint + 1);
      gst_buffer_list_add (list, first);
    }
    gst_buffer_list_add (list, buf);
  }
  void clear ()
  {
    if (list)
      gst_buffer_list_unref (list);
    else if (first)
      gst_buffer_unref (first);
    first = nullptr;
    list = nullptr;
    n = 0;
  }
};

/* The first message of a partition that resumed at the group's committed
 * offset: when it comes later than that offset because retention deleted
 * the messages in between (the partition's log now starts after the
 * offset), says which offsets a viewer of this group never saw. A gap that
 * the log still covers (compaction, transaction markers) is no loss. */
static void
check_resumed (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  GstKafkaSrcPrivate *priv = self->priv;
  auto it = priv->parts.find (m->partition);
  if (it == priv->parts.end () || it->second.resume_from < 0) {
    priv->resuming = std::any_of (priv->parts.begin (), priv->parts.end (),
        [] (const auto &ps) { return ps.second.resume_from >= 0; });
    return;
  }
  gint64 from = it->second.resume_from;
  it->second.resume_from = -1;
  if (m->offset <= from)
    return;
  int64_t lo = -1, hi = -1;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets (priv->rk,
      priv->run.topic.c_str (), m->partition, &lo, &hi,
      LIST_OFFSETS_TIMEOUT_MS);
  if (err || lo <= from)
    return;
  GST_ELEMENT_WARNING (self, RESOURCE, READ,
      ("Kafka topic '%s' partition %d: the topic's retention deleted "
       "offsets %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT " before group "
       "'%s' read them; resuming at offset %" G_GINT64_FORMAT,
          priv->run.topic.c_str (), m->partition, from, gint64 (lo) - 1,
          priv->run.group.c_str (), m->offset),
      ("the partition's log starts at offset %" G_GINT64_FORMAT
       "; retention.ms and retention.bytes of the topic decide how long "
       "messages stay",
          gint64 (lo)));
}

/* A message with an error code: an event of the consumer. */
static GstFlowReturn
handle_consumer_event (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  GstKafkaSrcPrivate *priv = self->priv;
  std::string detail = gstkafka::err_text (m->err) + ": " +
                       rd_kafka_message_errstr (m);

  switch (m->err) {
  case RD_KAFKA_RESP_ERR__PARTITION_EOF: {
    GST_DEBUG_OBJECT (self, "partition %d: end at offset %" G_GINT64_FORMAT,
        m->partition, m->offset);
    /* Nothing left after the group's offset, maybe as retention took it. */
    if (G_UNLIKELY (priv->resuming))
      check_resumed (self, m);
    auto it = priv->parts.find (m->partition);
    if (it != priv->parts.end ()) {
      it->second.at_eof = true;
      if (priv->run.stop_at == GST_KAFKA_SRC_STOP_AT_END)
        it->second.done = true;
    }
    /* A live viewer of a quiet topic: nothing of its key anywhere. */
    if (G_UNLIKELY (!priv->run.key.empty ()) &&
        std::all_of (priv->parts.begin (), priv->parts.end (),
            [] (const auto &ps) { return ps.second.at_eof; }))
      warn_no_key (self, " up to the end of the topic");
    clear_trouble (self);
    update_lag (self, true);
    return GST_FLOW_OK;
  }
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    note_topic_trouble (self, detail);
    return GST_FLOW_OK;
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Not allowed to read Kafka topic '%s'", priv->run.topic.c_str ()),
        ("%s", detail.c_str ()));
    return GST_FLOW_ERROR;
  case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("The pipeline did not read Kafka topic '%s' for "
         "max.poll.interval.ms: the consumer left its group and rejoins",
            priv->run.topic.c_str ()),
        ("%s", detail.c_str ()));
    return GST_FLOW_OK;
  default:
    if (rd_kafka_fatal_error (priv->rk, nullptr, 0)) {
      GST_ELEMENT_ERROR (self, RESOURCE, READ,
          ("Kafka consumer failed for topic '%s'", priv->run.topic.c_str ()),
          ("%s", detail.c_str ()));
      return GST_FLOW_ERROR;
    }
    GST_WARNING_OBJECT (self, "partition %d: %s", m->partition,
        detail.c_str ());
    return GST_FLOW_OK;
  }
}

/* Whether every partition reached its stop-at limit. */
static bool
all_done (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const Run &run = priv->run;

  if (G_LIKELY (run.stop_at == GST_KAFKA_SRC_STOP_AT_NEVER) ||
      priv->parts.empty ())
    return false;
  gint64 now_ms = run.stop_at == GST_KAFKA_SRC_STOP_AT_TIMESTAMP
                      ? g_get_real_time () / 1000
                      : 0;
  for (auto &it : priv->parts) {
    const PartitionState &ps = it.second;
    if (ps.done)
      continue;
    if (run.stop_at == GST_KAFKA_SRC_STOP_AT_TIMESTAMP && ps.at_eof &&
        now_ms >= run.stop_time)
      continue;
    return false;
  }
  return true;
}

/* Whether a message lies beyond its partition's stop-at limit. */
static bool
beyond_stop (GstKafkaSrc *self, const rd_kafka_message_t *m)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const Run &run = priv->run;
  auto it = priv->parts.find (m->partition);
  if (it == priv->parts.end ())
    return false;
  PartitionState &ps = it->second;

  ps.at_eof = false;
  if (ps.done)
    return true;
  if (run.stop_at == GST_KAFKA_SRC_STOP_AT_END && ps.end >= 0 &&
      m->offset >= ps.end)
    ps.done = true;
  else if (run.stop_at == GST_KAFKA_SRC_STOP_AT_TIMESTAMP &&
           rd_kafka_message_timestamp (m, nullptr) >= run.stop_time)
    ps.done = true;
  return ps.done;
}

/* Drops the parts of a split buffer that @ps holds, which cannot be
 * joined (@why), with a warning; the next buffer is DISCONT. */
static void
drop_pieces (GstKafkaSrc *self, gint32 partition, PartitionState &ps,
    const char *why)
{
  GstKafkaSrcPrivate *priv = self->priv;
  if (ps.pieces.empty ())
    return;
  GST_ELEMENT_WARNING (self, STREAM, DEMUX,
      ("A buffer of %" G_GUINT64_FORMAT " bytes that kafkasink split into %u "
       "messages in Kafka topic '%s' is incomplete: %s; dropped",
          ps.pieces_size, ps.pieces_count, priv->run.topic.c_str (), why),
      ("partition %d, parts 0 to %" G_GSIZE_FORMAT
       " at offsets %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
          partition, ps.pieces.size () - 1, ps.pieces.front ()->offset,
          ps.pieces.back ()->offset));
  ps.pieces.clear ();
  priv->joining--;
  priv->discont = true;
}

static void
after_message (GstKafkaSrc *self, gint32 partition, gint64 offset)
{
  GstKafkaSrcPrivate *priv = self->priv;
  auto it = priv->parts.find (partition);
  if (it == priv->parts.end ())
    return;
  PartitionState &ps = it->second;
  ps.next = offset + 1;
  if (priv->run.stop_at == GST_KAFKA_SRC_STOP_AT_END && ps.end >= 0 &&
      offset + 1 >= ps.end)
    ps.done = true;
  if (G_UNLIKELY (!ps.pieces.empty ()) &&
      offset - ps.pieces.back ()->offset >= JOIN_WINDOW_MESSAGES) {
    std::string why = "its next part did not come within " +
                      std::to_string (JOIN_WINDOW_MESSAGES) + " messages";
    drop_pieces (self, partition, ps, why.c_str ());
    /* The caller stored this offset short of the first part. */
    defer_store (self, partition, offset + 1);
  }
  update_lag (self, false);
}

static GstFlowReturn
finish (GstKafkaSrc *self)
{
  GstKafkaSrcPrivate *priv = self->priv;
  GST_INFO_OBJECT (self, "end of stream");
  if (!priv->eos && !priv->caps && priv->skipped_for_caps)
    GST_ELEMENT_WARNING (self, STREAM, TYPE_NOT_FOUND,
        ("Reached the end in Kafka topic '%s' without a message that carries "
         "the stream's caps: %" G_GUINT64_FORMAT " messages were skipped; "
         "start earlier, or set the caps property",
            priv->run.topic.c_str (), priv->skipped_for_caps),
        (nullptr));
  if (!priv->eos)
    warn_no_key (self, " up to the end");
  priv->eos = true;
  store_deferred (self);
  update_lag (self, true);
  commit_stored (self, CLOSE_TIMEOUT_MS, true);
  return GST_FLOW_EOS;
}

/* Waits up to @timeout_ms for a message or consumer event, then, with
 * buffer-list, takes what else librdkafka holds already, without waiting,
 * into the batch. */
static void
fill_batch (GstKafkaSrc *self, int timeout_ms)
{
  GstKafkaSrcPrivate *priv = self->priv;
  rd_kafka_t *rk = priv->rk;

  priv->batch.clear ();
  priv->batch_pos = 0;
  rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, timeout_ms);
  if (!m)
    return;
  priv->batch.push_back (m);
  if (!priv->run.buffer_list)
    return;
  size_t bytes = m->len;
  /* rd_kafka_consume_batch_queue() of librdkafka 2.0 may return messages of
   * partitions sought or taken away meanwhile: poll one by one instead. A
   * rebalance callback run by these polls drops its partitions' messages
   * from the batch. */
  while (priv->batch.size () < BATCH_MAX_MESSAGES && bytes < BATCH_MAX_BYTES) {
    m = rd_kafka_consumer_poll (rk, 0);
    if (!m)
      break;
    priv->batch.push_back (m);
    bytes += m->len;
  }
}

/* Takes the next entry of the batch. */
static rd_kafka_message_t *
batch_take (GstKafkaSrcPrivate *priv)
{
  rd_kafka_message_t *m = priv->batch[priv->batch_pos];
  priv->batch[priv->batch_pos++] = nullptr;
  return m;
}

/* While looking back for the caps (look_back_for_caps()): whether @m, a
 * message before the one that needs them, is there for its caps only; at
 * that one, gives @p the last caps found. */
static bool
read_back (GstKafkaSrc *self, const rd_kafka_message_t *m, Parsed &p)
{
  GstKafkaSrcPrivate *priv = self->priv;
  auto it = priv->parts.find (m->partition);
  if (it == priv->parts.end () || it->second.lookback_until < 0) {
    /* Maybe no partition looks back any more (taken away, sought). */
    priv->looking_back = std::any_of (priv->parts.begin (), priv->parts.end (),
        [] (const auto &ps) { return ps.second.lookback_until >= 0; });
    return false;
  }
  PartitionState &ps = it->second;
  if (m->offset < ps.lookback_until) {
    if (p.info.caps)
      ps.lookback_caps.assign (p.info.caps, p.info.caps_len);
    return true;
  }
  ps.lookback_until = -1;
  if (!p.info.caps && !ps.lookback_caps.empty () && !priv->caps) {
    GST_INFO_OBJECT (self,
        "partition %d offset %" G_GINT64_FORMAT ": caps %s, from an "
        "earlier message",
        m->partition, m->offset, ps.lookback_caps.c_str ());
    Parsed earlier;
    earlier.info.caps = ps.lookback_caps.c_str ();
    earlier.info.caps_len = ps.lookback_caps.size ();
    parse_caps (self, earlier);
    p.header_caps = earlier.header_caps;
  }
  ps.lookback_caps.clear ();
  return false;
}

static bool
has_key (const rd_kafka_message_t *m, const std::string &key)
{
  return m->key && m->key_len == key.size () &&
         !memcmp (m->key, key.data (), key.size ());
}

/* Whether @offset of @partition is read again for the caps only (see
 * read_back()): its position was passed before. */
static bool
re_reading (GstKafkaSrcPrivate *priv, gint32 partition, gint64 offset)
{
  if (G_LIKELY (!priv->looking_back))
    return false;
  auto it = priv->parts.find (partition);
  return it != priv->parts.end () && offset < it->second.lookback_until;
}

/* What join_part() did with a part of a split buffer. */
enum class Joined
{
  /* Taken into the pieces, or passed over. */
  TAKEN,
  /* The last part of a buffer with other caps: handed out after the
   * buffers before it were pushed. */
  WAIT,
  /* The last part: the buffer's messages are in msg and rest. */
  WHOLE,
};

/* @m, the next message of the batch, is a part of a buffer that kafkasink
 * split into several messages (p.info.frag_count): takes it into its
 * partition's pieces, or passes over it when it cannot be joined (the
 * viewer started after the buffer's first part). Returns the partition's
 * state, with @m left in the batch, when @m is the last part and the
 * pieces hold all the others. */
static PartitionState *
collect_part (GstKafkaSrc *self, rd_kafka_message_t *m, const Parsed &p)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const gstkafka::FrameInfo &info = p.info;
  gint32 partition = m->partition;
  gint64 offset = m->offset;
  auto it = priv->parts.find (partition);
  if (it == priv->parts.end ()) {
    gstkafka::Message gone (batch_take (priv));
    return nullptr;
  }
  PartitionState &ps = it->second;

  if (!ps.pieces.empty () &&
      (info.frag_index != ps.pieces.size () ||
          info.frag_count != ps.pieces_count ||
          info.frag_size != ps.pieces_size ||
          info.session != ps.pieces_session || info.seq != ps.pieces_seq)) {
    std::string why = "offset " + std::to_string (offset) + " is part " +
                      std::to_string (info.frag_index) + " of " +
                      std::to_string (info.frag_count) +
                      " of another buffer, not part " +
                      std::to_string (ps.pieces.size ());
    drop_pieces (self, partition, ps, why.c_str ());
  }
  if (ps.pieces.empty () && info.frag_index > 0) {
    GST_INFO_OBJECT (self,
        "partition %d offset %" G_GINT64_FORMAT ": part %u of %u of a buffer "
        "whose first part was not read: skipped",
        partition, offset, info.frag_index, info.frag_count);
    gstkafka::Message orphan (batch_take (priv));
    defer_store (self, partition, offset + 1);
    after_message (self, partition, offset);
    return nullptr;
  }

  if (info.frag_index == 0) {
    ps.pieces_session = info.session;
    ps.pieces_seq = info.seq;
    ps.pieces_count = info.frag_count;
    ps.pieces_size = info.frag_size;
    ps.pieces_bytes = 0;
    ps.pieces_caps.clear ();
    if (p.header_caps && !info.caps) {
      g_autofree gchar *caps = gst_caps_to_string (p.header_caps);
      ps.pieces_caps = caps;
    }
    priv->joining++;
  }
  if (info.frag_index + 1 < info.frag_count) {
    ps.pieces_bytes += m->len;
    ps.pieces.emplace_back (batch_take (priv));
    after_message (self, partition, offset);
    return nullptr;
  }
  if (ps.pieces_bytes + m->len != ps.pieces_size) {
    std::string why = "its parts hold " +
                      std::to_string (ps.pieces_bytes + m->len) + " bytes";
    drop_pieces (self, partition, ps, why.c_str ());
    gstkafka::Message last (batch_take (priv));
    defer_store (self, partition, offset + 1);
    after_message (self, partition, offset);
    return nullptr;
  }
  return &ps;
}

/* hand_out() of a part of a split buffer, @m, the next message of the
 * batch, with its headers @p: collects it (collect_part()) and, at the
 * last part, takes the buffer's messages out into @msg (the first part)
 * and @rest, and @p describes the buffer (the first part's headers); unless
 * the buffer has other caps than those pushed last and @wait_for_caps. */
G_GNUC_NO_INLINE static Joined
join_part (GstKafkaSrc *self, rd_kafka_message_t *m, Parsed &p,
    bool wait_for_caps, gstkafka::Message &msg,
    std::vector<gstkafka::Message> &rest)
{
  GstKafkaSrcPrivate *priv = self->priv;
  PartitionState *ps = collect_part (self, m, p);
  if (!ps)
    return Joined::TAKEN;
  p = Parsed ();
  parse_message (self, ps->pieces.front ().get (), p);
  if (!p.header_caps && !ps->pieces_caps.empty ()) {
    Parsed earlier;
    earlier.info.caps = ps->pieces_caps.c_str ();
    earlier.info.caps_len = ps->pieces_caps.size ();
    parse_caps (self, earlier);
    p.header_caps = earlier.header_caps;
  }
  if (wait_for_caps && changes_caps (priv, p))
    return Joined::WAIT;
  ps->pieces.emplace_back (batch_take (priv));
  rest.swap (ps->pieces);
  priv->joining--;
  msg = std::move (rest.front ());
  rest.erase (rest.begin ());
  return Joined::WHOLE;
}

/* Appends the payloads of @rest, the parts after the first of a split
 * buffer, to @buf, which wraps the first: zero copy, each memory owns its
 * message. GStreamer merges (copies) the memories of a buffer of more than
 * gst_buffer_get_max_memory() of them. */
G_GNUC_NO_INLINE static void
join_buffer (GstKafkaSrc *self, GstBuffer *buf,
    std::vector<gstkafka::Message> &rest)
{
  GstKafkaSrcPrivate *priv = self->priv;
  for (gstkafka::Message &piece : rest) {
    rd_kafka_message_t *m = piece.get ();
    gst_buffer_append_memory (buf,
        gst_memory_new_wrapped (static_cast<GstMemoryFlags> (0), m->payload,
            m->len, 0, m->len, hold_message (m, priv->consumer),
            wrapped_message_free));
    GST_BUFFER_OFFSET_END (buf) = m->offset + 1;
    piece.release ();
  }
  rest.clear ();
}

/* Turns the batch's messages into buffers, in order, until the batch is
 * empty or a message has to wait until the buffers before it were pushed:
 * one with other caps, an end-of-stream marker, a consumer event other than
 * a partition's end. Sets @eos at a marker that ends the stream. */
static GstFlowReturn
hand_out (GstKafkaSrc *self, Output &out, bool &eos)
{
  GstKafkaSrcPrivate *priv = self->priv;
  const Run &run = priv->run;

  while (priv->batch_pos < priv->batch.size ()) {
    rd_kafka_message_t *m = priv->batch[priv->batch_pos];
    if (!m) {
      priv->batch_pos++;
      continue;
    }
    if (m->err) {
      if (out.n > 0 && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return GST_FLOW_OK;
      gstkafka::Message event (batch_take (priv));
      GstFlowReturn ret = handle_consumer_event (self, event.get ());
      if (ret != GST_FLOW_OK)
        return ret;
      continue;
    }

    clear_trouble (self);
    /* A topic created again reads from its start: not this message. */
    if (!priv->batch[priv->batch_pos])
      continue;
    if (G_UNLIKELY (priv->resuming))
      check_resumed (self, m);
    if (beyond_stop (self, m)) {
      GST_DEBUG_OBJECT (self,
          "partition %d offset %" G_GINT64_FORMAT " is past stop-at",
          m->partition, m->offset);
      gstkafka::Message skipped (batch_take (priv));
      continue;
    }
    if (G_UNLIKELY (!run.key.empty ())) {
      if (!has_key (m, run.key)) {
        gint32 partition = m->partition;
        gint64 offset = m->offset;
        if (!re_reading (priv, partition, offset)) {
          note_other_key (self, m);
          defer_store (self, partition, offset + 1);
          after_message (self, partition, offset);
        }
        gstkafka::Message other (batch_take (priv));
        continue;
      }
      priv->key_seen = true;
    }

    Parsed p;
    parse_message (self, m, p);
    if (G_UNLIKELY (priv->looking_back) && read_back (self, m, p)) {
      gstkafka::Message seen (batch_take (priv));
      continue;
    }
    bool skip = !p.ok && run.malformed_policy == GST_KAFKA_SRC_MALFORMED_SKIP;
    bool ends = !skip && p.info.eos && run.handle_eos_marker &&
                at_partition_end (self, m);
    gint32 partition = m->partition;
    gint64 offset = m->offset;
    gstkafka::Message msg;
    std::vector<gstkafka::Message> rest;
    if (G_UNLIKELY (p.info.frag_count) && !skip && !p.info.eos) {
      Joined joined = join_part (self, m, p, out.n > 0, msg, rest);
      if (joined == Joined::TAKEN)
        continue;
      if (joined == Joined::WAIT)
        return GST_FLOW_OK;
      m = msg.get ();
    } else {
      if (out.n > 0 &&
          (ends || (!skip && !p.info.eos && changes_caps (priv, p))))
        return GST_FLOW_OK;
      msg.reset (batch_take (priv));
    }
    if (!p.ok)
      warn_malformed (self, m, p.problems);
    if (ends) {
      GST_INFO_OBJECT (self,
          "end-of-stream marker at partition %d offset %" G_GINT64_FORMAT,
          partition, offset);
      /* Nothing handed out before it: finish() stores it at once. */
      defer_store (self, partition, offset + 1);
      after_message (self, partition, offset);
      eos = true;
      return GST_FLOW_OK;
    }
    if (skip || p.info.eos) {
      if (p.info.eos && !skip) {
        GST_DEBUG_OBJECT (self,
            "end-of-stream marker at offset %" G_GINT64_FORMAT
            " followed by more messages: skipped",
            offset);
        priv->discont = true;
      }
      defer_store (self, partition, offset + 1);
      after_message (self, partition, offset);
      continue;
    }

    GstFlowReturn ret = update_caps (self, m, p.info, p.header_caps);
    if (ret == FLOW_LOOK_BACK) {
      /* Read again after the messages before it: not stored. */
      if (look_back_for_caps (self, m))
        continue;
      note_skipped_for_caps (self, m);
      ret = FLOW_WAIT_FOR_CAPS;
    }
    if (ret == FLOW_WAIT_FOR_CAPS) {
      defer_store (self, partition, offset + 1);
      after_message (self, partition, offset);
      continue;
    }
    if (ret != GST_FLOW_OK)
      return ret;
    GstBuffer *buf = make_buffer (self, msg, p);
    if (G_UNLIKELY (!rest.empty ()))
      join_buffer (self, buf, rest);
    out.add (buf, priv->batch.size () - priv->batch_pos);
    defer_store (self, partition, offset + 1);
    after_message (self, partition, offset);
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_kafka_src_create (GstPushSrc *psrc, GstBuffer **outbuf)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (psrc);
  GstKafkaSrcPrivate *priv = self->priv;

  for (;;) {
    /* GstBaseSrc calls create() again only after pushing the buffers it
     * returned last. */
    store_deferred (self);
    if (priv->flushing.load ())
      return GST_FLOW_FLUSHING;
    if (!priv->auth_error.empty ()) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
          ("The Kafka broker refused the credentials for topic '%s' (SASL "
           "authentication failed): check sasl.username and sasl.password "
           "in config or config-file",
              priv->run.topic.c_str ()),
          ("%s", priv->auth_error.c_str ()));
      return GST_FLOW_ERROR;
    }
    if (!priv->fatal.empty ()) {
      GST_ELEMENT_ERROR (self, RESOURCE, READ,
          ("Kafka consumer failed for topic '%s'", priv->run.topic.c_str ()),
          ("%s", priv->fatal.c_str ()));
      return GST_FLOW_ERROR;
    }
    if (priv->eos || all_done (self))
      return finish (self);
    GstFlowReturn ret = check_trouble (self);
    if (ret != GST_FLOW_OK)
      return ret;

    if (priv->batch_pos >= priv->batch.size ()) {
      int timeout = POLL_SLICE_MS;
      if (!priv->run.subscribe && !priv->assigned && !assign_partitions (self))
        timeout = RETRY_INTERVAL_MS;
      if (priv->flushing.load ())
        return GST_FLOW_FLUSHING;
      fill_batch (self, timeout);
    }

    Output out;
    bool eos = false;
    ret = hand_out (self, out, eos);
    if (ret != GST_FLOW_OK) {
      out.clear ();
      return ret;
    }
    if (eos)
      return finish (self);
    if (out.n == 0)
      continue;

    priv->messages += out.n;
    priv->bytes += out.bytes;
    if (out.list)
      gst_base_src_submit_buffer_list (GST_BASE_SRC (self), out.list);
    else
      *outbuf = out.first;
    return GST_FLOW_OK;
  }
}

/* --- Negotiation, queries, seeking --------------------------------------- */

/* Caps come from the messages: nothing to negotiate before the first. */
static gboolean
gst_kafka_src_negotiate (GstBaseSrc *)
{
  return TRUE;
}

static GstCaps *
gst_kafka_src_get_caps (GstBaseSrc *bsrc, GstCaps *filter)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);
  GstCaps *caps = gst_pad_get_current_caps (GST_BASE_SRC_PAD (bsrc));

  if (!caps) {
    GST_OBJECT_LOCK (self);
    if (self->priv->settings.caps)
      caps = gst_caps_ref (self->priv->settings.caps);
    GST_OBJECT_UNLOCK (self);
  }
  if (!caps)
    caps = gst_caps_new_any ();
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, caps,
        GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = tmp;
  }
  return caps;
}

static gboolean
gst_kafka_src_query (GstBaseSrc *bsrc, GstQuery *query)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    gboolean live = gst_base_src_is_live (bsrc);
    GST_OBJECT_LOCK (self);
    GstClockTime latency = self->priv->settings.latency * GST_MSECOND;
    GST_OBJECT_UNLOCK (self);
    gst_query_set_latency (query, live, live ? latency : 0,
        GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
}

static gboolean
gst_kafka_src_is_seekable (GstBaseSrc *)
{
  return TRUE;
}

/* Refuses what Kafka cannot do before GstBaseSrc flushes anything. */
static gboolean
gst_kafka_src_event (GstBaseSrc *bsrc, GstEvent *event)
{
  if (GST_EVENT_TYPE (event) == GST_EVENT_SEEK) {
    gdouble rate;
    GstFormat format;
    gst_event_parse_seek (event, &rate, &format, nullptr, nullptr, nullptr,
        nullptr, nullptr);
    if (format != GST_FORMAT_TIME || rate <= 0.0) {
      GST_DEBUG_OBJECT (bsrc, "only forward TIME seeks are supported");
      return FALSE;
    }
  }
  return GST_BASE_SRC_CLASS (parent_class)->event (bsrc, event);
}

static gboolean
gst_kafka_src_do_seek (GstBaseSrc *bsrc, GstSegment *segment)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (bsrc);
  GstKafkaSrcPrivate *priv = self->priv;

  if (segment->format != GST_FORMAT_TIME)
    return FALSE;

  /* Whether the last buffers got through the flush is unknown: they are
   * not stored, so a restart delivers them again rather than lose them. */
  priv->to_store.clear ();
  priv->need_anchor = true;
  priv->seeked = true;
  priv->seek_pos = segment->start;
  priv->discont = true;
  if (!priv->rk || priv->base_ts < 0)
    return TRUE;

  rd_kafka_topic_partition_list_t *assignment = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_assignment (priv->rk, &assignment);
  gstkafka::TopicPartitionList list (assignment);
  if (err || !list || list->cnt == 0)
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;

  gint64 target = priv->base_ts + gint64 (segment->start / GST_MSECOND);
  for (int i = 0; i < list->cnt; i++)
    list->elems[i].offset = target;
  err = rd_kafka_offsets_for_times (priv->rk, list.get (),
      LIST_OFFSETS_TIMEOUT_MS);
  /* GstBaseSrc has flushed already: a failure must not stop the stream
   * (it would go on without a segment), it goes on where it was. */
  if (err) {
    GST_ELEMENT_WARNING (self, RESOURCE, SEEK,
        ("Could not look up the Kafka offsets of the seek position: "
         "playing on from the current position"),
        ("%s", gstkafka::err_text (err).c_str ()));
    return TRUE;
  }
  gstkafka::TopicPartitionList seek (
      rd_kafka_topic_partition_list_new (list->cnt));
  for (int i = 0; i < list->cnt; i++) {
    rd_kafka_topic_partition_t *e = &list->elems[i];
    if (e->err) {
      GST_WARNING_OBJECT (self, "partition %d: no offset for the seek: %s",
          e->partition, gstkafka::err_text (e->err).c_str ());
      continue;
    }
    /* No message that late: wait for the next one. */
    if (e->offset < 0)
      e->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_topic_partition_list_add (seek.get (), e->topic, e->partition)
        ->offset = e->offset;
    GST_DEBUG_OBJECT (self,
        "seek %" GST_TIME_FORMAT ": partition %d to %" G_GINT64_FORMAT,
        GST_TIME_ARGS (segment->start), e->partition, e->offset);
    auto it = priv->parts.find (e->partition);
    if (it != priv->parts.end ()) {
      it->second.done = false;
      it->second.at_eof = false;
    }
  }
  /* What was taken from librdkafka before the seek is not wanted any
   * more; a partition that could not seek plays on with it. */
  gstkafka::Error error (
      seek->cnt ? seek_partitions (self, seek.get ()) : nullptr);
  if (error)
    GST_ELEMENT_WARNING (self, RESOURCE, SEEK,
        ("Kafka seek failed: playing on from the current position"),
        ("%s", rd_kafka_error_string (error.get ())));
  priv->eos = false;
  return TRUE;
}

/* --- GObject ------------------------------------------------------------- */

static void
gst_kafka_src_finalize (GObject *object)
{
  GstKafkaSrc *self = GST_KAFKA_SRC (object);

  gst_caps_unref (self->priv->unix_caps);
  delete self->priv;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_kafka_src_class_init (GstKafkaSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);
  auto rw = static_cast<GParamFlags> (
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = static_cast<GParamFlags> (
      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  GST_DEBUG_CATEGORY_INIT (gst_kafka_src_debug, "kafkasrc", 0,
      "Apache Kafka consumer source");

  gobject_class->set_property = gst_kafka_src_set_property;
  gobject_class->get_property = gst_kafka_src_get_property;
  gobject_class->finalize = gst_kafka_src_finalize;

  /**
   * GstKafkaSrc:uri:
   *
   * The Kafka topic to read as a URI,
   * `kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?PROPERTY=VALUE&...]`, e.g.
   * `kafka://localhost:9092/my-topic?group-id=view&start-from=latest`. It sets
   * #GstKafkaSrc:brokers (the default ones when no host is given) and
   * #GstKafkaSrc:topic, and each query parameter sets the property of that
   * name; a parameter whose name contains a '.' is a librdkafka setting,
   * applied after #GstKafkaSrc:config. Names and values are percent-decoded.
   * The element is also a URI handler for `kafka://`, so such a URI works
   * wherever GStreamer takes one
   * (`gst-launch-1.0`, `playbin`, `uridecodebin`,
   * gst_element_make_from_uri()). A URI that cannot be applied is reported
   * as an error when the element starts. Secret settings read back as
   * `****`, but players log the URIs they open: keep passwords in
   * #GstKafkaSrc:config-file, not in a URI.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_URI,
      g_param_spec_string ("uri", "URI",
          "kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?PROPERTY=VALUE&...]: sets "
          "brokers, topic and the properties named in the query",
          nullptr, rw));

  /**
   * GstKafkaSrc:brokers:
   *
   * Bootstrap servers, "host:port[,host:port...]" (librdkafka's
   * `bootstrap.servers`). A `bootstrap.servers` in #GstKafkaSrc:config-file
   * or #GstKafkaSrc:config takes precedence.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_BROKERS,
      g_param_spec_string ("brokers", "Brokers",
          "Kafka bootstrap servers, host:port[,host:port...]",
          GST_KAFKA_DEFAULT_BROKERS, rw));

  /**
   * GstKafkaSrc:topic:
   *
   * The topic to read. Required. If it does not exist yet, kafkasrc posts a
   * warning and waits for it.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TOPIC,
      g_param_spec_string ("topic", "Topic", "Kafka topic to read",
          DEFAULT_TOPIC, rw));

  /**
   * GstKafkaSrc:group-id:
   *
   * Consumer group. Members of one group share the topic's partitions and
   * the group keeps the committed offsets, so a restarted element resumes
   * where it stopped. Unset: a private group that reads every partition and
   * commits nothing.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_GROUP_ID,
      g_param_spec_string ("group-id", "Group id",
          "Kafka consumer group (committed offsets, shared partitions); "
          "unset: a private group that commits nothing",
          DEFAULT_GROUP_ID, rw));

  /**
   * GstKafkaSrc:partition:
   *
   * Read only this partition (assigned directly, without group
   * membership; offsets are still committed to #GstKafkaSrc:group-id when
   * it is set). -1: every partition, or the group's share of them.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PARTITION,
      g_param_spec_int ("partition", "Partition",
          "Partition to read, -1 for all (or the group's share)", -1,
          G_MAXINT32, DEFAULT_PARTITION, rw));

  /**
   * GstKafkaSrc:key:
   *
   * Deliver only the messages with this key, as written by kafkasink's
   * #GstKafkaSink:key: several streams (cameras, say) share one topic, each
   * under its own key, and a viewer plays one of them. The other messages
   * are read and passed over (their offsets are committed like any other),
   * so the viewer still reads every partition it has; kafkasink's keys keep
   * a stream in one partition, in order. An end-of-stream marker ends the
   * stream only when no message of any key follows it. Unset or empty:
   * every message.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_KEY,
      g_param_spec_string ("key", "Key",
          "Deliver only the messages with this Kafka key (unset: every "
          "message)",
          nullptr, rw));

  /**
   * GstKafkaSrc:config:
   *
   * librdkafka settings as a structure whose name is ignored, e.g.
   * `"kafka, fetch.wait.max.ms=100, security.protocol=SASL_SSL"`. Applied
   * after #GstKafkaSrc:config-file. An unknown key or a bad value fails the
   * change to PAUSED with an error naming it. Secret values read back as
   * `****`.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CONFIG,
      g_param_spec_boxed ("config", "Config",
          "librdkafka settings as a structure, e.g. \"kafka, "
          "fetch.wait.max.ms=100\"; override config-file and the defaults",
          GST_TYPE_STRUCTURE, rw));

  /**
   * GstKafkaSrc:config-file:
   *
   * A librdkafka/Java-style properties file (`key=value` lines, `#`
   * comments, like `kcat -F`), applied before #GstKafkaSrc:config.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CONFIG_FILE,
      g_param_spec_string ("config-file", "Config file",
          "Path of a librdkafka/Java-style properties file (key=value lines, "
          "like kcat -F)",
          nullptr, rw));

  /**
   * GstKafkaSrc:start-from:
   *
   * Where to start reading each partition the first time the element gets
   * it. `committed` (default) resumes after the group's committed offset
   * and starts at the earliest message when the group has none (or
   * without a group), so a viewer started after the producer finished sees
   * the whole stream. With a group, partitions that come back to the
   * element in a later rebalance always resume from the committed offset.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_START_FROM,
      g_param_spec_enum ("start-from", "Start from",
          "Where to start reading each partition",
          GST_TYPE_KAFKA_SRC_START_FROM, DEFAULT_START_FROM, rw));

  /**
   * GstKafkaSrc:start-offset:
   *
   * With `start-from=offset`: the offset to start at in every partition;
   * negative: that many messages before the end. An offset that retention
   * deleted starts at the oldest message still stored, one past the end
   * with the next message produced, each with a warning.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_START_OFFSET,
      g_param_spec_int64 ("start-offset", "Start offset",
          "With start-from=offset: the offset to start at; negative: that "
          "many messages before the end",
          G_MININT64 / 2, G_MAXINT64, DEFAULT_START_OFFSET, rw));

  /**
   * GstKafkaSrc:start-time:
   *
   * With `start-from=timestamp`: milliseconds since the epoch; each
   * partition starts at its first message with a timestamp at or after it
   * (Kafka's offsetsForTimes), or with the next message when there is none.
   * A time in seconds (before 1973 in milliseconds) fails the start.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_START_TIME,
      g_param_spec_int64 ("start-time", "Start time",
          "With start-from=timestamp: milliseconds since the epoch", 0,
          G_MAXINT64, DEFAULT_START_TIME, rw));

  /**
   * GstKafkaSrc:stop-at:
   *
   * `never` (default): wait for new messages forever. `end`: EOS once every
   * partition reached the end offset it had when the element got it (for
   * replays of a finished recording). `timestamp`: EOS once every partition
   * reached a message at or after #GstKafkaSrc:stop-time (not delivered),
   * or its end when the wall clock is past stop-time.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STOP_AT,
      g_param_spec_enum ("stop-at", "Stop at", "When to send EOS on its own",
          GST_TYPE_KAFKA_SRC_STOP_AT, DEFAULT_STOP_AT, rw));

  /**
   * GstKafkaSrc:stop-time:
   *
   * With `stop-at=timestamp`: milliseconds since the epoch. Required then;
   * a time in seconds (before 1973 in milliseconds), or one not after
   * #GstKafkaSrc:start-time, fails the start with an error that says so.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STOP_TIME,
      g_param_spec_int64 ("stop-time", "Stop time",
          "With stop-at=timestamp: milliseconds since the epoch", 0, G_MAXINT64,
          DEFAULT_STOP_TIME, rw));

  /**
   * GstKafkaSrc:caps:
   *
   * Caps of messages that carry no gst.caps header (messages of other
   * clients). Unset: the caps GStreamer's typefinders recognise in the
   * first such payload (image/png for PNG files, ...).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CAPS,
      g_param_spec_boxed ("caps", "Caps",
          "Caps of messages without a gst.caps header (unset: typefind the "
          "first payload)",
          GST_TYPE_CAPS, rw));

  /**
   * GstKafkaSrc:is-live:
   *
   * Live (default): buffers are timestamped against the running time at
   * which the first one arrived, and the element produces nothing in
   * PAUSED. Not live: timestamps start at 0 and the pipeline runs as fast as
   * the sinks allow (with sync=false, as fast as Kafka delivers).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean ("is-live", "Is live", "Act as a live source",
          DEFAULT_IS_LIVE, rw));

  /**
   * GstKafkaSrc:handle-eos-marker:
   *
   * Send EOS at a producer's end-of-stream marker message (kafkasink
   * `eos-marker=true`) when it is the last message of its partition. A
   * marker followed by more messages (a later producer run) is skipped and
   * the next buffer is DISCONT. FALSE: skip every marker and keep waiting.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_HANDLE_EOS_MARKER,
      g_param_spec_boolean ("handle-eos-marker", "Handle EOS marker",
          "Send EOS at a producer's end-of-stream marker when nothing "
          "follows it in the topic",
          DEFAULT_HANDLE_EOS_MARKER, rw));

  /**
   * GstKafkaSrc:malformed-policy:
   *
   * What to do with a message whose gst.* headers are malformed (caps that
   * do not parse, a timestamp of the wrong size, a repeated header). A
   * warning naming the topic, partition, offset and problem is posted for
   * each kind of problem either way.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MALFORMED_POLICY,
      g_param_spec_enum ("malformed-policy", "Malformed policy",
          "What to do with messages whose gst.* headers are malformed",
          GST_TYPE_KAFKA_SRC_MALFORMED_POLICY, DEFAULT_MALFORMED_POLICY, rw));

  /**
   * GstKafkaSrc:timeout:
   *
   * Seconds of unreachable brokers or missing topic after which kafkasrc
   * posts an error instead of waiting on; 0 (default): wait forever.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TIMEOUT,
      g_param_spec_uint ("timeout", "Timeout",
          "Seconds without brokers or topic before an error (0 = wait "
          "forever)",
          0, G_MAXUINT, DEFAULT_TIMEOUT, rw));

  /**
   * GstKafkaSrc:latency:
   *
   * Latency reported when live, in milliseconds: how much later than the
   * first buffer's arrival a later buffer may arrive and still be in time
   * for a synchronising sink.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency",
          "Latency when live, in milliseconds (absorbs the network's jitter)",
          0, G_MAXUINT, DEFAULT_LATENCY, rw));

  /**
   * GstKafkaSrc:stats-interval:
   *
   * Post a `kafkasrc-stats` element message every that many milliseconds
   * (librdkafka's `statistics.interval.ms`), with the fields of
   * #GstKafkaSrc:stats and librdkafka's statistics JSON in `librdkafka`.
   * 0 (default): none.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_uint ("stats-interval", "Statistics interval",
          "Milliseconds between kafkasrc-stats bus messages (0 = none)", 0,
          G_MAXINT, DEFAULT_STATS_INTERVAL, rw));

  /**
   * GstKafkaSrc:buffer-list:
   *
   * Push the messages that are waiting in librdkafka at once (up to 8, or
   * 1 MiB) as one #GstBufferList instead of one buffer at a time: for
   * small messages it saves a good part of the per-buffer cost of
   * GStreamer's push (about 13 % of the CPU per 1 KB message into a
   * fakesink). It never waits for more messages to fill a list. Pad probes
   * downstream then see %GST_PAD_PROBE_TYPE_BUFFER_LIST rather than
   * %GST_PAD_PROBE_TYPE_BUFFER.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_BUFFER_LIST,
      g_param_spec_boolean ("buffer-list", "Buffer list",
          "Push the messages already waiting (up to 8, or 1 MiB) as one "
          "buffer list: less overhead per small message",
          DEFAULT_BUFFER_LIST, rw));

  /**
   * GstKafkaSrc:add-reference-timestamp-meta:
   *
   * Give every buffer its message's Kafka timestamp, in nanoseconds since
   * the epoch, as a #GstReferenceTimestampMeta with the caps
   * `timestamp/x-unix`: when the message was produced (kafkasink sets it
   * from the buffer's running time, or from such a meta), or stored by the
   * broker for a topic with `message.timestamp.type=LogAppendTime`. An
   * application reads it with gst_buffer_get_reference_timestamp_meta();
   * `kafkasrc add-reference-timestamp-meta=true ! kafkasink` copies a topic
   * with its timestamps. Off by default: it costs an allocation per
   * message (about 6 % of the CPU per 1 KB message into a fakesink).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class,
      PROP_ADD_REFERENCE_TIMESTAMP_META,
      g_param_spec_boolean ("add-reference-timestamp-meta",
          "Add reference timestamp meta",
          "Give every buffer its Kafka timestamp as a timestamp/x-unix "
          "reference timestamp meta",
          DEFAULT_ADD_REFERENCE_TIMESTAMP_META, rw));

  /**
   * GstKafkaSrc:add-kafka-meta:
   *
   * Give every buffer a #GstCustomMeta named `GstKafkaMeta` whose structure
   * says where its message came from: `topic` (string), `partition` (int),
   * `offset` (int64), `timestamp` (int64, milliseconds since the epoch, -1
   * when the message has none) and, when the message has a key, `key`
   * (#GBytes). An application reads it with
   * `gst_buffer_get_custom_meta (buffer, "GstKafkaMeta")` and
   * gst_custom_meta_get_structure(), from C or through GObject
   * introspection (Python: `buf.get_custom_meta("GstKafkaMeta")`): one
   * kafkasrc can feed an application that routes messages by key, and
   * kafkasink keeps the key in a copy of the topic. Off by
   * default: it costs a structure per message.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_ADD_KAFKA_META,
      g_param_spec_boolean ("add-kafka-meta", "Add Kafka meta",
          "Give every buffer a GstKafkaMeta custom meta: topic, partition, "
          "offset, timestamp and key of its message",
          DEFAULT_ADD_KAFKA_META, rw));

  /**
   * GstKafkaSrc:messages:
   *
   * Messages delivered downstream since the element started.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MESSAGES,
      g_param_spec_uint64 ("messages", "Messages",
          "Messages delivered since start", 0, G_MAXUINT64, 0, ro));

  /**
   * GstKafkaSrc:bytes:
   *
   * Payload bytes delivered downstream since the element started.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_BYTES,
      g_param_spec_uint64 ("bytes", "Bytes",
          "Payload bytes delivered since start", 0, G_MAXUINT64, 0, ro));

  /**
   * GstKafkaSrc:consumer-lag:
   *
   * Messages between the last delivered one and the end of the assigned
   * partitions, summed; -1 before the first message.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CONSUMER_LAG,
      g_param_spec_int64 ("consumer-lag", "Consumer lag",
          "Messages not yet delivered in the assigned partitions (-1 = "
          "unknown)",
          -1, G_MAXINT64, -1, ro));

  /**
   * GstKafkaSrc:stats:
   *
   * The statistics in one `GstKafkaSrcStats` structure: `messages`,
   * `bytes`, `consumer-lag`.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "messages, bytes and consumer-lag in one structure",
          GST_TYPE_STRUCTURE, ro));

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Kafka source",
      "Source/Network",
      "Reads messages of an Apache Kafka topic as buffers, restoring the "
      "caps and timestamps written by kafkasink",
      "gst-kafka developers");

  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_kafka_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_kafka_src_stop);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_kafka_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_kafka_src_unlock_stop);
  basesrc_class->negotiate = GST_DEBUG_FUNCPTR (gst_kafka_src_negotiate);
  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_kafka_src_get_caps);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_kafka_src_query);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_kafka_src_is_seekable);
  basesrc_class->do_seek = GST_DEBUG_FUNCPTR (gst_kafka_src_do_seek);
  basesrc_class->event = GST_DEBUG_FUNCPTR (gst_kafka_src_event);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_kafka_src_create);

  gstkafka::kafka_meta_register ();
  gst_type_mark_as_plugin_api (GST_TYPE_KAFKA_SRC_START_FROM,
      static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (GST_TYPE_KAFKA_SRC_STOP_AT,
      static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (GST_TYPE_KAFKA_SRC_MALFORMED_POLICY,
      static_cast<GstPluginAPIFlags> (0));
}

static void
gst_kafka_src_init (GstKafkaSrc *self)
{
  self->priv = new GstKafkaSrcPrivate ();
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
  gst_base_src_set_live (GST_BASE_SRC (self), DEFAULT_IS_LIVE);
}
