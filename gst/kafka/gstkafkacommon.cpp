/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkafkacommon.h"

#include <gst/base/gstbasesrc.h>

#include <cstring>
#include <vector>

namespace gstkafka {

static GQuark
debug_category_quark (void)
{
  static GQuark q = g_quark_from_static_string ("gst-kafka-debug-category");
  return q;
}

/* librdkafka calls this from its own threads; GStreamer logging is thread
 * safe and the element outlives its rd_kafka_t. */
static void
log_cb (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  auto element = static_cast<GObject *> (rd_kafka_opaque (rk));
  if (!element)
    return;
  auto cat = static_cast<GstDebugCategory *> (
      g_object_get_qdata (element, debug_category_quark ()));
  if (!cat)
    return;

  GstDebugLevel gst_level;
  if (level <= 3)
    gst_level = GST_LEVEL_ERROR;
  else if (level == 4)
    gst_level = GST_LEVEL_WARNING;
  else if (level <= 6)
    gst_level = GST_LEVEL_INFO;
  else
    gst_level = GST_LEVEL_DEBUG;
  GST_CAT_LEVEL_LOG (cat, gst_level, element, "librdkafka %s: %s", fac, buf);
}

bool
conf_key_is_secret (const char *key)
{
  static const char *secret_words[] = {"password", "secret", "key.pem", "token",
      "sasl.jaas", "credentials"};
  for (const char *w : secret_words) {
    if (strstr (key, w))
      return true;
  }
  /* ssl.key.location is a path, not a secret; its password is covered. */
  return false;
}

GstStructure *
conf_redact (const GstStructure *config)
{
  if (!config)
    return nullptr;
  GstStructure *copy = gst_structure_copy (config);
  gst_structure_filter_and_map_in_place (
      copy,
      [] (GQuark field, GValue *value, gpointer) -> gboolean {
        if (conf_key_is_secret (g_quark_to_string (field))) {
          g_value_unset (value);
          g_value_init (value, G_TYPE_STRING);
          g_value_set_static_string (value, "****");
        }
        return TRUE;
      },
      nullptr);
  return copy;
}

/* Kafka's own rule (org.apache.kafka.common.internals.Topic). */
#define TOPIC_NAME_MAX 249

std::string
topic_name_problem (const std::string &topic)
{
  if (topic.empty ())
    return "it is empty";
  if (topic == "." || topic == "..")
    return "'.' and '..' are not allowed";
  if (topic.size () > TOPIC_NAME_MAX)
    return "it has " + std::to_string (topic.size ()) +
           " characters, at most " G_STRINGIFY (TOPIC_NAME_MAX) " are allowed";
  for (unsigned char c : topic) {
    if (g_ascii_isalnum (c) || c == '.' || c == '_' || c == '-')
      continue;
    gchar shown[16];
    if (g_ascii_isprint (c))
      g_snprintf (shown, sizeof (shown), "'%c'", c);
    else
      g_snprintf (shown, sizeof (shown), "byte 0x%02x", c);
    return std::string ("it contains ") + shown +
           ": only ASCII letters, digits, '.', '_' and '-' are allowed";
  }
  return "";
}

/* --- kafka:// URIs ------------------------------------------------------- */

#define URI_SCHEME "kafka"
#define URI_PREFIX URI_SCHEME "://"

static const gchar *const uri_protocols[] = {URI_SCHEME, nullptr};

/* The query of the URI last set, its librdkafka settings (for conf_new()),
 * and why a URI set through the `uri` property was refused; qdata of the
 * element, under its object lock. */
static GQuark
uri_query_quark (void)
{
  static GQuark q = g_quark_from_static_string ("gst-kafka-uri-query");
  return q;
}

static GQuark
uri_settings_quark (void)
{
  static GQuark q = g_quark_from_static_string ("gst-kafka-uri-settings");
  return q;
}

static GQuark
uri_problem_quark (void)
{
  static GQuark q = g_quark_from_static_string ("gst-kafka-uri-problem");
  return q;
}

static const gchar *
element_kind (GstElement *element)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  return factory ? GST_OBJECT_NAME (factory) : G_OBJECT_TYPE_NAME (element);
}

