/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-kafkasink
 * @title: kafkasink
 *
 * Produces every buffer as one message to an Apache Kafka topic, with
 * librdkafka. The message value is exactly the buffer's bytes, so any Kafka
 * client sees a PNG frame as a PNG file; Kafka headers carry the caps,
 * timestamps, flags, a producer session id and a sequence number, from which
 * kafkasrc rebuilds the stream (see docs/message-format.md). The caps travel
 * on the first buffer after a caps change, on a buffer that is not a delta
 * unit when they add at most 1/16 to what was produced since they last
 * travelled and a tenth of a second passed since (every video keyframe, not
 * every small audio packet), and at least once a second (of real time and
 * of the buffers' timestamps), so that a consumer starting in the middle of
 * a topic learns them; a dropped buffer leaves a gap in the sequence
 * numbers.
 *
 * The payload is not copied: librdkafka references the mapped buffer, which
 * kafkasink holds until the broker has acknowledged the message (a few
 * milliseconds normally, up to `message.timeout.ms` when the broker is away;
 * `queue.buffering.max.kbytes` bounds how much). An upstream element with a
 * small buffer pool may need a queue or a copy in front of kafkasink.
 * A buffer list is rendered at once (GstBaseSink prerolls, synchronises and
 * accounts once per list), and each of its buffers is a message of its own.
 * Acknowledgements (delivery reports) are served on a thread of the element;
 * a message that cannot be delivered is an element error naming the topic,
 * the partition and librdkafka's reason. On EOS, and when going to READY,
 * kafkasink waits up to #GstKafkaSink:flush-timeout for outstanding messages
 * and reports whatever could not be delivered.
 *
 * A buffer larger than the topic takes (its `max.message.bytes`, which
 * kafkasink asks the broker for at start; Kafka's default is about 1 MiB)
 * goes as several messages, its parts, each with a `gst.frag` header, and
 * kafkasrc joins them again without copying: a 1080p PNG frame goes through
 * a broker with default settings. See #GstKafkaSink:max-message-size.
 *
 * Like other sinks, kafkasink synchronises on the clock (#GstBaseSink:sync),
 * so a file is produced at the video's own rate, as a camera would; set
 * sync=false to write it as fast as the broker takes it.
 *
 * kafkasink does not wait for the broker in the state change: if no broker
 * can be reached the pipeline still goes to PLAYING, a warning is posted, the
 * messages are sent once a broker answers, and delivery fails with an error
 * after librdkafka's `message.timeout.ms`.
 *
 * Defaults chosen for video, each overridable through #GstKafkaSink:config
 * or #GstKafkaSink:config-file: `enable.idempotence=true` (no duplicates and
 * no reordering when the producer retries), `acks=all`,
 * `message.max.bytes=16777216` (the largest message, and so the largest part
 * of a buffer), `linger.ms=5` and `client.id` set to
 * the element's name. Kafka orders messages within a partition only, so
 * every message of a session goes to one partition, even with neither
 * #GstKafkaSink:key nor #GstKafkaSink:partition set (see the latter).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -e videotestsrc is-live=true ! videoconvert ! pngenc ! \
 *     kafkasink brokers=localhost:9092 topic=camera-1
 * ]| Sends one PNG image per message to topic `camera-1`.
 * |[
 * gst-launch-1.0 filesrc location=video.mp4 ! decodebin ! videoconvert ! \
 *     pngenc ! kafkasink topic=my-topic sync=false eos-marker=true \
 *     config="kafka, linger.ms=20"
 * ]| Sends a file's frames as fast as the broker takes them, with extra
 * librdkafka settings, and ends the topic's stream with an end-of-stream
 * marker message.
 * |[
 * gst-launch-1.0 -e v4l2src ! video/x-h264 ! h264parse config-interval=-1 ! \
 *     kafkasink topic=camera-2 key=camera-2 \
 *     config-file=/etc/kafka/client.properties
 * ]| Sends H.264 access units (SPS/PPS repeated on keyframes, where the caps
 * travel too); the connection settings (TLS, SASL) come from a
 * librdkafka/Java-style properties file.
 * |[
 * gst-launch-1.0 videotestsrc ! pngenc ! \
 *     "kafka://localhost:9092/my-topic?key=camera-3&linger.ms=0"
 * ]| kafkasink handles `kafka://` URIs (#GstKafkaSink:uri): brokers, topic,
 * properties and librdkafka settings in one string.
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkafkasink.h"
#include "gstkafkacommon.h"
#include "gstkafkaelements.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

GST_DEBUG_CATEGORY_STATIC (gst_kafka_sink_debug);
#define GST_CAT_DEFAULT gst_kafka_sink_debug

#define DEFAULT_TOPIC nullptr
#define DEFAULT_KEY nullptr
#define DEFAULT_PARTITION -1
#define DEFAULT_QUEUE_FULL_POLICY GST_KAFKA_SINK_QUEUE_FULL_BLOCK
#define DEFAULT_FLUSH_TIMEOUT 30000
#define DEFAULT_EOS_MARKER FALSE
#define DEFAULT_MAX_MESSAGE_SIZE -1

/* Kafka's default max.message.bytes of a topic: what max-message-size=-1
 * assumes until the broker said what the topic takes, or when it cannot. */
#define KAFKA_DEFAULT_MAX_MESSAGE_BYTES 1048588
/* Room left in a message for its key, headers and the record batch around
 * it, besides the caps, when a buffer is split to fit the topic. */
#define SPLIT_HEADROOM 512
/* Smallest part a buffer is split into. */
#define MIN_PART_SIZE 1024
/* How long the first buffer waits for the broker to say how large a message
 * the topic takes (DescribeConfigs); afterwards the default is assumed. */
#define TOPIC_LIMIT_WAIT_MS 2000

/* How often a flush that unlock() may interrupt looks up from
 * rd_kafka_flush(): it is the only call that makes librdkafka send lingering
 * messages at once, and nothing can wake it up. */
#define FLUSH_SLICE_MS 50

/* Bound of the metadata request that explains a flush timeout. */
#define METADATA_TIMEOUT_MS 2000
/* How often (in buffers) the streaming thread serves the delivery reports
 * that are ready: they come a batch at a time, so once per buffer mostly
 * finds none, and the poll costs a lock. */
#define SERVE_INTERVAL 32

/* Longest time between two messages that carry the caps. */
#define CAPS_INTERVAL_US G_USEC_PER_SEC
/* A keyframe carries the caps when they add at most 1/CAPS_BUDGET to the
 * bytes produced since they last travelled, and CAPS_SPACING_US passed
 * since: with every video keyframe, but not with every 20 ms Opus packet
 * (160 bytes, against 320 bytes of caps with their streamheader), nor with
 * each of a thousand small messages a second. */
#define CAPS_BUDGET 16
#define CAPS_SPACING_US (G_USEC_PER_SEC / 10)

/* How long a purge waits for the delivery reports of the purged messages;
 * they are generated locally, so this is a safety bound, not a delay. */
#define PURGE_WAIT_MS 5000

enum
{
  PROP_0,
  PROP_URI,
  PROP_BROKERS,
  PROP_TOPIC,
  PROP_KEY,
  PROP_PARTITION,
  PROP_CONFIG,
  PROP_CONFIG_FILE,
  PROP_QUEUE_FULL_POLICY,
  PROP_FLUSH_TIMEOUT,
  PROP_EOS_MARKER,
  PROP_MAX_MESSAGE_SIZE,
  PROP_MESSAGES_QUEUED,
  PROP_BYTES_QUEUED,
  PROP_MESSAGES_DELIVERED,
  PROP_BYTES_DELIVERED,
  PROP_MESSAGES_FAILED,
  PROP_MESSAGES_DROPPED,
  PROP_LAST_DELIVERY_LATENCY,
  PROP_STATS,
};

/* Properties, guarded by GST_OBJECT_LOCK; start() takes a copy. */
struct Settings
{
  gchar *brokers = g_strdup (GST_KAFKA_DEFAULT_BROKERS);
  gchar *topic = nullptr;
  gchar *key = nullptr;
  gint partition = DEFAULT_PARTITION;
  GstStructure *config = nullptr;
  gchar *config_file = nullptr;
  GstKafkaSinkQueueFullPolicy queue_full_policy = DEFAULT_QUEUE_FULL_POLICY;
  guint flush_timeout = DEFAULT_FLUSH_TIMEOUT;
  gboolean eos_marker = DEFAULT_EOS_MARKER;
  gint max_message_size = DEFAULT_MAX_MESSAGE_SIZE;

  Settings () = default;
  Settings (const Settings &) = delete;
  Settings &operator= (const Settings &) = delete;
  ~Settings ()
  {
    g_free (brokers);
    g_free (topic);
    g_free (key);
    g_free (config_file);
    if (config)
      gst_structure_free (config);
  }
};

/* What start() keeps of the settings for the running session. */
struct Session
{
  std::string brokers;
  std::string topic;
  std::string key;
  gint partition = DEFAULT_PARTITION;
  GstKafkaSinkQueueFullPolicy queue_full_policy = DEFAULT_QUEUE_FULL_POLICY;
  guint flush_timeout = DEFAULT_FLUSH_TIMEOUT;
  bool eos_marker = DEFAULT_EOS_MARKER;
  gint max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
  /* Effective librdkafka values quoted in error messages. */
  std::string message_max_bytes;
  gint64 producer_max_bytes = GST_KAFKA_DEFAULT_MESSAGE_MAX_BYTES;
  /* The largest record batch the producer builds: the smaller of
   * batch.size and message.max.bytes. */
  gint64 batch_max_bytes = GST_KAFKA_DEFAULT_MESSAGE_MAX_BYTES;
  std::string message_timeout_ms;
};

/* Counters behind the read-only properties; reset by start(). */
struct Stats
{
  guint64 messages_queued = 0;
  guint64 bytes_queued = 0;
  guint64 messages_delivered = 0;
  guint64 bytes_delivered = 0;
  guint64 messages_failed = 0;
  guint64 messages_dropped = 0;
  GstClockTime last_delivery_latency = GST_CLOCK_TIME_NONE;
};

/* One message handed to librdkafka; its msg_opaque. librdkafka's payload
 * pointer is map.data: the buffer stays referenced and mapped until the
 * delivery report, which frees this. */
struct SinkMessage
{
  GstBuffer *buffer = nullptr;
  GstMapInfo map = GST_MAP_INFO_INIT;
  gsize size = 0;
  /* Monotonic time of the hand-over to librdkafka. */
  gint64 produced_at = 0;
  bool eos_marker = false;
  /* A part after the first of a buffer split into several: once the first
   * went out, the rest follows, whatever the queue-full policy. */
  bool part = false;

  ~SinkMessage ()
  {
    release ();
  }

  /* Gives the buffer back and makes this ready for the next one. */
  void release ()
  {
    if (buffer) {
      gst_buffer_unmap (buffer, &map);
      gst_buffer_unref (buffer);
      buffer = nullptr;
    }
    map = GST_MAP_INFO_INIT;
    size = 0;
    produced_at = 0;
    eos_marker = false;
    part = false;
  }
};

/* Recycles SinkMessages, so that neither thread allocates per message: the
 * streaming thread takes them, the delivery thread gives them back a batch
 * at a time. Keeps at most MAX_SPARE spare ones. */
class MessagePool
{
public:
  ~MessagePool ()
  {
    for (SinkMessage *m : spare_)
      delete m;
    for (SinkMessage *m : returned_)
      delete m;
  }

  /* Streaming thread. */
  SinkMessage *take ()
  {
    if (spare_.empty ()) {
      std::lock_guard<std::mutex> lk (lock_);
      spare_.swap (returned_);
    }
    if (spare_.empty ())
      return new SinkMessage ();
    SinkMessage *m = spare_.back ();
    spare_.pop_back ();
    return m;
  }

  /* Streaming thread: a message that never reached librdkafka. */
  void give (SinkMessage *m)
  {
    m->release ();
    if (spare_.size () < MAX_SPARE)
      spare_.push_back (m);
    else
      delete m;
  }

  /* Delivery thread: released messages; empties @done. */
  void give_back (std::vector<SinkMessage *> &done)
  {
    {
      std::lock_guard<std::mutex> lk (lock_);
      while (!done.empty () && returned_.size () < MAX_SPARE) {
        returned_.push_back (done.back ());
        done.pop_back ();
      }
    }
    for (SinkMessage *m : done)
      delete m;
    done.clear ();
  }

private:
  static constexpr size_t MAX_SPARE = 8192;
  std::mutex lock_;
  /* The streaming thread's own. */
  std::vector<SinkMessage *> spare_;
  /* Given back by the delivery thread, under lock_. */
  std::vector<SinkMessage *> returned_;
};

/* partition=-1 without a key: the partition this session's messages all go
 * to, chosen by the partitioner callback for the first one. */
struct PinnedPartition
{
  GstKafkaSink *self = nullptr;
  /* A hash of the producer's client.id: the partition it prefers. */
  guint32 seed = 0;
  std::atomic<gint32> partition{-1};
};

struct GstKafkaSinkPrivate
{
  Settings settings;

  /* Guards everything below that the delivery thread touches. */
  std::mutex lock;
  /* Signalled on every delivery report, error and unlock(). */
  std::condition_variable cond;

  Session session;
  Stats stats;
  /* Size of the message produce() is handing to librdkafka, counted in
   * stats already; -1 when none. */
  std::atomic<gint64> handing_over{-1};
  MessagePool pool;
  /* Delivered messages of one event: the delivery thread's (and stop()'s,
   * once the thread is joined), and the streaming thread's. */
  std::vector<SinkMessage *> delivered;
  std::vector<SinkMessage *> delivered_streaming;
  gstkafka::Handle producer;
  rd_kafka_topic_t *rkt = nullptr;
  /* Read by librdkafka's partitioner calls, on any thread. */
  PinnedPartition pin;
  gstkafka::Queue queue;
  std::thread delivery_thread;
  bool delivery_thread_stop = false;
  /* Incremented once each batch of delivery reports is served and freed,
   * so a thread waiting for room in the producer queue knows when to try
   * again. */
  guint64 delivery_generation = 0;
  bool unlocking = false;
  /* An element error was posted: render() refuses more buffers. */
  bool failed = false;
  bool broker_down_warned = false;
  bool drop_warned = false;
  /* max-message-size=-1: the broker answered (or could not say) how large a
   * message the topic takes. */
  bool topic_limit_known = false;
  /* The topic's max.message.bytes; read by the streaming thread without the
   * lock. */
  std::atomic<gint64> topic_max_bytes{KAFKA_DEFAULT_MAX_MESSAGE_BYTES};
  /* The broker told topic_max_bytes. */
  std::atomic<bool> topic_max_bytes_told{false};

  /* Streaming state: touched by the streaming thread only. */
  guint64 session_id = 0;
  guint64 seq = 0;
  std::string caps;
  bool caps_pending = true;
  gint64 caps_sent_at = 0;
  GstClockTime caps_sent_pts = GST_CLOCK_TIME_NONE;
  /* Payload bytes produced since the caps last travelled. */
  guint64 bytes_since_caps = 0;
  /* Real time (ns) of running time 0, taken at the first buffer. */
  GstClockTime wallclock_anchor = GST_CLOCK_TIME_NONE;
  GstCaps *unix_caps = nullptr;
  /* API of the GstKafkaMeta kafkasrc attaches, 0 while none is registered. */
  GType kafka_meta_api = 0;
  /* The first buffer waited for topic_limit_known. */
  bool topic_limit_waited = false;
  /* A buffer was split: said once. */
  bool split_noted = false;
};

struct _GstKafkaSink
{
  GstBaseSink parent;
  GstKafkaSinkPrivate *priv;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_kafka_sink_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstKafkaSink, gst_kafka_sink, GST_TYPE_BASE_SINK,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gstkafka::uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (kafkasink, "kafkasink", GST_RANK_NONE,
    GST_TYPE_KAFKA_SINK, kafka_element_init (plugin));

GType
gst_kafka_sink_queue_full_policy_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_KAFKA_SINK_QUEUE_FULL_BLOCK,
          "Wait for room in the producer queue (backpressure)", "block"},
      {GST_KAFKA_SINK_QUEUE_FULL_DROP,
          "Drop the buffer and count it in messages-dropped", "drop"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstKafkaSinkQueueFullPolicy", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* --- Properties ---------------------------------------------------------- */

/* The counters as users see them, with priv->lock held: produce() counts a
 * message as queued before librdkafka takes it (its delivery report may
 * come first); until librdkafka has it, it is not shown, so that
 * messages-queued never exceeds the producer's queue. */
static Stats
visible_stats (GstKafkaSinkPrivate *priv)
{
  Stats st = priv->stats;
  gint64 handing = priv->handing_over.load (std::memory_order_acquire);
  if (handing >= 0 && st.messages_queued > 0) {
    st.messages_queued--;
    st.bytes_queued -= MIN (st.bytes_queued, guint64 (handing));
  }
  return st;
}

static GstStructure *
stats_structure (GstKafkaSink *self)
{
  std::lock_guard<std::mutex> lk (self->priv->lock);
  const Stats s = visible_stats (self->priv);
  return gst_structure_new ("GstKafkaSinkStats", "messages-queued",
      G_TYPE_UINT64, s.messages_queued, "bytes-queued", G_TYPE_UINT64,
      s.bytes_queued, "messages-delivered", G_TYPE_UINT64, s.messages_delivered,
      "bytes-delivered", G_TYPE_UINT64, s.bytes_delivered, "messages-failed",
      G_TYPE_UINT64, s.messages_failed, "messages-dropped", G_TYPE_UINT64,
      s.messages_dropped, "last-delivery-latency", G_TYPE_UINT64,
      s.last_delivery_latency, nullptr);
}

static void
gst_kafka_sink_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstKafkaSink *self = GST_KAFKA_SINK (object);
  Settings &s = self->priv->settings;

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
  case PROP_KEY:
    g_free (s.key);
    s.key = g_value_dup_string (value);
    break;
  case PROP_PARTITION:
    s.partition = g_value_get_int (value);
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
  case PROP_QUEUE_FULL_POLICY:
    s.queue_full_policy = static_cast<GstKafkaSinkQueueFullPolicy> (
        g_value_get_enum (value));
    break;
  case PROP_FLUSH_TIMEOUT:
    s.flush_timeout = g_value_get_uint (value);
    break;
  case PROP_EOS_MARKER:
    s.eos_marker = g_value_get_boolean (value);
    break;
  case PROP_MAX_MESSAGE_SIZE:
    s.max_message_size = g_value_get_int (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_kafka_sink_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstKafkaSink *self = GST_KAFKA_SINK (object);
  GstKafkaSinkPrivate *priv = self->priv;
  Settings &s = priv->settings;

  switch (prop_id) {
  case PROP_URI:
    g_value_take_string (value,
        gstkafka::uri_get_property (GST_ELEMENT (self)));
    return;
  case PROP_MESSAGES_QUEUED:
  case PROP_BYTES_QUEUED:
  case PROP_MESSAGES_DELIVERED:
  case PROP_BYTES_DELIVERED:
  case PROP_MESSAGES_FAILED:
  case PROP_MESSAGES_DROPPED:
  case PROP_LAST_DELIVERY_LATENCY: {
    std::lock_guard<std::mutex> lk (priv->lock);
    const Stats st = visible_stats (priv);
    guint64 v = 0;
    if (prop_id == PROP_MESSAGES_QUEUED)
      v = st.messages_queued;
    else if (prop_id == PROP_BYTES_QUEUED)
      v = st.bytes_queued;
    else if (prop_id == PROP_MESSAGES_DELIVERED)
      v = st.messages_delivered;
    else if (prop_id == PROP_BYTES_DELIVERED)
      v = st.bytes_delivered;
    else if (prop_id == PROP_MESSAGES_FAILED)
      v = st.messages_failed;
    else if (prop_id == PROP_MESSAGES_DROPPED)
      v = st.messages_dropped;
    else
      v = st.last_delivery_latency;
    g_value_set_uint64 (value, v);
    return;
  }
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
  case PROP_QUEUE_FULL_POLICY:
    g_value_set_enum (value, s.queue_full_policy);
    break;
  case PROP_FLUSH_TIMEOUT:
    g_value_set_uint (value, s.flush_timeout);
    break;
  case PROP_EOS_MARKER:
    g_value_set_boolean (value, s.eos_marker);
    break;
  case PROP_MAX_MESSAGE_SIZE:
    g_value_set_int (value, s.max_message_size);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* --- Delivery reports ---------------------------------------------------- */

/* " partition N", or nothing when librdkafka had not chosen one yet. */
static std::string
partition_text (gint32 partition)
{
  if (partition < 0)
    return "";
  return " partition " + std::to_string (partition);
}

static void
post_delivery_error (GstKafkaSink *self, const rd_kafka_message_t *m,
    const SinkMessage *msg)
{
  const Session &s = self->priv->session;
  rd_kafka_resp_err_t err = m->err;
  std::string why = gstkafka::err_text (err);
  gint32 partition = m->partition;

  switch (err) {
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Kafka topic '%s' does not exist and the broker did not create it "
         "(broker auto.create.topics.enable is off, or "
         "allow.auto.create.topics=false): create the topic first",
            s.topic.c_str ()),
        ("delivery to partition %d failed: %s", partition, why.c_str ()));
    break;
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: {
    gint64 limit = self->priv->topic_max_bytes.load ();
    if (self->priv->topic_max_bytes_told && gint64 (msg->size) < limit)
      /* The message fits: the batch around it did not. */
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("The Kafka broker rejected a record batch as larger than topic "
           "'%s' takes (max.message.bytes=%" G_GINT64_FORMAT "): set "
           "batch.size=%" G_GINT64_FORMAT " in the 'config' property",
              s.topic.c_str (), limit, limit),
          ("partition %d, a message of %" G_GSIZE_FORMAT " bytes: %s",
              partition, msg->size, why.c_str ()));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("The Kafka broker rejected a frame of %" G_GSIZE_FORMAT
           " bytes as too large for topic '%s': raise the topic's "
           "max.message.bytes (broker default: message.max.bytes), and "
           "replica.fetch.max.bytes on the brokers, or let kafkasink split "
           "frames (max-message-size)",
              msg->size, s.topic.c_str ()),
          ("partition %d: %s", partition, why.c_str ()));
    break;
  }
  case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("The Kafka broker does not accept writes to topic '%s': it is an "
         "internal topic (such as __consumer_offsets) or a name the broker "
         "refuses; produce to another topic",
            s.topic.c_str ()),
        ("delivery failed: %s", why.c_str ()));
    break;
  case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    /* What the broker says of a key-less message in a compacted topic. */
    if (s.key.empty ())
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("The Kafka broker refused a message without a key for topic "
           "'%s'%s: a topic with cleanup.policy=compact accepts only "
           "messages with a key. Set kafkasink's key property (compaction "
           "then keeps only the last message of each key), or produce to a "
           "topic with cleanup.policy=delete",
              s.topic.c_str (), partition_text (partition).c_str ()),
          ("%s", why.c_str ()));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("The Kafka broker refused a message for topic '%s'%s as invalid",
              s.topic.c_str (), partition_text (partition).c_str ()),
          ("%s", why.c_str ()));
    break;
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Kafka topic '%s' has no partition %d", s.topic.c_str (), s.partition),
        ("%s", why.c_str ()));
    break;
  case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    /* Without a broker no partition was ever chosen. */
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Could not deliver to Kafka topic '%s'%s within message.timeout.ms "
         "(%s ms): is a broker of '%s' reachable?",
            s.topic.c_str (), partition_text (partition).c_str (),
            s.message_timeout_ms.c_str (), s.brokers.c_str ()),
        ("%s", why.c_str ()));
    break;
  default:
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Could not deliver to Kafka topic '%s'%s: %s", s.topic.c_str (),
            partition_text (partition).c_str (), rd_kafka_err2str (err)),
        ("%s", why.c_str ()));
    break;
  }
}

