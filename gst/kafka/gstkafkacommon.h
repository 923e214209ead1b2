/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Code shared by kafkasink and kafkasrc: librdkafka configuration, RAII
 * handles, and the codec of the Kafka headers that carry a GstBuffer's
 * metadata (see docs/message-format.md). C++ only. */

#pragma once

#include <gst/gst.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>

G_BEGIN_DECLS

/* Header names; the wire format is described in docs/message-format.md.
 * kafkasink writes gst.caps, gst.buf and gst.eos; kafkasrc also reads the
 * one-field-per-header form (gst.pts ... gst.seq) that other producers may
 * find simpler to write. */
#define GST_KAFKA_HEADER_CAPS "gst.caps"
#define GST_KAFKA_HEADER_BUF "gst.buf"
#define GST_KAFKA_HEADER_PTS "gst.pts"
#define GST_KAFKA_HEADER_DTS "gst.dts"
#define GST_KAFKA_HEADER_DURATION "gst.duration"
#define GST_KAFKA_HEADER_FLAGS "gst.flags"
#define GST_KAFKA_HEADER_SESSION "gst.session"
#define GST_KAFKA_HEADER_SEQ "gst.seq"
#define GST_KAFKA_HEADER_EOS "gst.eos"
#define GST_KAFKA_HEADER_FRAG "gst.frag"

/* GST_KAFKA_HEADER_BUF, big-endian: version:1, present:1 (bit 0 pts,
 * bit 1 dts, bit 2 duration), flags:4, session:8, seq:8, then the present
 * times, 8 bytes each, in that order. */
#define GST_KAFKA_BUF_VERSION 1
#define GST_KAFKA_BUF_FIXED_SIZE 22
#define GST_KAFKA_BUF_MAX_SIZE (GST_KAFKA_BUF_FIXED_SIZE + 3 * 8)

/* GST_KAFKA_HEADER_FRAG, on each message of a buffer split into several,
 * big-endian: version:1, index:4 (from 0), count:4, size:8 (the whole
 * buffer's). */
#define GST_KAFKA_FRAG_VERSION 1
#define GST_KAFKA_FRAG_SIZE 17

/* The buffer flags that travel in GST_KAFKA_HEADER_BUF and
 * GST_KAFKA_HEADER_FLAGS. */
#define GST_KAFKA_BUFFER_FLAGS_MASK                                            \
  (GST_BUFFER_FLAG_DISCONT | GST_BUFFER_FLAG_DELTA_UNIT |                      \
      GST_BUFFER_FLAG_HEADER | GST_BUFFER_FLAG_GAP |                           \
      GST_BUFFER_FLAG_DROPPABLE | GST_BUFFER_FLAG_MARKER |                     \
      GST_BUFFER_FLAG_RESYNC | GST_BUFFER_FLAG_CORRUPTED)

/* Not a buffer flag: set in the flags of a message whose producer has caps
 * but sent them with other messages of the stream (kafkasink sends them
 * with the first message, after each change and at least once a second).
 * A consumer that has none waits for them. Bit 31 is free in
 * GstBufferFlags and outside GST_KAFKA_BUFFER_FLAGS_MASK, so readers that
 * do not know it ignore it. */
#define GST_KAFKA_FLAG_CAPS_ELSEWHERE (1u << 31)

/* Default bootstrap servers of both elements. */
#define GST_KAFKA_DEFAULT_BROKERS "localhost:9092"

/* Largest message the elements accept by default: a 10 MiB frame plus its
 * headers, with room to spare. */
#define GST_KAFKA_DEFAULT_MESSAGE_MAX_BYTES (16 * 1024 * 1024)

G_END_DECLS