static GstURIType
uri_get_type (GType type)
{
  return g_type_is_a (type, GST_TYPE_BASE_SRC) ? GST_URI_SRC : GST_URI_SINK;
}

static const gchar *const *
uri_get_protocols (GType)
{
  return uri_protocols;
}

/* @query with the values of secret settings (conf_key_is_secret())
 * replaced by "****", for showing. */
static std::string
uri_query_redacted (const std::string &query)
{
  std::string out;
  g_auto (GStrv) params = g_strsplit (query.c_str (), "&", -1);
  for (gchar **p = params; *p; p++) {
    if (p != params)
      out += '&';
    const gchar *eq = strchr (*p, '=');
    g_autofree gchar *key = eq ? g_uri_unescape_segment (*p, eq, nullptr)
                               : nullptr;
    if (key && conf_key_is_secret (key))
      out.append (*p, eq - *p).append ("=****");
    else
      out += *p;
  }
  return out;
}

/* @uri as it may be shown: secrets in its query redacted. */
static std::string
uri_shown (const gchar *uri)
{
  std::string s (uri);
  std::string::size_type qmark = s.find ('?');
  if (qmark == std::string::npos)
    return s;
  return s.substr (0, qmark + 1) + uri_query_redacted (s.substr (qmark + 1));
}

static gchar *
uri_get_uri (GstURIHandler *handler)
{
  GstElement *element = GST_ELEMENT (handler);
  g_autofree gchar *brokers = nullptr;
  g_autofree gchar *topic = nullptr;

  g_object_get (element, "brokers", &brokers, "topic", &topic, nullptr);
  if (!topic)
    return nullptr;
  GST_OBJECT_LOCK (element);
  const gchar *query = static_cast<const gchar *> (
      g_object_get_qdata (G_OBJECT (element), uri_query_quark ()));
  std::string shown = query ? "?" + uri_query_redacted (query) : "";
  GST_OBJECT_UNLOCK (element);
  return g_strconcat (URI_PREFIX, brokers ? brokers : "", "/", topic,
      shown.c_str (), nullptr);
}

/* Percent-decodes @s; nullptr for a malformed escape or, with @illegal,
 * one of its characters decoded. */
static gchar *
uri_unescape (const std::string &s, const gchar *illegal = nullptr)
{
  return g_uri_unescape_segment (s.data (), s.data () + s.size (), illegal);
}

/* One property that a URI sets. */
struct UriProperty
{
  GParamSpec *pspec;
  GValue value = G_VALUE_INIT;

  explicit UriProperty (GParamSpec *p) : pspec (p)
  {
    g_value_init (&value, p->value_type);
  }
  UriProperty (const UriProperty &) = delete;
  UriProperty &operator= (const UriProperty &) = delete;
  UriProperty (UriProperty &&o) noexcept : pspec (o.pspec)
  {
    value = o.value;
    o.value = G_VALUE_INIT;
  }
  ~UriProperty ()
  {
    if (G_IS_VALUE (&value))
      g_value_unset (&value);
  }
};

/* Parses @uri against @element's properties. On success fills @brokers,
 * @topic, @props, @settings (its librdkafka settings, nullptr when it has
 * none) and @query. */