/* Accounts for one delivery report; returns whether the caller must post
 * an error for it. Called with priv->lock held. */
static bool
handle_delivery_locked (GstKafkaSink *self, const rd_kafka_message_t *m,
    const SinkMessage *msg, gint64 now)
{
  GstKafkaSinkPrivate *priv = self->priv;
  Stats &st = priv->stats;

  st.messages_queued--;
  st.bytes_queued -= msg->size;

  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    st.messages_delivered++;
    st.bytes_delivered += msg->size;
    st.last_delivery_latency = (now - msg->produced_at) * GST_USECOND;
    priv->broker_down_warned = false;
    return false;
  }

  st.messages_failed++;
  if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    /* finish_outstanding() purged it and reports the count. */
    GST_DEBUG_OBJECT (self, "message of %" G_GSIZE_FORMAT " bytes purged",
        msg->size);
    return false;
  }
  GST_WARNING_OBJECT (self, "delivery to %s [%d] failed: %s",
      priv->session.topic.c_str (), m->partition,
      gstkafka::err_text (m->err).c_str ());
  if (priv->failed)
    return false;
  priv->failed = true;
  return true;
}

/* @done: the serving thread's own vector, kept to spare an allocation. */
static void
handle_delivery_event (GstKafkaSink *self, rd_kafka_event_t *ev,
    std::vector<SinkMessage *> &done)
{
  GstKafkaSinkPrivate *priv = self->priv;
  const rd_kafka_message_t *batch[256];
  const rd_kafka_message_t *error_msg = nullptr;
  SinkMessage *error_ctx = nullptr;
  gint64 now = g_get_monotonic_time ();
  size_t n;

  {
    std::lock_guard<std::mutex> lk (priv->lock);
    while (
        (n = rd_kafka_event_message_array (ev, batch, G_N_ELEMENTS (batch)))) {
      for (size_t i = 0; i < n; i++) {
        auto msg = static_cast<SinkMessage *> (batch[i]->_private);
        /* The zero-copy contract: librdkafka reports our own pointer. */
        if (msg->size > 0 && !msg->eos_marker)
          g_warn_if_fail (batch[i]->payload == msg->map.data);
        if (handle_delivery_locked (self, batch[i], msg, now)) {
          error_msg = batch[i];
          error_ctx = msg;
        }
        done.push_back (msg);
      }
    }
  }

  /* The message (and its context) lives until the event is destroyed. */
  if (error_msg)
    post_delivery_error (self, error_msg, error_ctx);

  /* Buffers go back to their pool outside of any lock. */
  for (SinkMessage *msg : done)
    msg->release ();
  priv->pool.give_back (done);
}