namespace gstkafka {

struct HandleDeleter
{
  void operator() (rd_kafka_t *rk) const
  {
    rd_kafka_destroy (rk);
  }
};
struct ConfDeleter
{
  void operator() (rd_kafka_conf_t *c) const
  {
    rd_kafka_conf_destroy (c);
  }
};
struct TopicPartitionListDeleter
{
  void operator() (rd_kafka_topic_partition_list_t *l) const
  {
    rd_kafka_topic_partition_list_destroy (l);
  }
};
struct MessageDeleter
{
  void operator() (rd_kafka_message_t *m) const
  {
    rd_kafka_message_destroy (m);
  }
};
struct HeadersDeleter
{
  void operator() (rd_kafka_headers_t *h) const
  {
    rd_kafka_headers_destroy (h);
  }
};
struct ErrorDeleter
{
  void operator() (rd_kafka_error_t *e) const
  {
    rd_kafka_error_destroy (e);
  }
};
struct QueueDeleter
{
  void operator() (rd_kafka_queue_t *q) const
  {
    rd_kafka_queue_destroy (q);
  }
};
struct EventDeleter
{
  void operator() (rd_kafka_event_t *e) const
  {
    rd_kafka_event_destroy (e);
  }
};

using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using Conf = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using TopicPartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, TopicPartitionListDeleter>;
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using Headers = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;
using Error = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;
using Queue = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using Event = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

/* One librdkafka property to set before the user's own settings. */
struct ConfDefault
{
  const char *key;
  const char *value;
};

/* Builds a librdkafka configuration in this order, each step overriding the
 * ones before: @defaults, bootstrap.servers = @brokers, the properties file
 * @config_file (Java/librdkafka style "key=value" lines, '#' comments, like
 * kcat -F), then the fields of @config (a GstStructure whose name is
 * ignored), then the librdkafka settings of the element's kafka:// URI.
 * client.id defaults to the element's name. librdkafka's log is
 * forwarded into @cat with @element as the object, and @element becomes the
 * configuration's opaque.
 *
 * On failure returns nullptr and sets @error (GST_RESOURCE_ERROR_SETTINGS)
 * with a message naming the offending key and librdkafka's explanation. */
Conf conf_new (GstElement *element, GstDebugCategory *cat,
    const ConfDefault *defaults, gsize n_defaults, const gchar *brokers,
    const gchar *config_file, const GstStructure *config, GError **error);

/* Whether @key is a setting whose value must never be logged. */
bool conf_key_is_secret (const char *key);

/* A GstStructure with every secret value replaced by "****", for logging
 * and for property getters. Returns a new structure or nullptr. */
GstStructure *conf_redact (const GstStructure *config);

/* Why @topic cannot be a Kafka topic name, or "" when it can: the broker
 * accepts 1 to 249 characters, each an ASCII letter, digit, '.', '_' or
 * '-', other than "." and "..". */
std::string topic_name_problem (const std::string &topic);

/* --- kafka:// URIs ------------------------------------------------------- */

/* Both elements are URI handlers for
 * "kafka://[HOST[:PORT][,HOST[:PORT]...]]/TOPIC[?KEY=VALUE[&KEY=VALUE...]]":
 * the authority sets `brokers` (the default brokers when it is empty), the
 * path `topic`, and each query parameter the element property KEY or, when
 * KEY contains a '.', the librdkafka setting KEY, which conf_new() applies
 * after `config`. Keys and values are percent-decoded.
 *
 * The GstURIHandler interface of both (a source or a sink by base class):
 * get_uri gives "kafka://BROKERS/TOPIC" and the query of the URI last set
 * (nullptr while no topic is set); set_uri sets every property the URI
 * names or, on error, none, and is refused above READY (the properties
 * apply at start). */
void uri_handler_init (gpointer iface, gpointer data);

/* The `uri` property: like set_uri, but a refused URI is kept, for
 * start() to report through uri_problem(). */
void uri_set_property (GstElement *element, const gchar *uri);
gchar *uri_get_property (GstElement *element);

/* Why the URI set through the `uri` property was refused, or "". */
std::string uri_problem (GstElement *element);

/* --- GstKafkaMeta -------------------------------------------------------- */

/* Name of the GstCustomMeta kafkasrc attaches with add-kafka-meta=true. */
#define GST_KAFKA_META_NAME "GstKafkaMeta"

/* Registers GstKafkaMeta (once). */
void kafka_meta_register ();

/* Attaches a GstKafkaMeta describing @m, a message of @topic, to @buf. */
void kafka_meta_add (GstBuffer *buf, const char *topic,
    const rd_kafka_message_t *m);

/* --- Message headers ----------------------------------------------------- */

/* What kafkasink writes into a message's headers about its buffer. */
struct FrameInfo
{
  /* Caps string, nullptr when the message carries none. */
  const char *caps = nullptr;
  size_t caps_len = 0;
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime dts = GST_CLOCK_TIME_NONE;
  GstClockTime duration = GST_CLOCK_TIME_NONE;
  /* has_*: whether a decoded message gave the field; headers_write()
   * ignores them. */
  guint32 flags = 0;
  bool has_flags = false;
  guint64 session = 0;
  bool has_session = false;
  guint64 seq = 0;
  bool has_seq = false;
  bool eos = false;
  /* GST_KAFKA_FLAG_CAPS_ELSEWHERE: no gst.caps here, but the stream has
   * caps. headers_write() writes it only with has_flags' flags. */
  bool caps_elsewhere = false;
  /* The message is part @frag_index of @frag_count of a buffer of
   * @frag_size bytes; frag_count is 0 for a whole buffer. */
  guint32 frag_index = 0;
  guint32 frag_count = 0;
  guint64 frag_size = 0;
  /* Whether any gst.* header was present. */
  bool has_gst_headers = false;
};

/* Appends @info's headers to @hdrs: gst.caps when info->caps is set,
 * gst.buf (flags, session and seq whatever their has_ flags), gst.frag when
 * info->frag_count is set, and gst.eos when info->eos is set. */
void headers_write (rd_kafka_headers_t *hdrs, const FrameInfo &info);

/* Decodes one header into @info. Headers that are not gst.* are ignored.
 * Returns false and fills @problem (for a warning naming the header) when a
 * gst.* header is malformed: wrong size, not valid UTF-8 caps, a repeated
 * header; @info keeps whatever was decoded before. Pure function of its
 * inputs: this is what the fuzzer drives. */
bool header_parse (FrameInfo &info, const char *name, const void *value,
    size_t size, std::string &problem);

/* Decodes every header of @hdrs. Returns false when at least one was
 * malformed; @problems then lists them, separated by "; ". */
bool headers_parse (const rd_kafka_headers_t *hdrs, FrameInfo &info,
    std::string &problems);

/* headers_parse() on the headers of @msg. */
bool headers_read (const rd_kafka_message_t *msg, FrameInfo &info,
    std::string &problems);

/* Parses @info's caps. Returns nullptr and fills @problem when the string
 * does not parse or does not describe fixed caps. */
GstCaps *frame_info_parse_caps (const FrameInfo &info, std::string &problem);

/* Error text of librdkafka for logging: "NAME: description". */
std::string err_text (rd_kafka_resp_err_t err);

} // namespace gstkafka