static bool
uri_parse (GstElement *element, const gchar *uri, std::string &brokers,
    std::string &topic, std::vector<UriProperty> &props,
    GstStructure **settings, std::string &query, GError **error)
{
  const gchar *kind = element_kind (element);
  *settings = nullptr;

  if (!uri || g_ascii_strncasecmp (uri, URI_PREFIX, strlen (URI_PREFIX))) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_UNSUPPORTED_PROTOCOL,
        "'%s' is not a kafka:// URI",
        uri ? uri_shown (uri).c_str () : "(null)");
    return false;
  }
  std::string shown = uri_shown (uri);
  std::string rest (uri + strlen (URI_PREFIX));
  std::string::size_type hash = rest.find ('#');
  if (hash != std::string::npos)
    rest.erase (hash);
  std::string::size_type qmark = rest.find ('?');
  if (qmark != std::string::npos) {
    query = rest.substr (qmark + 1);
    rest.erase (qmark);
  }
  std::string::size_type slash = rest.find ('/');
  if (slash == std::string::npos || slash + 1 == rest.size ()) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "'%s' names no topic: the form is "
        "kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?PROPERTY=VALUE&...]",
        shown.c_str ());
    return false;
  }

  g_autofree gchar *authority = uri_unescape (rest.substr (0, slash));
  if (!authority) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "'%s': malformed %%-escape in the brokers", shown.c_str ());
    return false;
  }
  if (strchr (authority, '@')) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "A kafka:// URI takes no user name or password (not shown here); "
        "give sasl.username and sasl.password in the config-file property");
    return false;
  }
  brokers = *authority ? authority : GST_KAFKA_DEFAULT_BROKERS;

  std::string escaped_path = rest.substr (slash + 1);
  g_autofree gchar *path = escaped_path.find ('/') == std::string::npos
                               ? uri_unescape (escaped_path, "/")
                               : nullptr;
  if (!path) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "'%s': the path must be one topic name (no '/', no malformed "
        "%%-escape)",
        shown.c_str ());
    return false;
  }
  topic = path;
  std::string problem = topic_name_problem (topic);
  if (!problem.empty ()) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "'%s' is not a valid Kafka topic name: %s", topic.c_str (),
        problem.c_str ());
    return false;
  }

  g_auto (GStrv) params = g_strsplit (query.c_str (), "&", -1);
  for (gchar **p = params; *p; p++) {
    if (!**p)
      continue;
    const gchar *eq = strchr (*p, '=');
    g_autofree gchar *key = eq ? uri_unescape (std::string (*p, eq - *p))
                               : nullptr;
    g_autofree gchar *value = eq ? uri_unescape (eq + 1) : nullptr;
    if (!key || !value || !*key) {
      g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_REFERENCE,
          "'%s' in the URI is not KEY=VALUE", *p);
      goto failed;
    }
    if (strchr (key, '.')) {
      if (!*settings)
        *settings = gst_structure_new_empty ("kafka");
      gst_structure_set (*settings, key, G_TYPE_STRING, value, nullptr);
      continue;
    }
    GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (
                                                          element),
        key);
    if (!pspec || !(pspec->flags & G_PARAM_WRITABLE) || !strcmp (key, "uri") ||
        !strcmp (key, "name") || !strcmp (key, "parent")) {
      g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_REFERENCE,
          "%s has no property '%s' that a URI can set (gst-inspect-1.0 %s "
          "lists them; librdkafka settings have a '.' in their name)",
          kind, key, kind);
      goto failed;
    }
    UriProperty prop (pspec);
    if (!gst_value_deserialize_with_pspec (&prop.value, value, pspec) ||
        g_param_value_validate (pspec, &prop.value)) {
      g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_REFERENCE,
          "'%s' is not a valid value for %s's property '%s' (%s)", value, kind,
          key, g_type_name (pspec->value_type));
      goto failed;
    }
    props.push_back (std::move (prop));
  }
  return true;

failed:
  if (*settings)
    gst_structure_free (*settings);
  *settings = nullptr;
  return false;
}

static bool
uri_apply (GstElement *element, const gchar *uri, GError **error)
{
  std::string brokers, topic, query;
  std::vector<UriProperty> props;
  GstStructure *settings;

  if (GST_STATE (element) > GST_STATE_READY ||
      GST_STATE_PENDING (element) > GST_STATE_READY) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
        "%s takes a new URI only in the NULL or READY state",
        element_kind (element));
    return false;
  }
  if (!uri_parse (element, uri, brokers, topic, props, &settings, query, error))
    return false;

  g_object_freeze_notify (G_OBJECT (element));
  g_object_set (element, "brokers", brokers.c_str (), "topic", topic.c_str (),
      nullptr);
  for (UriProperty &p : props)
    g_object_set_property (G_OBJECT (element), p.pspec->name, &p.value);
  GST_OBJECT_LOCK (element);
  g_object_set_qdata_full (G_OBJECT (element), uri_query_quark (),
      query.empty () ? nullptr : g_strdup (query.c_str ()), g_free);
  g_object_set_qdata_full (G_OBJECT (element), uri_settings_quark (), settings,
      reinterpret_cast<GDestroyNotify> (gst_structure_free));
  GST_OBJECT_UNLOCK (element);
  g_object_thaw_notify (G_OBJECT (element));
  return true;
}