static void
handle_error_event (GstKafkaSink *self, rd_kafka_event_t *ev)
{
  GstKafkaSinkPrivate *priv = self->priv;
  rd_kafka_resp_err_t err = rd_kafka_event_error (ev);
  const char *reason = rd_kafka_event_error_string (ev);

  if (rd_kafka_event_error_is_fatal (ev)) {
    char fatal[512] = "";
    rd_kafka_resp_err_t ferr = rd_kafka_fatal_error (priv->producer.get (),
        fatal, sizeof (fatal));
    {
      std::lock_guard<std::mutex> lk (priv->lock);
      priv->failed = true;
    }
    priv->cond.notify_all ();
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("The Kafka producer for topic '%s' failed and cannot continue: %s",
            priv->session.topic.c_str (), fatal),
        ("%s", gstkafka::err_text (ferr).c_str ()));
    return;
  }

  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
    /* Retrying with the same credentials will not help. */
    {
      std::lock_guard<std::mutex> lk (priv->lock);
      priv->failed = true;
    }
    priv->cond.notify_all ();
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
        ("The Kafka broker refused the credentials for topic '%s' (SASL "
         "authentication failed): check sasl.username and sasl.password in "
         "config or config-file",
            priv->session.topic.c_str ()),
        ("%s", gstkafka::err_text (err).c_str ()));
    return;
  }

  GST_WARNING_OBJECT (self, "librdkafka: %s (%s)", reason,
      rd_kafka_err2name (err));
  if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    return;

  bool warn;
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    warn = !priv->broker_down_warned && !priv->failed;
    priv->broker_down_warned = true;
  }
  if (warn) {
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE,
        ("Cannot reach any Kafka broker of '%s'; messages wait in the "
         "producer queue and are sent when a broker answers, or fail after "
         "message.timeout.ms (%s ms)",
            priv->session.brokers.c_str (),
            priv->session.message_timeout_ms.c_str ()),
        ("%s", reason));
  }
}

/* The broker's answer to request_topic_limit(). */
static void
handle_topic_limit (GstKafkaSink *self, rd_kafka_event_t *ev)
{
  GstKafkaSinkPrivate *priv = self->priv;
  gint64 limit = -1;
  std::string why;

  const rd_kafka_DescribeConfigs_result_t
      *result = rd_kafka_event_DescribeConfigs_result (ev);
  size_t n = 0;
  const rd_kafka_ConfigResource_t **resources =
      result ? rd_kafka_DescribeConfigs_result_resources (result, &n) : nullptr;
  if (rd_kafka_event_error (ev))
    why = rd_kafka_event_error_string (ev);
  else if (n != 1)
    why = "no answer for the topic";
  else if (rd_kafka_ConfigResource_error (resources[0]))
    why = rd_kafka_ConfigResource_error_string (resources[0]);
  for (size_t i = 0; why.empty () && i < n; i++) {
    size_t count = 0;
    const rd_kafka_ConfigEntry_t *
        *entries = rd_kafka_ConfigResource_configs (resources[i], &count);
    for (size_t j = 0; j < count; j++) {
      const char *value = rd_kafka_ConfigEntry_value (entries[j]);
      if (value &&
          !strcmp (rd_kafka_ConfigEntry_name (entries[j]), "max.message.bytes"))
        limit = g_ascii_strtoll (value, nullptr, 10);
    }
  }
  const Session &s = priv->session;
  if (limit > 0) {
    GST_INFO_OBJECT (self,
        "topic %s takes messages of up to %" G_GINT64_FORMAT " bytes",
        s.topic.c_str (), limit);
    priv->topic_max_bytes.store (limit, std::memory_order_relaxed);
    priv->topic_max_bytes_told = true;
    /* The limit is on record batches: several messages the producer sends
     * together must fit in it too. */
    if (limit < s.batch_max_bytes)
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Kafka topic '%s' takes record batches of up to %" G_GINT64_FORMAT
           " bytes (max.message.bytes), and the producer builds larger ones "
           "(up to %" G_GINT64_FORMAT
           " bytes): set batch.size=%" G_GINT64_FORMAT
           " in the 'config' property, or the broker will refuse batches",
              s.topic.c_str (), limit, s.batch_max_bytes, limit),
          ("batch.size and message.max.bytes bound a batch"));
  } else {
    GST_INFO_OBJECT (self,
        "could not learn the topic's max.message.bytes (%s): assuming "
        "Kafka's default, %d bytes",
        why.empty () ? "not given" : why.c_str (),
        KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
  }
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    priv->topic_limit_known = true;
  }
  priv->cond.notify_all ();
}

static void
handle_event (GstKafkaSink *self, rd_kafka_event_t *ev,
    std::vector<SinkMessage *> &done)
{
  switch (rd_kafka_event_type (ev)) {
  case RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT:
    handle_topic_limit (self, ev);
    break;
  case RD_KAFKA_EVENT_DR:
    handle_delivery_event (self, ev, done);
    break;
  case RD_KAFKA_EVENT_ERROR:
    handle_error_event (self, ev);
    break;
  case RD_KAFKA_EVENT_STATS: {
    GstStructure *s = gst_structure_new ("kafkasink-stats", "json",
        G_TYPE_STRING, rd_kafka_event_stats (ev), nullptr);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), s));
    break;
  }
  default:
    GST_DEBUG_OBJECT (self, "ignoring librdkafka event %s",
        rd_kafka_event_name (ev));
    break;
  }
}