static gboolean
uri_set_uri (GstURIHandler *handler, const gchar *uri, GError **error)
{
  return uri_apply (GST_ELEMENT (handler), uri, error);
}

void
uri_handler_init (gpointer g_iface, gpointer)
{
  auto iface = static_cast<GstURIHandlerInterface *> (g_iface);

  iface->get_type = uri_get_type;
  iface->get_protocols = uri_get_protocols;
  iface->get_uri = uri_get_uri;
  iface->set_uri = uri_set_uri;
}

void
uri_set_property (GstElement *element, const gchar *uri)
{
  g_autoptr (GError) error = nullptr;
  gchar *problem = nullptr;

  if (uri && !uri_apply (element, uri, &error)) {
    GST_WARNING_OBJECT (element, "uri: %s", error->message);
    problem = g_strdup (error->message);
  }
  GST_OBJECT_LOCK (element);
  g_object_set_qdata_full (G_OBJECT (element), uri_problem_quark (), problem,
      g_free);
  GST_OBJECT_UNLOCK (element);
}

gchar *
uri_get_property (GstElement *element)
{
  return uri_get_uri (GST_URI_HANDLER (element));
}

std::string
uri_problem (GstElement *element)
{
  GST_OBJECT_LOCK (element);
  const gchar *problem = static_cast<const gchar *> (
      g_object_get_qdata (G_OBJECT (element), uri_problem_quark ()));
  std::string s = problem ? problem : "";
  GST_OBJECT_UNLOCK (element);
  return s;
}

static bool
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value,
    const char *origin, GError **error)
{
  char errstr[512];
  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof (errstr)) !=
      RD_KAFKA_CONF_OK) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "Invalid Kafka setting '%s' (%s): %s", key, origin, errstr);
    return false;
  }
  return true;
}

static bool
conf_load_file (rd_kafka_conf_t *conf, const gchar *path, GError **error)
{
  g_autofree gchar *contents = nullptr;
  g_autoptr (GError) read_error = nullptr;
  if (!g_file_get_contents (path, &contents, nullptr, &read_error)) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not read Kafka config-file '%s': %s", path, read_error->message);
    return false;
  }

  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    gchar *line = g_strstrip (lines[i]);
    if (line[0] == '\0' || line[0] == '#' || line[0] == '!')
      continue;
    gchar *sep = strchr (line, '=');
    if (!sep) {
      g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
          "Kafka config-file '%s' line %u is not 'key=value': '%s'", path,
          i + 1, line);
      return false;
    }
    *sep = '\0';
    gchar *key = g_strstrip (line);
    gchar *value = g_strstrip (sep + 1);
    g_autofree gchar *origin = g_strdup_printf ("config-file %s line %u", path,
        i + 1);
    if (!conf_set (conf, key, value, origin, error))
      return false;
  }
  return true;
}

struct ApplyData
{
  rd_kafka_conf_t *conf;
  const char *origin;
  GError **error;
};

static gboolean
conf_apply_field (GQuark field, const GValue *value, gpointer user_data)
{
  auto data = static_cast<ApplyData *> (user_data);
  const char *key = g_quark_to_string (field);
  g_autofree gchar *str = nullptr;

  if (G_VALUE_HOLDS_STRING (value))
    str = g_value_dup_string (value);
  else if (G_VALUE_HOLDS_BOOLEAN (value))
    str = g_strdup (g_value_get_boolean (value) ? "true" : "false");
  else
    str = gst_value_serialize (value);

  if (!str) {
    g_set_error (data->error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "Invalid Kafka setting '%s' (%s): value of type %s cannot be "
        "converted to a string",
        key, data->origin, G_VALUE_TYPE_NAME (value));
    return FALSE;
  }
  return conf_set (data->conf, key, str, data->origin, data->error);
}

Conf
conf_new (GstElement *element, GstDebugCategory *cat,
    const ConfDefault *defaults, gsize n_defaults, const gchar *brokers,
    const gchar *config_file, const GstStructure *config, GError **error)
{
  Conf conf (rd_kafka_conf_new ());
  g_autofree gchar *name = gst_element_get_name (element);

  g_object_set_qdata (G_OBJECT (element), debug_category_quark (), cat);
  rd_kafka_conf_set_opaque (conf.get (), element);
  rd_kafka_conf_set_log_cb (conf.get (), log_cb);

  if (!conf_set (conf.get (), "client.id", name, "default", error))
    return nullptr;
  for (gsize i = 0; i < n_defaults; i++) {
    if (!conf_set (conf.get (), defaults[i].key, defaults[i].value, "default",
            error))
      return nullptr;
  }
  if (brokers && *brokers &&
      !conf_set (conf.get (), "bootstrap.servers", brokers, "brokers", error))
    return nullptr;
  if (config_file && *config_file &&
      !conf_load_file (conf.get (), config_file, error))
    return nullptr;
  if (config) {
    ApplyData data = {conf.get (), "config", error};
    if (!gst_structure_foreach (config, conf_apply_field, &data))
      return nullptr;
  }

  GST_OBJECT_LOCK (element);
  auto uri_settings = static_cast<const GstStructure *> (
      g_object_get_qdata (G_OBJECT (element), uri_settings_quark ()));
  g_autoptr (GstStructure)
      settings = uri_settings ? gst_structure_copy (uri_settings) : nullptr;
  GST_OBJECT_UNLOCK (element);
  if (settings) {
    ApplyData data = {conf.get (), "uri", error};
    if (!gst_structure_foreach (settings, conf_apply_field, &data))
      return nullptr;
  }
  return conf;
}

/* --- GstKafkaMeta -------------------------------------------------------- */

void
kafka_meta_register ()
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    static const gchar *tags[] = {nullptr};
    /* GStreamer's default transform copies the structure with the buffer. */
    gst_meta_register_custom (GST_KAFKA_META_NAME, tags, nullptr, nullptr,
        nullptr);
    g_once_init_leave (&done, 1);
  }
}

void
kafka_meta_add (GstBuffer *buf, const char *topic, const rd_kafka_message_t *m)
{
  GstCustomMeta *meta = gst_buffer_add_custom_meta (buf, GST_KAFKA_META_NAME);
  GstStructure *s = gst_custom_meta_get_structure (meta);
  gst_structure_set (s, "topic", G_TYPE_STRING, topic, "partition", G_TYPE_INT,
      m->partition, "offset", G_TYPE_INT64, m->offset, "timestamp",
      G_TYPE_INT64, rd_kafka_message_timestamp (m, nullptr), nullptr);
  if (m->key) {
    GBytes *key = g_bytes_new (m->key, m->key_len);
    gst_structure_set (s, "key", G_TYPE_BYTES, key, nullptr);
    g_bytes_unref (key);
  }
}

/* --- Header codec -------------------------------------------------------- */

/* Big-endian fields at any alignment: a memcpy and a byte swap.
 * (GStreamer's GST_READ_UINT64_BE() dereferences a misaligned pointer on
 * x86, which the C++ standard does not allow.) */
static inline guint64
read_be64 (const void *in)
{
  guint64 v;
  memcpy (&v, in, sizeof (v));
  return GUINT64_FROM_BE (v);
}

static inline guint32
read_be32 (const void *in)
{
  guint32 v;
  memcpy (&v, in, sizeof (v));
  return GUINT32_FROM_BE (v);
}

static inline void
write_be64 (guint8 *out, guint64 v)
{
  v = GUINT64_TO_BE (v);
  memcpy (out, &v, sizeof (v));
}

static inline void
write_be32 (guint8 *out, guint32 v)
{
  v = GUINT32_TO_BE (v);
  memcpy (out, &v, sizeof (v));
}