/* Serves @ev and destroys it. Only then is the room its messages took in
 * the producer queue free again, so only then is a thread that waits for
 * room (produce()) woken: woken before, it could find the queue still full
 * and wait for a delivery report that never comes, when @ev acknowledged
 * everything that was queued. */
static void
serve_event (GstKafkaSink *self, rd_kafka_event_t *ev,
    std::vector<SinkMessage *> &done)
{
  GstKafkaSinkPrivate *priv = self->priv;
  bool delivery = rd_kafka_event_type (ev) == RD_KAFKA_EVENT_DR;
  handle_event (self, ev, done);
  rd_kafka_event_destroy (ev);
  if (!delivery)
    return;
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    priv->delivery_generation++;
  }
  priv->cond.notify_all ();
}

/* The delivery thread: serves librdkafka's main queue (delivery reports,
 * errors, statistics) until stop() sets delivery_thread_stop and yields the
 * queue. */
static void
delivery_loop (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;
  rd_kafka_queue_t *queue = priv->queue.get ();

  GST_DEBUG_OBJECT (self, "delivery thread running");
  for (;;) {
    if (rd_kafka_event_t *ev = rd_kafka_queue_poll (queue, -1)) {
      serve_event (self, ev, priv->delivered);
      continue;
    }
    std::lock_guard<std::mutex> lk (priv->lock);
    if (priv->delivery_thread_stop)
      break;
  }
  GST_DEBUG_OBJECT (self, "delivery thread done");
}

/* --- Start / stop -------------------------------------------------------- */

static std::string
conf_value (rd_kafka_t *rk, const char *key)
{
  const rd_kafka_conf_t *conf = rd_kafka_conf (rk);
  size_t size = 0;
  if (rd_kafka_conf_get (conf, key, nullptr, &size) != RD_KAFKA_CONF_OK)
    return "?";
  std::string value (size, '\0');
  rd_kafka_conf_get (conf, key, &value[0], &size);
  value.resize (strlen (value.c_str ()));
  return value;
}

/* librdkafka's partitioner for kafkasink's key-less messages: every message
 * of the session goes to one partition, so that the stream stays in order
 * (Kafka orders messages within a partition only). That partition is the
 * one the client.id hashes to, so a producer that starts again writes
 * where it wrote before and the topic replays in order, or the next one
 * with a leader if that one has none when the first message is
 * partitioned. Called on any thread; may only call
 * rd_kafka_topic_partition_available(). */
static int32_t
pinned_partitioner (const rd_kafka_topic_t *rkt, const void *key,
    size_t key_len, int32_t partition_cnt, void *rkt_opaque, void *msg_opaque)
{
  /* A key taken from a GstKafkaMeta: Kafka's partition for that key. */
  if (key)
    return rd_kafka_msg_partitioner_consistent_random (rkt, key, key_len,
        partition_cnt, rkt_opaque, msg_opaque);
  auto pin = static_cast<PinnedPartition *> (rkt_opaque);
  gint32 current = pin->partition.load ();
  if (current >= 0 && current < partition_cnt)
    return current;

  gint32 first = gint32 (pin->seed % guint32 (partition_cnt));
  gint32 pick = first;
  for (gint32 i = 0; i < partition_cnt; i++) {
    gint32 candidate = (first + i) % partition_cnt;
    if (rd_kafka_topic_partition_available (rkt, candidate)) {
      pick = candidate;
      break;
    }
  }
  /* Another thread may have partitioned a message meanwhile: its choice
   * stands. */
  if (!pin->partition.compare_exchange_strong (current, pick))
    return current;
  GST_INFO_OBJECT (pin->self, "this session produces to partition %d of %d%s",
      pick, partition_cnt,
      pick == first ? "" : " (the preferred one has no leader)");
  return pick;
}

/* With partition=-1, no key and librdkafka's default partitioner, puts the
 * session's messages in one partition (pinned_partitioner()). librdkafka
 * would otherwise spread key-less messages over the topic's partitions, a
 * new one every sticky.partitioning.linger.ms, and a consumer would see the
 * frames out of order. */
static void
pin_partition (GstKafkaSink *self, rd_kafka_conf_t *conf)
{
  GstKafkaSinkPrivate *priv = self->priv;
  rd_kafka_topic_conf_t *tconf = rd_kafka_conf_get_default_topic_conf (conf);
  char value[64] = "";
  size_t size = sizeof (value);

  if (tconf &&
      rd_kafka_topic_conf_get (tconf, "partitioner", value, &size) ==
          RD_KAFKA_CONF_OK &&
      strcmp (value, "consistent_random") != 0) {
    GST_INFO_OBJECT (self,
        "partitioner=%s chosen in config: not pinning "
        "the session to one partition",
        value);
    return;
  }
  if (!tconf) {
    rd_kafka_conf_set_default_topic_conf (conf, rd_kafka_topic_conf_new ());
    tconf = rd_kafka_conf_get_default_topic_conf (conf);
  }
  /* FNV-1a: the same partition for the same client.id everywhere. */
  char client_id[256] = "";
  size = sizeof (client_id);
  rd_kafka_conf_get (conf, "client.id", client_id, &size);
  guint32 hash = 2166136261u;
  for (const char *c = client_id; *c; c++)
    hash = (hash ^ guint8 (*c)) * 16777619u;
  priv->pin.seed = hash;
  rd_kafka_topic_conf_set_partitioner_cb (tconf, pinned_partitioner);
  rd_kafka_topic_conf_set_opaque (tconf, &priv->pin);
  /* Sticky partitioning bypasses the partitioner for key-less messages. */
  char errstr[256];
  if (rd_kafka_conf_set (conf, "sticky.partitioning.linger.ms", "0", errstr,
          sizeof (errstr)) != RD_KAFKA_CONF_OK)
    GST_WARNING_OBJECT (self, "sticky.partitioning.linger.ms: %s", errstr);
}

/* Asks the broker for the topic's max.message.bytes, for
 * max-message-size=-1; handle_topic_limit() takes the answer. */
static void
request_topic_limit (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;
  rd_kafka_t *rk = priv->producer.get ();

  rd_kafka_ConfigResource_t
      *resource = rd_kafka_ConfigResource_new (RD_KAFKA_RESOURCE_TOPIC,
          priv->session.topic.c_str ());
  rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new (rk,
      RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout (options, TOPIC_LIMIT_WAIT_MS,
      errstr, sizeof (errstr));
  rd_kafka_DescribeConfigs (rk, &resource, 1, options, priv->queue.get ());
  rd_kafka_AdminOptions_destroy (options);
  rd_kafka_ConfigResource_destroy (resource);
}

static gboolean
gst_kafka_sink_start (GstBaseSink *bsink)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);
  GstKafkaSinkPrivate *priv = self->priv;
  Session session;
  g_autofree gchar *config_file = nullptr;
  GstStructure *config = nullptr;

  GST_OBJECT_LOCK (self);
  const Settings &s = priv->settings;
  session.brokers = s.brokers ? s.brokers : "";
  session.topic = s.topic ? s.topic : "";
  session.key = s.key ? s.key : "";
  session.partition = s.partition;
  session.queue_full_policy = s.queue_full_policy;
  session.flush_timeout = s.flush_timeout;
  session.eos_marker = s.eos_marker;
  session.max_message_size = s.max_message_size;
  config_file = g_strdup (s.config_file);
  config = s.config ? gst_structure_copy (s.config) : nullptr;
  GST_OBJECT_UNLOCK (self);

  std::string uri_problem = gstkafka::uri_problem (GST_ELEMENT (self));
  if (!uri_problem.empty ()) {
    if (config)
      gst_structure_free (config);
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid 'uri' property: %s", uri_problem.c_str ()), (nullptr));
    return FALSE;
  }
  if (session.topic.empty ()) {
    if (config)
      gst_structure_free (config);
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("No Kafka topic given: set the 'topic' property"), (nullptr));
    return FALSE;
  }
  std::string topic_problem = gstkafka::topic_name_problem (session.topic);
  if (!topic_problem.empty ()) {
    if (config)
      gst_structure_free (config);
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("'%s' is not a valid Kafka topic name: %s", session.topic.c_str (),
            topic_problem.c_str ()),
        (nullptr));
    return FALSE;
  }

  if (config) {
    g_autoptr (GstStructure) redacted = gstkafka::conf_redact (config);
    GST_INFO_OBJECT (self, "config: %" GST_PTR_FORMAT, redacted);
  }

  /* The settings kafkasink starts from; config-file and config override
   * them. */
  std::string max_bytes = std::to_string (GST_KAFKA_DEFAULT_MESSAGE_MAX_BYTES);
  const gstkafka::ConfDefault defaults[] = {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"message.max.bytes", max_bytes.c_str ()},
      {"linger.ms", "5"},
  };

  GError *error = nullptr;
  gstkafka::Conf conf = gstkafka::conf_new (GST_ELEMENT (self), GST_CAT_DEFAULT,
      defaults, G_N_ELEMENTS (defaults), session.brokers.c_str (), config_file,
      config, &error);
  if (config)
    gst_structure_free (config);
  if (!conf) {
    /* Keeps conf_new()'s error code: OPEN_READ for an unreadable file. */
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        error->domain, error->code, g_strdup (error->message), nullptr,
        __FILE__, GST_FUNCTION, __LINE__);
    g_error_free (error);
    return FALSE;
  }
  rd_kafka_conf_set_events (conf.get (),
      RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS);

  priv->pin.partition = -1;
  if (session.partition < 0 && session.key.empty ())
    pin_partition (self, conf.get ());

  char errstr[512];
  gstkafka::Handle rk (
      rd_kafka_new (RD_KAFKA_PRODUCER, conf.get (), errstr, sizeof (errstr)));
  if (!rk) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Could not create the Kafka producer: %s", errstr), (nullptr));
    return FALSE;
  }
  /* rd_kafka_new() owns the configuration once it succeeded. */
  (void) conf.release ();

  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk.get (), session.topic.c_str (),
      nullptr);
  if (!rkt) {
    rd_kafka_resp_err_t err = rd_kafka_last_error ();
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid Kafka topic '%s': %s", session.topic.c_str (),
            rd_kafka_err2str (err)),
        ("%s", gstkafka::err_text (err).c_str ()));
    return FALSE;
  }

  /* Error messages quote what librdkafka uses, whichever setting set it. */
  session.brokers = conf_value (rk.get (), "bootstrap.servers");
  session.message_max_bytes = conf_value (rk.get (), "message.max.bytes");
  session.producer_max_bytes =
      g_ascii_strtoll (session.message_max_bytes.c_str (), nullptr, 10);
  session.batch_max_bytes = MIN (session.producer_max_bytes,
      g_ascii_strtoll (conf_value (rk.get (), "batch.size").c_str (), nullptr,
          10));
  session.message_timeout_ms = conf_value (rk.get (), "message.timeout.ms");

  std::random_device rd;
  guint64 session_id = (guint64 (rd ()) << 32) | rd ();
  GST_INFO_OBJECT (self,
      "producing to %s on %s, session %016" G_GINT64_MODIFIER "x",
      session.topic.c_str (), session.brokers.c_str (), session_id);

  {
    std::lock_guard<std::mutex> lk (priv->lock);
    priv->session = std::move (session);
    const GstMetaInfo *kafka_meta = gst_meta_get_info (GST_KAFKA_META_NAME);
    priv->kafka_meta_api = kafka_meta ? kafka_meta->api : 0;
    priv->stats = Stats ();
    priv->producer = std::move (rk);
    priv->rkt = rkt;
    priv->queue.reset (rd_kafka_queue_get_main (priv->producer.get ()));
    priv->delivery_thread_stop = false;
    priv->delivery_generation = 0;
    priv->failed = false;
    priv->broker_down_warned = false;
    priv->drop_warned = false;
    priv->topic_limit_known = priv->session.max_message_size >= 0;
    priv->topic_max_bytes = KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
    priv->topic_max_bytes_told = false;
  }
  if (!priv->topic_limit_known)
    request_topic_limit (self);
  priv->topic_limit_waited = false;
  priv->split_noted = false;
  priv->session_id = session_id;
  priv->seq = 0;
  priv->caps_pending = true;
  priv->caps_sent_at = 0;
  priv->caps_sent_pts = GST_CLOCK_TIME_NONE;
  priv->bytes_since_caps = 0;
  priv->wallclock_anchor = GST_CLOCK_TIME_NONE;
  priv->delivery_thread = std::thread (delivery_loop, self);
  return TRUE;
}

enum FlushFlags
{
  /* unlock() cuts the wait short. */
  FLUSH_INTERRUPTIBLE = 1 << 0,
  /* An element error ends the wait: what is left will not be delivered. */
  FLUSH_UNTIL_ERROR = 1 << 1,
};

/* Waits until every message handed to librdkafka has its delivery report,
 * for at most @timeout_ms (0: no bound but message.timeout.ms). Returns the
 * number still outstanding; sets @interrupted when unlock() cut it short. */
static guint64
flush_messages (GstKafkaSink *self, guint timeout_ms, int flags,
    bool *interrupted)
{
  GstKafkaSinkPrivate *priv = self->priv;
  gint64 deadline = g_get_monotonic_time () + gint64 (timeout_ms) * 1000;

  for (;;) {
    {
      std::lock_guard<std::mutex> lk (priv->lock);
      if (priv->stats.messages_queued == 0)
        return 0;
      if ((flags & FLUSH_INTERRUPTIBLE) && priv->unlocking) {
        *interrupted = true;
        return priv->stats.messages_queued;
      }
      if ((flags & FLUSH_UNTIL_ERROR) && priv->failed)
        return priv->stats.messages_queued;
      if (timeout_ms && g_get_monotonic_time () >= deadline)
        return priv->stats.messages_queued;
    }
    int slice = FLUSH_SLICE_MS;
    if (timeout_ms) {
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      slice = int (CLAMP (left, 1, FLUSH_SLICE_MS));
    }
    /* In event mode rd_kafka_flush() only waits for the delivery thread to
     * have served the reports, and sends lingering messages at once. */
    rd_kafka_flush (priv->producer.get (), slice);
  }
}

/* Whether the broker says the topic does not exist: librdkafka only fails
 * messages for it after topic.metadata.propagation.max.ms. */
static bool
topic_is_missing (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;
  const rd_kafka_metadata_t *md = nullptr;
  if (rd_kafka_metadata (priv->producer.get (), 0, priv->rkt, &md,
          METADATA_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return false;
  bool missing = md->topic_cnt == 1 &&
                 (md->topics[0].err ==
                         RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                     md->topics[0].err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
  rd_kafka_metadata_destroy (md);
  return missing;
}

static void
report_undelivered (GstKafkaSink *self, guint64 count, bool already_failed)
{
  GstKafkaSinkPrivate *priv = self->priv;
  const Session &s = priv->session;
  if (already_failed) {
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
        ("%" G_GUINT64_FORMAT " messages to Kafka topic '%s' were not "
         "delivered and are discarded",
            count, s.topic.c_str ()),
        (nullptr));
    return;
  }

  bool broker_down;
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    broker_down = priv->broker_down_warned;
  }
  if (!broker_down && topic_is_missing (self)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Kafka topic '%s' does not exist and the broker did not create it "
         "(broker auto.create.topics.enable is off, or "
         "allow.auto.create.topics=false): create the topic first; "
         "%" G_GUINT64_FORMAT " messages are discarded",
            s.topic.c_str (), count),
        ("brokers: %s", s.brokers.c_str ()));
    return;
  }
  GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
      ("%" G_GUINT64_FORMAT " messages could not be delivered to Kafka "
       "topic '%s' within flush-timeout (%u ms) and are discarded%s",
          count, s.topic.c_str (), s.flush_timeout,
          broker_down ? ": no Kafka broker could be reached" : ""),
      ("brokers: %s", s.brokers.c_str ()));
}

/* Waits up to flush-timeout for the outstanding messages, then discards and
 * reports whatever is left. The streaming thread is stopped. */
static void
finish_outstanding (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;
  bool failed;
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    failed = priv->failed;
  }

  /* After an error there is no point in waiting: whatever is left goes. */
  bool unused = false;
  guint64 left = flush_messages (self, failed ? 1 : priv->session.flush_timeout,
      FLUSH_UNTIL_ERROR, &unused);
  if (left == 0)
    return;

  GST_INFO_OBJECT (self, "purging %" G_GUINT64_FORMAT " messages", left);
  rd_kafka_purge (priv->producer.get (),
      RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  guint64 stuck = flush_messages (self, PURGE_WAIT_MS, 0, &unused);
  if (stuck)
    GST_ERROR_OBJECT (self,
        "%" G_GUINT64_FORMAT " purged messages got no delivery report", stuck);
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    failed = priv->failed;
    priv->failed = true;
  }
  report_undelivered (self, left, failed);
}

static gboolean
gst_kafka_sink_stop (GstBaseSink *bsink)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);
  GstKafkaSinkPrivate *priv = self->priv;

  if (!priv->producer)
    return TRUE;

  finish_outstanding (self);

  {
    std::lock_guard<std::mutex> lk (priv->lock);
    priv->delivery_thread_stop = true;
  }
  rd_kafka_queue_yield (priv->queue.get ());
  priv->delivery_thread.join ();

  /* Reports that came after the thread's last poll. */
  while (rd_kafka_event_t *ev = rd_kafka_queue_poll (priv->queue.get (), 0))
    serve_event (self, ev, priv->delivered);

  rd_kafka_topic_destroy (priv->rkt);
  priv->rkt = nullptr;
  priv->queue.reset ();
  gstkafka::Handle producer;
  {
    std::lock_guard<std::mutex> lk (priv->lock);
    producer = std::move (priv->producer);
  }
  producer.reset ();
  GST_DEBUG_OBJECT (self, "stopped");
  return TRUE;
}

static gboolean
gst_kafka_sink_unlock (GstBaseSink *bsink)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);
  {
    std::lock_guard<std::mutex> lk (self->priv->lock);
    self->priv->unlocking = true;
  }
  self->priv->cond.notify_all ();
  return TRUE;
}

static gboolean
gst_kafka_sink_unlock_stop (GstBaseSink *bsink)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);
  std::lock_guard<std::mutex> lk (self->priv->lock);
  self->priv->unlocking = false;
  return TRUE;
}

/* --- Streaming ----------------------------------------------------------- */

static gboolean
gst_kafka_sink_set_caps (GstBaseSink *bsink, GstCaps *caps)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);
  g_autofree gchar *str = gst_caps_to_string (caps);

  GST_DEBUG_OBJECT (self, "caps %s", str);
  self->priv->caps = str;
  self->priv->caps_pending = true;
  return TRUE;
}

/* The Kafka timestamp (ms since the epoch) of @buf: its
 * timestamp/x-unix reference timestamp, or the wall-clock time of its
 * running time, or now. */
static gint64
message_timestamp (GstKafkaSink *self, GstBuffer *buf)
{
  GstKafkaSinkPrivate *priv = self->priv;
  GstBaseSink *bsink = GST_BASE_SINK (self);

  GstReferenceTimestampMeta
      *meta = gst_buffer_get_reference_timestamp_meta (buf, priv->unix_caps);
  if (meta)
    return gint64 (meta->timestamp / GST_MSECOND);

  GstClockTime ts = GST_BUFFER_PTS_IS_VALID (buf) ? GST_BUFFER_PTS (buf)
                                                  : GST_BUFFER_DTS (buf);
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID (ts) && bsink->segment.format == GST_FORMAT_TIME)
    running_time = gst_segment_to_running_time (&bsink->segment,
        GST_FORMAT_TIME, ts);
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return g_get_real_time () / 1000;

  if (!GST_CLOCK_TIME_IS_VALID (priv->wallclock_anchor))
    priv->wallclock_anchor = g_get_real_time () * GST_USECOND - running_time;
  return gint64 ((priv->wallclock_anchor + running_time) / GST_MSECOND);
}

/* The key of @buf's message: the key property; without one, the key of the
 * message @buf was read from (kafkasrc add-kafka-meta=true), so that a copy
 * of a topic keeps its keys; else none. */
static void
message_key (GstKafkaSink *self, GstBuffer *buf, const void **key,
    size_t *key_len)
{
  GstKafkaSinkPrivate *priv = self->priv;
  const Session &s = priv->session;

  *key = s.key.empty () ? nullptr : s.key.data ();
  *key_len = s.key.size ();
  if (*key || G_LIKELY (!priv->kafka_meta_api))
    return;
  GstMeta *meta = gst_buffer_get_meta (buf, priv->kafka_meta_api);
  if (!meta)
    return;
  const GValue *v =
      gst_structure_get_value (gst_custom_meta_get_structure (
                                   reinterpret_cast<GstCustomMeta *> (meta)),
          "key");
  if (!v || !G_VALUE_HOLDS (v, G_TYPE_BYTES))
    return;
  gsize size = 0;
  *key = g_bytes_get_data (static_cast<GBytes *> (g_value_get_boxed (v)),
      &size);
  *key_len = *key ? size : 0;
}