/* Header names are literals: their length is known here, which spares
 * librdkafka a strlen() per header and per message. */
#define NAME(literal) literal, ssize_t (sizeof (literal) - 1)

void
headers_write (rd_kafka_headers_t *hdrs, const FrameInfo &info)
{
  if (info.caps)
    rd_kafka_header_add (hdrs, NAME (GST_KAFKA_HEADER_CAPS), info.caps,
        info.caps_len ? info.caps_len : strlen (info.caps));

  /* One header for the fixed fields: every header costs librdkafka an
   * allocation, and its broker thread a record entry, per message. */
  guint8 buf[GST_KAFKA_BUF_MAX_SIZE];
  const GstClockTime times[] = {info.pts, info.dts, info.duration};
  guint8 present = 0;
  size_t len = GST_KAFKA_BUF_FIXED_SIZE;
  for (guint i = 0; i < G_N_ELEMENTS (times); i++) {
    if (!GST_CLOCK_TIME_IS_VALID (times[i]))
      continue;
    present |= 1 << i;
    write_be64 (buf + len, times[i]);
    len += 8;
  }
  buf[0] = GST_KAFKA_BUF_VERSION;
  buf[1] = present;
  write_be32 (buf + 2,
      (info.flags & GST_KAFKA_BUFFER_FLAGS_MASK) |
          (info.caps_elsewhere && !info.caps ? GST_KAFKA_FLAG_CAPS_ELSEWHERE
                                             : 0));
  write_be64 (buf + 6, info.session);
  write_be64 (buf + 14, info.seq);
  rd_kafka_header_add (hdrs, NAME (GST_KAFKA_HEADER_BUF), buf, len);

  if (info.frag_count) {
    guint8 frag[GST_KAFKA_FRAG_SIZE];
    frag[0] = GST_KAFKA_FRAG_VERSION;
    write_be32 (frag + 1, info.frag_index);
    write_be32 (frag + 5, info.frag_count);
    write_be64 (frag + 9, info.frag_size);
    rd_kafka_header_add (hdrs, NAME (GST_KAFKA_HEADER_FRAG), frag,
        sizeof (frag));
  }

  if (info.eos)
    rd_kafka_header_add (hdrs, NAME (GST_KAFKA_HEADER_EOS), "", 0);
}

#undef NAME

static bool
parse_u64 (const char *name, const void *value, size_t size, guint64 &out,
    bool &seen, std::string &problem)
{
  if (seen) {
    problem = std::string ("header ") + name + " appears more than once";
    return false;
  }
  if (!value || size != 8) {
    problem = std::string ("header ") + name + " has " +
              std::to_string (value ? size : 0) + " bytes, expected 8";
    return false;
  }
  out = read_be64 (value);
  seen = true;
  return true;
}

/* What is wrong with the size or version of header @name (see
 * check_layout()). Returns false. */
G_GNUC_NO_INLINE static bool
layout_problem (const char *name, const guint8 *v, size_t size, size_t min_size,
    bool exact, guint8 version, std::string &problem)
{
  if (!v || size < min_size || (exact && size != min_size))
    problem = std::string ("header ") + name + " has " +
              std::to_string (v ? size : 0) + " bytes, expected " +
              (exact ? "" : "at least ") + std::to_string (min_size);
  else
    problem = std::string ("header ") + name + " has version " +
              std::to_string (v[0]) +
              ", this version of gst-kafka reads version " +
              std::to_string (version);
  return false;
}

/* Whether header @name, @v of @size bytes, has @min_size bytes (at least,
 * or exactly when @exact) and starts with @version; else fills @problem.
 * Inline: every message's gst.buf goes through it. */
static inline bool
check_layout (const char *name, const guint8 *v, size_t size, size_t min_size,
    bool exact, guint8 version, std::string &problem)
{
  if (G_LIKELY (v && size >= min_size && (!exact || size == min_size) &&
                v[0] == version))
    return true;
  return layout_problem (name, v, size, min_size, exact, version, problem);
}