/* Hands @msg to librdkafka with @key, applying the queue-full policy; sets
 * @dropped when the policy dropped it. Takes ownership of @msg and of
 * @hdrs. */
static GstFlowReturn
produce (GstKafkaSink *self, SinkMessage *msg, rd_kafka_headers_t *hdrs,
    gint64 timestamp, const void *key, size_t key_len, bool &dropped)
{
  GstKafkaSinkPrivate *priv = self->priv;
  const Session &s = priv->session;
  /* An end-of-stream marker's value is empty, not null (a tombstone). */
  static char empty[] = "";
  void *payload = msg->eos_marker ? static_cast<void *> (empty) : msg->map.data;

  for (;;) {
    guint64 generation;
    {
      std::lock_guard<std::mutex> lk (priv->lock);
      if (priv->failed) {
        rd_kafka_headers_destroy (hdrs);
        priv->pool.give (msg);
        return GST_FLOW_ERROR;
      }
      generation = priv->delivery_generation;
      /* Counted before producev(): the report may come before it returns. */
      priv->stats.messages_queued++;
      priv->stats.bytes_queued += msg->size;
      priv->handing_over.store (gint64 (msg->size), std::memory_order_relaxed);
    }

    /* Zero copy: without RD_KAFKA_MSG_F_COPY (or F_FREE) librdkafka keeps
     * this very pointer as the message's payload and never frees it; the
     * mapping stays valid until the delivery report deletes @msg. */
    rd_kafka_resp_err_t err = rd_kafka_producev (priv->producer.get (),
        RD_KAFKA_V_RKT (priv->rkt), RD_KAFKA_V_PARTITION (s.partition),
        RD_KAFKA_V_MSGFLAGS (0), RD_KAFKA_V_VALUE (payload, msg->size),
        RD_KAFKA_V_KEY (key, key_len), RD_KAFKA_V_HEADERS (hdrs),
        RD_KAFKA_V_TIMESTAMP (timestamp), RD_KAFKA_V_OPAQUE (msg),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      priv->handing_over.store (-1, std::memory_order_release);
      return GST_FLOW_OK;
    }

    std::unique_lock<std::mutex> lk (priv->lock);
    priv->handing_over.store (-1, std::memory_order_relaxed);
    priv->stats.messages_queued--;
    priv->stats.bytes_queued -= msg->size;

    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      if (s.queue_full_policy == GST_KAFKA_SINK_QUEUE_FULL_DROP &&
          !msg->eos_marker && !msg->part) {
        priv->stats.messages_dropped++;
        dropped = true;
        bool warn = !priv->drop_warned;
        priv->drop_warned = true;
        lk.unlock ();
        GST_DEBUG_OBJECT (self,
            "producer queue full, dropped %" G_GSIZE_FORMAT " bytes",
            msg->size);
        if (warn)
          GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
              ("The Kafka producer queue is full: dropping buffers "
               "(queue-full-policy=drop)"),
              ("raise queue.buffering.max.messages / "
               "queue.buffering.max.kbytes, or check the broker"));
        rd_kafka_headers_destroy (hdrs);
        priv->pool.give (msg);
        return GST_FLOW_OK;
      }
      GST_LOG_OBJECT (self, "producer queue full, waiting");
      priv->cond.wait (lk, [&] {
        return priv->delivery_generation != generation || priv->unlocking ||
               priv->failed;
      });
      msg->produced_at = g_get_monotonic_time ();
      if (!priv->unlocking)
        continue;
      lk.unlock ();
      GstFlowReturn ret = msg->eos_marker ? GST_FLOW_FLUSHING
                                          : gst_base_sink_wait_preroll (
                                                GST_BASE_SINK (self));
      if (ret != GST_FLOW_OK) {
        GST_DEBUG_OBJECT (self, "interrupted while waiting for room");
        rd_kafka_headers_destroy (hdrs);
        priv->pool.give (msg);
        return ret;
      }
      continue;
    }

    priv->failed = true;
    lk.unlock ();
    rd_kafka_headers_destroy (hdrs);
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("A frame of %" G_GSIZE_FORMAT " bytes is larger than the Kafka "
           "producer accepts (message.max.bytes=%s): raise message.max.bytes "
           "in the 'config' property, and the topic's max.message.bytes "
           "(broker: message.max.bytes) to match, or let kafkasink split "
           "frames (max-message-size)",
              msg->size, s.message_max_bytes.c_str ()),
          ("%s", gstkafka::err_text (err).c_str ()));
    } else if (err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("Kafka topic '%s' has no partition %d", s.topic.c_str (),
              s.partition),
          ("%s", gstkafka::err_text (err).c_str ()));
    } else if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
          ("Kafka topic '%s' does not exist", s.topic.c_str ()),
          ("%s", gstkafka::err_text (err).c_str ()));
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char fatal[512] = "";
      rd_kafka_fatal_error (priv->producer.get (), fatal, sizeof (fatal));
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("The Kafka producer for topic '%s' failed and cannot continue: %s",
              s.topic.c_str (), fatal),
          ("%s", gstkafka::err_text (err).c_str ()));
    } else {
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("Could not produce to Kafka topic '%s': %s", s.topic.c_str (),
              rd_kafka_err2str (err)),
          ("%s", gstkafka::err_text (err).c_str ()));
    }
    priv->pool.give (msg);
    return GST_FLOW_ERROR;
  }
}

/* While buffers flow, the streaming thread serves the events that are
 * ready (without waiting), so that librdkafka's messages, their headers and
 * the buffers are mostly freed by the thread that allocated them: glibc's
 * per-thread caches make that several times cheaper than freeing them on the
 * delivery thread, which serves the rest (and everything while the stream
 * is idle). */
static void
serve_ready_events (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;
  if (rd_kafka_event_t *ev = rd_kafka_queue_poll (priv->queue.get (), 0))
    serve_event (self, ev, priv->delivered_streaming);
}

/* Whether the caps last travelled at least @interval_us ago, of real time
 * (@now) or of the stream's timestamps (@pts). */
static bool
caps_sent_before (GstKafkaSinkPrivate *priv, gint64 now, GstClockTime pts,
    gint64 interval_us)
{
  GstClockTime last_pts = priv->caps_sent_pts;
  return now - priv->caps_sent_at >= interval_us ||
         (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (last_pts) &&
             (pts < last_pts ||
                 pts - last_pts >= GstClockTime (interval_us) * GST_USECOND));
}

/* The largest payload of one message (max-message-size), for a message
 * with @key_len bytes of key and @caps_len bytes of caps. */
static gsize
max_part_size (GstKafkaSink *self, size_t key_len, size_t caps_len)
{
  GstKafkaSinkPrivate *priv = self->priv;
  const Session &s = priv->session;

  if (s.max_message_size > 0)
    return s.max_message_size;
  if (s.max_message_size == 0)
    return G_MAXSIZE;
  if (G_UNLIKELY (!priv->topic_limit_waited)) {
    /* The first buffer waits (briefly) for what the topic takes. */
    priv->topic_limit_waited = true;
    std::unique_lock<std::mutex> lk (priv->lock);
    priv->cond.wait_for (lk, std::chrono::milliseconds (TOPIC_LIMIT_WAIT_MS),
        [&] {
          return priv->topic_limit_known || priv->unlocking || priv->failed;
        });
  }
  gint64 limit = MIN (priv->topic_max_bytes.load (std::memory_order_relaxed),
      s.producer_max_bytes);
  gint64 room = SPLIT_HEADROOM + gint64 (key_len) + gint64 (caps_len);
  return limit - room > MIN_PART_SIZE ? gsize (limit - room) : MIN_PART_SIZE;
}

/* Produces @buf (a reference this takes; nullptr is an error), a buffer or
 * a part of one, as one message with @info's headers; sets @dropped when
 * the queue-full policy dropped it. */
static GstFlowReturn
produce_buffer (GstKafkaSink *self, GstBuffer *buf, gint64 produced_at,
    const gstkafka::FrameInfo &info, gint64 timestamp, const void *key,
    size_t key_len, bool &dropped)
{
  GstKafkaSinkPrivate *priv = self->priv;

  SinkMessage *msg = priv->pool.take ();
  if (!buf || !gst_buffer_map (buf, &msg->map, GST_MAP_READ)) {
    if (buf)
      gst_buffer_unref (buf);
    priv->pool.give (msg);
    if (info.frag_count)
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("Could not map part %u of a buffer of %" G_GUINT64_FORMAT " bytes",
              info.frag_index, info.frag_size),
          (nullptr));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
          ("Could not map a buffer for reading"), (nullptr));
    return GST_FLOW_ERROR;
  }
  msg->buffer = buf;
  msg->size = msg->map.size;
  msg->produced_at = produced_at;
  msg->part = info.frag_index > 0;
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (3);
  gstkafka::headers_write (hdrs, info);
  return produce (self, msg, hdrs, timestamp, key, key_len, dropped);
}

/* Produces @buf, of @size bytes, larger than @part_max, as several
 * messages of at most @part_max bytes, each with @info and a gst.frag header
 * that says which part it is; kafkasrc joins them again. Each part is a
 * sub-buffer sharing the buffer's memory: nothing is copied. */
static GstFlowReturn
produce_parts (GstKafkaSink *self, GstBuffer *buf, gsize size,
    gint64 produced_at, gstkafka::FrameInfo info, gint64 timestamp,
    const void *key, size_t key_len, gsize part_max)
{
  GstKafkaSinkPrivate *priv = self->priv;

  if (!priv->split_noted) {
    priv->split_noted = true;
    GST_ELEMENT_INFO (self, RESOURCE, WRITE,
        ("Buffers larger than %" G_GSIZE_FORMAT " bytes go to Kafka topic "
         "'%s' as several messages: kafkasrc joins them again, other Kafka "
         "clients see the parts (see max-message-size)",
            part_max, priv->session.topic.c_str ()),
        ("a buffer of %" G_GSIZE_FORMAT " bytes; the topic takes messages of "
         "up to %" G_GINT64_FORMAT " bytes, the producer %" G_GINT64_FORMAT,
            size, priv->topic_max_bytes.load (),
            priv->session.producer_max_bytes));
  }

  guint32 count = guint32 ((size + part_max - 1) / part_max);
  info.frag_count = count;
  info.frag_size = size;
  GstFlowReturn ret = GST_FLOW_OK;
  for (guint32 i = 0; i < count && ret == GST_FLOW_OK; i++) {
    gsize offset = gsize (i) * part_max;
    gsize len = MIN (part_max, size - offset);
    GstBuffer *part_buf = gst_buffer_copy_region (buf, GST_BUFFER_COPY_MEMORY,
        offset, len);
    info.frag_index = i;
    if (i == 1) {
      /* The caps travel with the first part. */
      info.caps_elsewhere = info.caps_elsewhere || info.caps;
      info.caps = nullptr;
      info.caps_len = 0;
    }
    bool dropped = false;
    ret = produce_buffer (self, part_buf, produced_at, info, timestamp, key,
        key_len, dropped);
    if (dropped)
      break;
  }
  return ret;
}

static GstFlowReturn
gst_kafka_sink_render (GstBaseSink *bsink, GstBuffer *buf)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);
  GstKafkaSinkPrivate *priv = self->priv;

  gsize size = gst_buffer_get_size (buf);
  gstkafka::FrameInfo info;
  gint64 now = g_get_monotonic_time ();
  GstClockTime pts = GST_BUFFER_PTS (buf);
  /* Caps travel after every caps change, and with keyframes, so a consumer
   * that starts in the middle of the topic learns them, as long as they
   * stay a small part of the stream (CAPS_BUDGET, CAPS_SPACING_US). */
  bool keyframe_caps = !GST_BUFFER_FLAG_IS_SET (buf,
                           GST_BUFFER_FLAG_DELTA_UNIT) &&
                       priv->bytes_since_caps >=
                           CAPS_BUDGET * priv->caps.size () &&
                       caps_sent_before (priv, now, pts, CAPS_SPACING_US);
  /* And at least every CAPS_INTERVAL_US, of real time and of the stream's
   * timestamps (a file produced with sync=false goes much faster): some
   * encoders (pngenc) flag every frame as a delta unit although each one
   * stands alone, and a consumer that joins between two keyframes far
   * apart waits for the caps no longer than that. */
  bool caps_due = caps_sent_before (priv, now, pts, CAPS_INTERVAL_US);
  if (priv->caps.empty ()) {
    /* The producer knows no caps: nothing for a consumer to wait for. */
  } else if (keyframe_caps || priv->caps_pending || caps_due) {
    info.caps = priv->caps.c_str ();
    info.caps_len = priv->caps.size ();
    priv->caps_pending = false;
    priv->caps_sent_at = now;
    priv->caps_sent_pts = pts;
    priv->bytes_since_caps = 0;
  } else {
    info.caps_elsewhere = true;
  }
  priv->bytes_since_caps += size;
  info.pts = GST_BUFFER_PTS (buf);
  info.dts = GST_BUFFER_DTS (buf);
  info.duration = GST_BUFFER_DURATION (buf);
  info.flags = GST_BUFFER_FLAGS (buf) & GST_KAFKA_BUFFER_FLAGS_MASK;
  info.session = priv->session_id;
  /* A dropped buffer keeps its number, so consumers can see the gap. */
  info.seq = priv->seq++;

  GST_LOG_OBJECT (self,
      "producing %" G_GSIZE_FORMAT " bytes, seq %" G_GUINT64_FORMAT, size,
      info.seq);
  const void *key;
  size_t key_len;
  message_key (self, buf, &key, &key_len);
  gint64 timestamp = message_timestamp (self, buf);
  GstFlowReturn ret;
  gsize part_max = max_part_size (self, key_len, info.caps_len);
  if (G_UNLIKELY (size > part_max)) {
    ret = produce_parts (self, buf, size, now, info, timestamp, key, key_len,
        part_max);
  } else {
    /* Whole: mapped only now, so that a buffer of several memories to be
     * split is not merged into a copy first. */
    bool dropped = false;
    ret = produce_buffer (self, gst_buffer_ref (buf), now, info, timestamp, key,
        key_len, dropped);
  }
  /* Every SERVE_INTERVAL messages, counted by their sequence numbers. */
  if (info.seq % SERVE_INTERVAL == 0)
    serve_ready_events (self);
  return ret;
}

/* A buffer list (from kafkasrc buffer-list=true, RTP payloaders, appsrc):
 * GstBaseSink prerolls, synchronises and accounts once for the whole list,
 * and every buffer is a message of its own, as in render(). */