/* GST_KAFKA_HEADER_BUF; see docs/message-format.md for its layout. */
static bool
buf_parse (FrameInfo &info, const guint8 *v, size_t size, std::string &problem)
{
  if (!check_layout (GST_KAFKA_HEADER_BUF, v, size, GST_KAFKA_BUF_FIXED_SIZE,
          false, GST_KAFKA_BUF_VERSION, problem))
    return false;
  const guint8 present = v[1];
  if (present & ~0x07) {
    gchar hex[8];
    g_snprintf (hex, sizeof (hex), "0x%02x", present);
    problem = std::string (
                  "header " GST_KAFKA_HEADER_BUF " marks unknown fields (") +
              hex + ")";
    return false;
  }
  const size_t expected = GST_KAFKA_BUF_FIXED_SIZE +
                          8 * size_t (!!(present & 1) + !!(present & 2) +
                                      !!(present & 4));
  if (size != expected) {
    problem = std::string ("header " GST_KAFKA_HEADER_BUF " has ") +
              std::to_string (size) + " bytes, expected " +
              std::to_string (expected);
    return false;
  }
  GstClockTime *times[] = {&info.pts, &info.dts, &info.duration};
  bool repeated = info.has_flags || info.has_session || info.has_seq;
  for (guint i = 0; i < G_N_ELEMENTS (times); i++)
    repeated |= (present & (1 << i)) && GST_CLOCK_TIME_IS_VALID (*times[i]);
  if (repeated) {
    problem = "header " GST_KAFKA_HEADER_BUF
              " repeats fields given by other headers";
    return false;
  }

  guint32 flags = read_be32 (v + 2);
  info.flags = flags & GST_KAFKA_BUFFER_FLAGS_MASK;
  info.caps_elsewhere = flags & GST_KAFKA_FLAG_CAPS_ELSEWHERE;
  info.has_flags = true;
  info.session = read_be64 (v + 6);
  info.has_session = true;
  info.seq = read_be64 (v + 14);
  info.has_seq = true;
  size_t pos = GST_KAFKA_BUF_FIXED_SIZE;
  for (guint i = 0; i < G_N_ELEMENTS (times); i++) {
    if (!(present & (1 << i)))
      continue;
    *times[i] = read_be64 (v + pos);
    pos += 8;
  }
  return true;
}

/* GST_KAFKA_HEADER_FRAG; see docs/message-format.md for its layout. */
static bool
frag_parse (FrameInfo &info, const guint8 *v, size_t size, std::string &problem)
{
  if (info.frag_count) {
    problem = "header " GST_KAFKA_HEADER_FRAG " appears more than once";
    return false;
  }
  if (!check_layout (GST_KAFKA_HEADER_FRAG, v, size, GST_KAFKA_FRAG_SIZE, true,
          GST_KAFKA_FRAG_VERSION, problem))
    return false;
  guint32 index = read_be32 (v + 1);
  guint32 count = read_be32 (v + 5);
  guint64 total = read_be64 (v + 9);
  if (count < 2 || index >= count || total < count) {
    problem = "header " GST_KAFKA_HEADER_FRAG " says part " +
              std::to_string (index) + " of " + std::to_string (count) +
              " of " + std::to_string (total) + " bytes";
    return false;
  }
  info.frag_index = index;
  info.frag_count = count;
  info.frag_size = total;
  return true;
}