static GstFlowReturn
gst_kafka_sink_render_list (GstBaseSink *bsink, GstBufferList *list)
{
  guint n = gst_buffer_list_length (list);
  for (guint i = 0; i < n; i++) {
    GstFlowReturn ret = gst_kafka_sink_render (bsink,
        gst_buffer_list_get (list, i));
    if (ret != GST_FLOW_OK)
      return ret;
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
produce_eos_marker (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;
  SinkMessage *msg = priv->pool.take ();
  msg->eos_marker = true;
  msg->produced_at = g_get_monotonic_time ();

  gstkafka::FrameInfo info;
  info.eos = true;
  info.session = priv->session_id;
  info.seq = priv->seq++;
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (2);
  gstkafka::headers_write (hdrs, info);

  GST_DEBUG_OBJECT (self,
      "producing end-of-stream marker, seq %" G_GUINT64_FORMAT, info.seq);
  const Session &s = priv->session;
  bool dropped = false;
  return produce (self, msg, hdrs, g_get_real_time () / 1000,
      s.key.empty () ? nullptr : s.key.data (), s.key.size (), dropped);
}

/* EOS: optionally the marker, then every outstanding message delivered
 * before the EOS message is posted. */
static gboolean
handle_eos (GstKafkaSink *self)
{
  GstKafkaSinkPrivate *priv = self->priv;

  if (priv->session.eos_marker && produce_eos_marker (self) != GST_FLOW_OK)
    return FALSE;

  bool interrupted = false;
  guint64 left = flush_messages (self, priv->session.flush_timeout,
      FLUSH_INTERRUPTIBLE | FLUSH_UNTIL_ERROR, &interrupted);
  if (interrupted) {
    GST_DEBUG_OBJECT (self, "flush at EOS interrupted");
    return FALSE;
  }
  if (left > 0) {
    {
      std::lock_guard<std::mutex> lk (priv->lock);
      /* The error is on the bus; stop() discards the rest. */
      if (priv->failed)
        return FALSE;
      priv->failed = true;
    }
    priv->cond.notify_all ();
    report_undelivered (self, left, false);
    return FALSE;
  }

  std::lock_guard<std::mutex> lk (priv->lock);
  /* A delivery error already went to the bus: no EOS after it. */
  return !priv->failed;
}

static gboolean
gst_kafka_sink_event (GstBaseSink *bsink, GstEvent *event)
{
  GstKafkaSink *self = GST_KAFKA_SINK (bsink);

  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_EOS:
    if (!handle_eos (self)) {
      gst_event_unref (event);
      return FALSE;
    }
    break;
  case GST_EVENT_FLUSH_STOP:
    /* Running time starts again: so does its wall-clock anchor. */
    self->priv->wallclock_anchor = GST_CLOCK_TIME_NONE;
    break;
  default:
    break;
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (bsink, event);
}

static GstStateChangeReturn
gst_kafka_sink_change_state (GstElement *element, GstStateChange transition)
{
  GstKafkaSink *self = GST_KAFKA_SINK (element);
  GstKafkaSinkPrivate *priv = self->priv;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    /* A new stream: its running time, its caps. */
    priv->caps_pending = true;
    priv->caps_sent_at = 0;
    priv->caps_sent_pts = GST_CLOCK_TIME_NONE;
    priv->bytes_since_caps = 0;
    priv->wallclock_anchor = GST_CLOCK_TIME_NONE;
    /* A delivery error does not outlive the stream, a fatal one does. */
    char fatal[256];
    std::lock_guard<std::mutex> lk (priv->lock);
    if (priv->producer && rd_kafka_fatal_error (priv->producer.get (), fatal,
                              sizeof (fatal)) == RD_KAFKA_RESP_ERR_NO_ERROR)
      priv->failed = false;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)
                                 ->change_state (element, transition);

  /* GstBaseSink stops only at NULL: READY already means every message is
   * delivered or reported. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY && priv->producer)
    finish_outstanding (self);
  return ret;
}

/* --- GObject ------------------------------------------------------------- */

static void
gst_kafka_sink_finalize (GObject *object)
{
  GstKafkaSink *self = GST_KAFKA_SINK (object);

  gst_caps_unref (self->priv->unix_caps);
  delete self->priv;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_kafka_sink_init (GstKafkaSink *self)
{
  self->priv = new GstKafkaSinkPrivate ();
  self->priv->unix_caps = gst_caps_new_empty_simple ("timestamp/x-unix");
  self->priv->pin.self = self;
  /* The last sample is for snapshots of what a video sink shows; keeping it
   * costs a lock and a reference per message and holds a buffer back from
   * its pool. It can still be enabled. */
  gst_base_sink_set_last_sample_enabled (GST_BASE_SINK (self), FALSE);
}

static void
gst_kafka_sink_class_init (GstKafkaSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);
  const GParamFlags rw = GParamFlags (
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const GParamFlags ro = GParamFlags (
      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  GST_DEBUG_CATEGORY_INIT (gst_kafka_sink_debug, "kafkasink", 0,
      "Kafka producer sink");

  gobject_class->set_property = gst_kafka_sink_set_property;
  gobject_class->get_property = gst_kafka_sink_get_property;
  gobject_class->finalize = gst_kafka_sink_finalize;

  /**
   * GstKafkaSink:uri:
   *
   * The Kafka topic to write to as a URI,
   * `kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?PROPERTY=VALUE&...]`, e.g.
   * `kafka://localhost:9092/my-topic?key=camera-1&linger.ms=0`. It sets
   * #GstKafkaSink:brokers (the default ones when no host is given) and
   * #GstKafkaSink:topic, and each query parameter sets the property of that
   * name; a parameter whose name contains a '.' is a librdkafka setting,
   * applied after #GstKafkaSink:config. Names and values are percent-decoded.
   * The element is also a URI handler for `kafka://`, so such a URI works
   * wherever GStreamer takes one
   * (`gst-launch-1.0`, `playbin`, `uridecodebin`,
   * gst_element_make_from_uri()). A URI that cannot be applied is reported
   * as an error when the element starts. Secret settings read back as
   * `****`, but players log the URIs they open: keep passwords in
   * #GstKafkaSink:config-file, not in a URI.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_URI,
      g_param_spec_string ("uri", "URI",
          "kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?PROPERTY=VALUE&...]: sets "
          "brokers, topic and the properties named in the query",
          nullptr, rw));

  /**
   * GstKafkaSink:brokers:
   *
   * Bootstrap servers: comma-separated host:port list (librdkafka's
   * `bootstrap.servers`). A `bootstrap.servers` in #GstKafkaSink:config-file
   * or #GstKafkaSink:config takes precedence.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_BROKERS,
      g_param_spec_string ("brokers", "Brokers",
          "Kafka bootstrap servers, comma-separated host:port list",
          GST_KAFKA_DEFAULT_BROKERS, rw));

  /**
   * GstKafkaSink:topic:
   *
   * The topic every buffer is produced to. Required.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TOPIC,
      g_param_spec_string ("topic", "Topic",
          "Kafka topic to produce to (required)", DEFAULT_TOPIC, rw));

  /**
   * GstKafkaSink:key:
   *
   * A fixed key given to every message, or none. With partition=-1, the
   * key chooses the partition (librdkafka's `partitioner` setting), so all
   * the messages go to one partition, in order. Unset, a buffer read by
   * kafkasrc with `add-kafka-meta=true` keeps the key of its message (and
   * goes to Kafka's partition for that key): a copy of a topic keeps its
   * keys.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_KEY,
      g_param_spec_string ("key", "Key",
          "Key of every message (none when unset); with partition=-1 the key "
          "chooses the partition",
          DEFAULT_KEY, rw));

  /**
   * GstKafkaSink:partition:
   *
   * The partition every message goes to, or -1 to let it be chosen.
   * Kafka keeps messages in order within a partition only, so with -1 every
   * message of a session still goes to one partition: the key's (see
   * #GstKafkaSink:key), or without a key the one that librdkafka's
   * `client.id` (by default the element's name) hashes to, so that a
   * producer that starts again writes after what it wrote before and the
   * topic replays in order; if that partition has no leader when the first
   * message is sent, the next one that has. As with a key, the session then
   * stays with its partition: when the partition's leader goes away, its
   * messages wait for the next one (a replicated topic elects one within
   * seconds) rather than go elsewhere out of order. Setting librdkafka's
   * `partitioner` in #GstKafkaSink:config to something other than its
   * default (`consistent_random`) hands every message to that partitioner
   * instead; `partitioner=random` spreads the messages over all partitions,
   * and consumers then see them out of order.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PARTITION,
      g_param_spec_int ("partition", "Partition",
          "Partition to produce to; -1: the key's, or without a key the "
          "client.id's",
          -1, G_MAXINT32, DEFAULT_PARTITION, rw));

  /**
   * GstKafkaSink:config:
   *
   * Any librdkafka producer setting (see librdkafka's CONFIGURATION.md), as
   * the fields of a structure whose name is ignored, e.g.
   * `config="kafka, linger.ms=20, compression.type=lz4,
   * security.protocol=SASL_SSL"`. Applied after #GstKafkaSink:config-file.
   * An unknown key or a bad value fails the change to PAUSED with an error
   * naming it. Secret values (passwords, keys) read back as `****`.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CONFIG,
      g_param_spec_boxed ("config", "Config",
          "librdkafka settings as a structure, e.g. \"kafka, linger.ms=20, "
          "compression.type=lz4\"; override config-file and the defaults "
          "(enable.idempotence=true, acks=all, message.max.bytes=16777216, "
          "linger.ms=5, client.id=element name)",
          GST_TYPE_STRUCTURE, rw));

  /**
   * GstKafkaSink:config-file:
   *
   * A librdkafka / Java client properties file: `key=value` lines, `#`
   * comments, as used by `kcat -F`. Applied after the defaults and
   * #GstKafkaSink:brokers, before #GstKafkaSink:config.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CONFIG_FILE,
      g_param_spec_string ("config-file", "Config file",
          "Path of a librdkafka/Java-style properties file (key=value lines, "
          "like kcat -F)",
          nullptr, rw));

  /**
   * GstKafkaSink:queue-full-policy:
   *
   * What to do with a buffer when librdkafka's producer queue is full
   * (`queue.buffering.max.messages`, `queue.buffering.max.kbytes`): wait
   * for room, which backpressures upstream (`block`), or drop the buffer
   * and count it in #GstKafkaSink:messages-dropped (`drop`). A dropped
   * buffer still uses up a sequence number, so consumers see the gap.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_QUEUE_FULL_POLICY,
      g_param_spec_enum ("queue-full-policy", "Queue full policy",
          "What to do when the producer queue is full",
          GST_TYPE_KAFKA_SINK_QUEUE_FULL_POLICY, DEFAULT_QUEUE_FULL_POLICY,
          rw));

  /**
   * GstKafkaSink:flush-timeout:
   *
   * How long EOS and the change to READY wait for the delivery of
   * outstanding messages, in milliseconds. Messages still undelivered then
   * are discarded and reported in an error. 0 waits until each message is
   * delivered or fails (librdkafka's `message.timeout.ms`, 5 minutes by
   * default).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_FLUSH_TIMEOUT,
      g_param_spec_uint ("flush-timeout", "Flush timeout",
          "Milliseconds EOS and the change to READY wait for outstanding "
          "messages (0 = until message.timeout.ms)",
          0, G_MAXUINT, DEFAULT_FLUSH_TIMEOUT, rw));

  /**
   * GstKafkaSink:eos-marker:
   *
   * Whether EOS produces an end-of-stream marker: a message with an empty
   * value and a `gst.eos` header, which tells kafkasrc and other consumers
   * of a finite stream that it ended. Off by default because a topic
   * usually holds a stream that goes on: producers that restart would
   * leave markers in the middle of it.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_EOS_MARKER,
      g_param_spec_boolean ("eos-marker", "EOS marker",
          "Produce an end-of-stream marker message (empty value, header "
          "gst.eos) on EOS",
          DEFAULT_EOS_MARKER, rw));

  /**
   * GstKafkaSink:max-message-size:
   *
   * The largest payload of one Kafka message, in bytes. A larger buffer
   * goes to Kafka as several messages, its parts, each with a `gst.frag`
   * header; kafkasrc joins them into one buffer again, without copying (see
   * docs/message-format.md). Other Kafka clients see the parts.
   *
   * -1 (the default) fits the topic: at start kafkasink asks the broker for
   * the topic's `max.message.bytes` (the first buffer waits up to two
   * seconds for the answer; without one, Kafka's default of 1048588 is
   * assumed), and splits the buffers that would exceed it or librdkafka's
   * `message.max.bytes`, whichever is smaller. So a 1080p PNG frame of a
   * few megabytes goes through a broker with Kafka's default settings.
   * 0 never splits: a buffer the topic does not take is an error, as for
   * a topic that other clients read whole. The message counters
   * (#GstKafkaSink:messages-delivered and the others) count each part.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MAX_MESSAGE_SIZE,
      g_param_spec_int ("max-message-size", "Max message size",
          "Largest payload of one message: larger buffers are split into "
          "several, which kafkasrc joins again (-1 = what the topic takes, "
          "0 = never split)",
          -1, G_MAXINT, DEFAULT_MAX_MESSAGE_SIZE, rw));

  /**
   * GstKafkaSink:messages-queued:
   *
   * Messages handed to librdkafka that have no delivery report yet.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MESSAGES_QUEUED,
      g_param_spec_uint64 ("messages-queued", "Messages queued",
          "Messages waiting for their delivery report", 0, G_MAXUINT64, 0, ro));

  /**
   * GstKafkaSink:bytes-queued:
   *
   * Payload bytes of #GstKafkaSink:messages-queued.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_BYTES_QUEUED,
      g_param_spec_uint64 ("bytes-queued", "Bytes queued",
          "Payload bytes waiting for their delivery report", 0, G_MAXUINT64, 0,
          ro));

  /**
   * GstKafkaSink:messages-delivered:
   *
   * Messages the broker acknowledged since the element started.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MESSAGES_DELIVERED,
      g_param_spec_uint64 ("messages-delivered", "Messages delivered",
          "Messages acknowledged by the broker since start", 0, G_MAXUINT64, 0,
          ro));

  /**
   * GstKafkaSink:bytes-delivered:
   *
   * Payload bytes of #GstKafkaSink:messages-delivered.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_BYTES_DELIVERED,
      g_param_spec_uint64 ("bytes-delivered", "Bytes delivered",
          "Payload bytes acknowledged by the broker since start", 0,
          G_MAXUINT64, 0, ro));

  /**
   * GstKafkaSink:messages-failed:
   *
   * Messages whose delivery failed (including those discarded at the end
   * of #GstKafkaSink:flush-timeout) since the element started.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MESSAGES_FAILED,
      g_param_spec_uint64 ("messages-failed", "Messages failed",
          "Messages whose delivery failed since start", 0, G_MAXUINT64, 0, ro));

  /**
   * GstKafkaSink:messages-dropped:
   *
   * Buffers dropped because the producer queue was full, with
   * #GstKafkaSink:queue-full-policy `drop`.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MESSAGES_DROPPED,
      g_param_spec_uint64 ("messages-dropped", "Messages dropped",
          "Buffers dropped on a full producer queue since start", 0,
          G_MAXUINT64, 0, ro));

  /**
   * GstKafkaSink:last-delivery-latency:
   *
   * Time from handing the last delivered message to librdkafka to its
   * acknowledgement, in nanoseconds; GST_CLOCK_TIME_NONE before the first.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_LAST_DELIVERY_LATENCY,
      g_param_spec_uint64 ("last-delivery-latency", "Last delivery latency",
          "Nanoseconds from produce to acknowledgement of the last delivered "
          "message (18446744073709551615 = none yet)",
          0, G_MAXUINT64, GST_CLOCK_TIME_NONE, ro));

  /**
   * GstKafkaSink:stats:
   *
   * All the counters above in one consistent snapshot, as a
   * `GstKafkaSinkStats` structure with fields named like the properties.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Snapshot of all the counters (GstKafkaSinkStats structure)",
          GST_TYPE_STRUCTURE, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "Kafka sink",
      "Sink/Network",
      "Produces every buffer as a message to an Apache Kafka "
      "topic",
      "gst-kafka developers");

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_kafka_sink_change_state);

  basesink_class->start = GST_DEBUG_FUNCPTR (gst_kafka_sink_start);
  basesink_class->stop = GST_DEBUG_FUNCPTR (gst_kafka_sink_stop);
  basesink_class->unlock = GST_DEBUG_FUNCPTR (gst_kafka_sink_unlock);
  basesink_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_kafka_sink_unlock_stop);
  basesink_class->set_caps = GST_DEBUG_FUNCPTR (gst_kafka_sink_set_caps);
  basesink_class->render = GST_DEBUG_FUNCPTR (gst_kafka_sink_render);
  basesink_class->render_list = GST_DEBUG_FUNCPTR (gst_kafka_sink_render_list);
  basesink_class->event = GST_DEBUG_FUNCPTR (gst_kafka_sink_event);

  gst_type_mark_as_plugin_api (GST_TYPE_KAFKA_SINK_QUEUE_FULL_POLICY,
      GstPluginAPIFlags (0));
}