bool
header_parse (FrameInfo &info, const char *name, const void *value, size_t size,
    std::string &problem)
{
  if (!name || strncmp (name, "gst.", 4) != 0)
    return true;
  info.has_gst_headers = true;

  /* Every message carries several headers: compare a name only with the
   * known ones that share its first letter after "gst.". */
  const char c = name[4];
  bool seen;
  guint64 v;
  /* kafkasink's one header per message first. */
  if (c == 'b' && strcmp (name, GST_KAFKA_HEADER_BUF) == 0)
    return buf_parse (info, static_cast<const guint8 *> (value), size, problem);
  if (c == 'c' && strcmp (name, GST_KAFKA_HEADER_CAPS) == 0) {
    if (info.caps) {
      problem = "header " GST_KAFKA_HEADER_CAPS " appears more than once";
      return false;
    }
    if (!value || size == 0 ||
        !g_utf8_validate (static_cast<const char *> (value), size, nullptr)) {
      problem = "header " GST_KAFKA_HEADER_CAPS " is empty or not UTF-8";
      return false;
    }
    info.caps = static_cast<const char *> (value);
    info.caps_len = size;
    return true;
  }

  struct Field
  {
    const char *name;
    GstClockTime *ts;
  } times[] = {{GST_KAFKA_HEADER_PTS, &info.pts},
      {GST_KAFKA_HEADER_DTS, &info.dts},
      {GST_KAFKA_HEADER_DURATION, &info.duration}};
  for (auto &f : times) {
    if (c != f.name[4] || strcmp (name, f.name) != 0)
      continue;
    seen = GST_CLOCK_TIME_IS_VALID (*f.ts);
    if (!parse_u64 (name, value, size, v, seen, problem))
      return false;
    *f.ts = v;
    return true;
  }

  if (c == 'f' && strcmp (name, GST_KAFKA_HEADER_FRAG) == 0)
    return frag_parse (info, static_cast<const guint8 *> (value), size,
        problem);
  if (c == 'f' && strcmp (name, GST_KAFKA_HEADER_FLAGS) == 0) {
    if (info.has_flags) {
      problem = "header " GST_KAFKA_HEADER_FLAGS " appears more than once";
      return false;
    }
    if (!value || size != 4) {
      problem = "header " GST_KAFKA_HEADER_FLAGS " has " +
                std::to_string (value ? size : 0) + " bytes, expected 4";
      return false;
    }
    guint32 flags = read_be32 (value);
    info.flags = flags & GST_KAFKA_BUFFER_FLAGS_MASK;
    info.caps_elsewhere = flags & GST_KAFKA_FLAG_CAPS_ELSEWHERE;
    info.has_flags = true;
    return true;
  }
  if (c == 's' && strcmp (name, GST_KAFKA_HEADER_SESSION) == 0)
    return parse_u64 (name, value, size, info.session, info.has_session,
        problem);
  if (c == 's' && strcmp (name, GST_KAFKA_HEADER_SEQ) == 0)
    return parse_u64 (name, value, size, info.seq, info.has_seq, problem);
  if (c == 'e' && strcmp (name, GST_KAFKA_HEADER_EOS) == 0) {
    info.eos = true;
    return true;
  }
  /* An unknown gst.* header: a newer producer; ignore it. */
  return true;
}

bool
headers_parse (const rd_kafka_headers_t *hdrs, FrameInfo &info,
    std::string &problems)
{
  bool ok = true;
  const char *name;
  const void *value;
  size_t size;
  for (size_t i = 0; rd_kafka_header_get_all (hdrs, i, &name, &value, &size) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR;
       i++) {
    std::string problem;
    if (!header_parse (info, name, value, size, problem)) {
      if (!problems.empty ())
        problems += "; ";
      problems += problem;
      ok = false;
    }
  }
  return ok;
}

bool
headers_read (const rd_kafka_message_t *msg, FrameInfo &info,
    std::string &problems)
{
  rd_kafka_headers_t *hdrs = nullptr;
  if (rd_kafka_message_headers (msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return true;
  return headers_parse (hdrs, info, problems);
}

GstCaps *
frame_info_parse_caps (const FrameInfo &info, std::string &problem)
{
  if (!info.caps)
    return nullptr;
  g_autofree gchar *str = g_strndup (info.caps, info.caps_len);
  GstCaps *caps = gst_caps_from_string (str);
  if (!caps) {
    problem = std::string ("caps '") + str + "' do not parse";
    return nullptr;
  }
  if (!gst_caps_is_fixed (caps)) {
    problem = std::string ("caps '") + str + "' are not fixed";
    gst_caps_unref (caps);
    return nullptr;
  }
  return caps;
}

std::string
err_text (rd_kafka_resp_err_t err)
{
  return std::string (rd_kafka_err2name (err)) + ": " + rd_kafka_err2str (err);
}

} // namespace gstkafka
