/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-souphttpserversink
 * @title: souphttpserversink
 *
 * Serves the stream it receives over HTTP to any number of clients, with
 * libsoup 3's #SoupServer running in a thread of its own.
 *
 * What a client receives depends on the caps:
 *
 * - `multipart/x-mixed-replace` (from multipartmux): the stream as it is,
 *   with the multipartmux boundary in the response Content-Type.
 * - `image/jpeg`, `image/png` or any other `image/` type: every buffer is
 *   one part of a `multipart/x-mixed-replace` response the sink frames
 *   itself, each part with its Content-Type and Content-Length. Browsers
 *   show such a response in an `<img>` element.
 * - anything else (WebM, Matroska, Ogg, FLV, MPEG-TS): one continuous body
 *   starting with the `streamheader` buffers of the caps, so a `<video>`
 *   element can play it.
 *
 * A client starts on a clean boundary (a buffer without DELTA_UNIT: a
 * multipart header, a keyframe) and at once receives the latest frame the
 * sink has. Every client has a bounded queue: a client that cannot keep up
 * skips whole frames, and one that makes no progress for
 * #GstSoupHttpServerSink:timeout is disconnected; neither slows the pipeline
 * nor the other clients.
 *
 * At the end of the stream every client receives what is queued for it and
 * its connection is closed; the end-of-stream message is posted once all
 * clients are done.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! jpegenc ! souphttpserversink
 * port=8080
 * ]| Open http://127.0.0.1:8080/ in a browser to watch the MJPEG stream.
 * |[
 * gst-launch-1.0 kafkasrc topic=camera ! multipartmux boundary=frame ! \
 *     souphttpserversink address=0.0.0.0 port=5000 user=viewer password=secret
 * ]| Serves the multipart stream stored in a Kafka topic to every network
 * interface, with HTTP basic authentication.
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! vp8enc deadline=1 ! \
 *     webmmux streamable=true ! souphttpserversink port=8080 path=/live.webm
 * ]| A WebM stream for `<video src="http://127.0.0.1:8080/live.webm">`.
 *
 * Since: 0.1
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsouphttpserversink.h"
#include "gstsouphttpserverclient.h"

#include <libsoup/soup.h>

#include <condition_variable>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

GST_DEBUG_CATEGORY_STATIC (gst_soup_http_server_sink_debug);
#define GST_CAT_DEFAULT gst_soup_http_server_sink_debug

#define DEFAULT_ADDRESS "127.0.0.1"
#define DEFAULT_PORT 8080
#define DEFAULT_PATH "/"
#define DEFAULT_MAX_CLIENTS 0
#define DEFAULT_WAIT_FOR_CLIENTS TRUE
#define DEFAULT_TIMEOUT (10 * GST_SECOND)
#define DEFAULT_MAX_CLIENT_FRAMES 8
#define DEFAULT_MAX_CLIENT_BYTES 0
#define DEFAULT_CLOSE_GRACE_MS 2000
#define LISTEN_BACKLOG 1024
#define MAX_REMEMBERED_FRAME_BYTES (64 * 1024 * 1024)

enum
{
  PROP_0,
  PROP_ADDRESS,
  PROP_PORT,
  PROP_CURRENT_PORT,
  PROP_PATH,
  PROP_MAX_CLIENTS,
  PROP_WAIT_FOR_CLIENTS,
  PROP_TIMEOUT,
  PROP_MAX_CLIENT_FRAMES,
  PROP_MAX_CLIENT_BYTES,
  PROP_USER,
  PROP_PASSWORD,
  PROP_CERTIFICATE_FILE,
  PROP_PRIVATE_KEY_FILE,
  PROP_CORS,
  PROP_STATS,
};

enum
{
  SIGNAL_CLIENT_ADDED,
  SIGNAL_CLIENT_REMOVED,
  SIGNAL_GET_STATS,
  LAST_SIGNAL,
};

static guint signals[LAST_SIGNAL];

namespace {

struct Settings
{
  std::string address = DEFAULT_ADDRESS;
  gint port = DEFAULT_PORT;
  std::string path = DEFAULT_PATH;
  guint max_clients = DEFAULT_MAX_CLIENTS;
  gboolean wait_for_clients = DEFAULT_WAIT_FOR_CLIENTS;
  guint64 timeout = DEFAULT_TIMEOUT;
  guint max_client_frames = DEFAULT_MAX_CLIENT_FRAMES;
  guint64 max_client_bytes = DEFAULT_MAX_CLIENT_BYTES;
  std::string user;
  std::string password;
  std::string certificate_file;
  std::string private_key_file;
  std::string cors;
};

enum class StreamMode
{
  NONE,      /* no caps yet */
  MULTIPART, /* multipart/x-mixed-replace from upstream, passed through */
  IMAGE,     /* one image per buffer, framed as multipart by the sink */
  STREAM,    /* one continuous body, stream headers first */
};

using ClientPtr = std::unique_ptr<GstSoupHttpServerClient>;

} // namespace

struct GstSoupHttpServerSinkPrivate
{
  /* Properties, under GST_OBJECT_LOCK. */
  Settings settings;
  gint current_port = 0;

  /* Copy of the settings made in start(), constant while running. */
  Settings run;

  /* Everything below is guarded by lock, except the server-thread objects
   * which only that thread touches once it runs. */
  std::mutex lock;
  std::condition_variable cond;
  bool flushing = false;
  /* render() waits for a client queue to have room. */
  bool waiting_for_room = false;
  bool eos = false;
  bool shutting_down = false;

  StreamMode mode = StreamMode::NONE;
  std::string content_type;
  std::string part_type;
  std::string boundary;
  std::vector<GstSoupHttpServerChunkPtr> streamheaders;
  bool caps_have_streamheader = false;
  /* The latest complete frame and the one being received. */
  std::vector<GstSoupHttpServerItem> last_frame;
  std::vector<GstSoupHttpServerItem> current_frame;
  guint64 current_frame_bytes = 0;
  /* The frame being received is complete (multipart: its part ended). */
  bool current_frame_complete = false;
  /* Multipart passthrough: the delimiter line, whether the part being
   * received still needs its closing delimiter, and how many of its bytes
   * (data and CRLF) are still to come (-1: unknown). */
  GstSoupHttpServerChunkPtr delimiter;
  bool part_open = false;
  gint64 part_remaining = -1;

  std::list<ClientPtr> clients;
  guint64 next_client_id = 1;
  guint64 clients_total = 0;
  guint64 removed_bytes_served = 0;
  guint64 removed_frames_dropped = 0;

  /* Server thread. */
  std::thread thread;
  bool thread_ready = false;
  GstResourceError start_error_code = GST_RESOURCE_ERROR_FAILED;
  std::string start_error;
  GMainContext *context = nullptr;
  GMainLoop *loop = nullptr;
  GCancellable *cancellable = nullptr;
  SoupServer *server = nullptr;
  GSource *flush_source = nullptr;
  GSource *timeout_source = nullptr;
  guint pending_closes = 0;
};

struct _GstSoupHttpServerSink
{
  GstBaseSink parent;

  GstSoupHttpServerSinkPrivate *priv;
};

/* A client removed from the list, closed and announced once the lock is
 * released. */
struct RemovedClient
{
  ClientPtr client;
  std::string reason;
  GstStructure *stats;
};
using RemovedClients = std::vector<RemovedClient>;

#define gst_soup_http_server_sink_parent_class parent_class
G_DEFINE_TYPE (GstSoupHttpServerSink, gst_soup_http_server_sink,
    GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE (souphttpserversink, "souphttpserversink",
    GST_RANK_NONE, GST_TYPE_SOUP_HTTP_SERVER_SINK);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void gst_soup_http_server_sink_finalize (GObject *object);
static void gst_soup_http_server_sink_set_property (GObject *object,
    guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_soup_http_server_sink_get_property (GObject *object,
    guint prop_id, GValue *value, GParamSpec *pspec);
static gboolean gst_soup_http_server_sink_start (GstBaseSink *sink);
static gboolean gst_soup_http_server_sink_stop (GstBaseSink *sink);
static gboolean gst_soup_http_server_sink_unlock (GstBaseSink *sink);
static gboolean gst_soup_http_server_sink_unlock_stop (GstBaseSink *sink);
static gboolean gst_soup_http_server_sink_set_caps (GstBaseSink *sink,
    GstCaps *caps);
static gboolean gst_soup_http_server_sink_event (GstBaseSink *sink,
    GstEvent *event);
static GstFlowReturn gst_soup_http_server_sink_render (GstBaseSink *sink,
    GstBuffer *buffer);
static GstStructure *gst_soup_http_server_sink_get_stats (
    GstSoupHttpServerSink *self);

static void
gst_soup_http_server_sink_class_init (GstSoupHttpServerSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);
  const GParamFlags ready_flags = (GParamFlags) (G_PARAM_READWRITE |
                                                 G_PARAM_STATIC_STRINGS |
                                                 GST_PARAM_MUTABLE_READY);

  gobject_class->finalize = gst_soup_http_server_sink_finalize;
  gobject_class->set_property = gst_soup_http_server_sink_set_property;
  gobject_class->get_property = gst_soup_http_server_sink_get_property;

  /**
   * GstSoupHttpServerSink:address:
   *
   * The address to listen on: an IP address or a host name. The default
   * only accepts connections from this machine; `0.0.0.0` or `::` serve
   * every network interface.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_ADDRESS,
      g_param_spec_string ("address", "Address",
          "Address to listen on (0.0.0.0 or :: for every interface)",
          DEFAULT_ADDRESS, ready_flags));

  /**
   * GstSoupHttpServerSink:port:
   *
   * The TCP port to listen on; 0 lets the system pick a free one, which
   * #GstSoupHttpServerSink:current-port then reports.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PORT,
      g_param_spec_int ("port", "Port",
          "TCP port to listen on (0 = pick a free port)", 0, 65535,
          DEFAULT_PORT, ready_flags));

  /**
   * GstSoupHttpServerSink:current-port:
   *
   * The port the server listens on from the READY to PAUSED transition on,
   * 0 when it is not listening.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CURRENT_PORT,
      g_param_spec_int ("current-port", "Current port",
          "The port the server listens on (0 when not listening)", 0, 65535, 0,
          (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  /**
   * GstSoupHttpServerSink:path:
   *
   * The path of the stream. Requests for any other path are answered with
   * 404 Not Found; a query string is ignored.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PATH,
      g_param_spec_string ("path", "Path",
          "Path the stream is served at (others get 404)", DEFAULT_PATH,
          ready_flags));

  /**
   * GstSoupHttpServerSink:max-clients:
   *
   * How many clients may be connected at once; further requests are
   * answered with 503 Service Unavailable. 0 means no limit.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MAX_CLIENTS,
      g_param_spec_uint ("max-clients", "Max clients",
          "Maximum number of connected clients, others get 503 (0 = no "
          "limit)",
          0, G_MAXUINT, DEFAULT_MAX_CLIENTS, ready_flags));

  /**
   * GstSoupHttpServerSink:wait-for-clients:
   *
   * When TRUE, the sink holds the stream while no client is connected, so
   * a source such as kafkasrc stops consuming and the next client resumes
   * where the last one left off. It also holds it while every client's
   * queue is full: the stream then goes at the pace of the fastest client,
   * so a backlog read from Kafka reaches a lone viewer whole, while slower
   * clients still skip frames. When FALSE the stream keeps flowing, is
   * dropped while nobody watches, and every client that falls behind skips
   * frames.
   *
   * An end-of-stream sent to the pipeline goes to its sources and cannot
   * pass a stream that is held: stop a viewer that nobody watches without
   * `gst-launch-1.0 -e` (it needs no EOS to finish), press Ctrl-C a second
   * time (gst-launch-1.0 then stops the pipeline without waiting for the
   * EOS; the held frame is not committed and is read again next time), or
   * set this to FALSE.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_WAIT_FOR_CLIENTS,
      g_param_spec_boolean ("wait-for-clients", "Wait for clients",
          "Block the stream while no client is connected or every client's "
          "queue is full",
          DEFAULT_WAIT_FOR_CLIENTS, ready_flags));

  /**
   * GstSoupHttpServerSink:timeout:
   *
   * A client that has data waiting and accepts none of it for this long
   * (in nanoseconds) is disconnected. 0 never disconnects a client for
   * being slow.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TIMEOUT,
      g_param_spec_uint64 ("timeout", "Timeout",
          "Disconnect a client that accepts no data for this long, in "
          "nanoseconds (0 = never)",
          0, G_MAXUINT64, DEFAULT_TIMEOUT, ready_flags));

  /**
   * GstSoupHttpServerSink:max-client-frames:
   *
   * How many frames may wait in a client's queue. When a new frame arrives
   * for a client that has more, the client skips every whole frame between
   * the one it is receiving and the new one. A frame is an image, or the
   * buffers from one keyframe (or multipart header) to the next.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MAX_CLIENT_FRAMES,
      g_param_spec_uint ("max-client-frames", "Max client frames",
          "Frames queued per client before it skips to the latest one", 1,
          G_MAXUINT, DEFAULT_MAX_CLIENT_FRAMES, ready_flags));

  /**
   * GstSoupHttpServerSink:max-client-bytes:
   *
   * Like #GstSoupHttpServerSink:max-client-frames, in bytes: a client with
   * more queued skips to the latest frame. 0 means no byte bound.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MAX_CLIENT_BYTES,
      g_param_spec_uint64 ("max-client-bytes", "Max client bytes",
          "Bytes queued per client before it skips to the latest frame (0 = "
          "no bound)",
          0, G_MAXUINT64, DEFAULT_MAX_CLIENT_BYTES, ready_flags));

  /**
   * GstSoupHttpServerSink:user:
   *
   * With a user name set, clients must authenticate with HTTP basic
   * authentication (#GstSoupHttpServerSink:user and
   * #GstSoupHttpServerSink:password), and get 401 Unauthorized otherwise.
   * Use TLS so the credentials do not cross the network in the clear.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_USER,
      g_param_spec_string ("user", "User",
          "User name clients must authenticate with (HTTP basic "
          "authentication; unset = no authentication)",
          nullptr, ready_flags));

  /**
   * GstSoupHttpServerSink:password:
   *
   * The password for #GstSoupHttpServerSink:user. It can be written but not
   * read back, so it does not show in pipeline dumps or logs.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PASSWORD,
      g_param_spec_string ("password", "Password",
          "Password clients must authenticate with (write-only)", nullptr,
          (GParamFlags) (G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                         GST_PARAM_MUTABLE_READY)));

  /**
   * GstSoupHttpServerSink:certificate-file:
   *
   * A PEM file with the server certificate (and its chain). Setting it
   * serves HTTPS instead of HTTP. The private key is read from
   * #GstSoupHttpServerSink:private-key-file, or from this file when that is
   * unset.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CERTIFICATE_FILE,
      g_param_spec_string ("certificate-file", "Certificate file",
          "PEM certificate file; serves HTTPS when set", nullptr, ready_flags));

  /**
   * GstSoupHttpServerSink:private-key-file:
   *
   * A PEM file with the private key of
   * #GstSoupHttpServerSink:certificate-file.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PRIVATE_KEY_FILE,
      g_param_spec_string ("private-key-file", "Private key file",
          "PEM private key file for the certificate (default: read it from "
          "the certificate file)",
          nullptr, ready_flags));

  /**
   * GstSoupHttpServerSink:cors:
   *
   * When set, responses carry `Access-Control-Allow-Origin` with this
   * value (for example `*`), so pages from other origins can use the
   * stream in a canvas or with fetch().
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_CORS,
      g_param_spec_string ("cors", "CORS",
          "Access-Control-Allow-Origin value sent with responses (unset = "
          "no CORS header)",
          nullptr, ready_flags));

  /**
   * GstSoupHttpServerSink:stats:
   *
   * Statistics, as a #GstStructure named
   * `application/x-souphttpserversink-stats` with the fields
   * `clients-connected` (uint), `clients-total` (guint64: since start),
   * `bytes-served` (guint64), `frames-dropped` (guint64) and `clients`: a
   * #GstValueArray with a structure per connected client (`id`,
   * `address`, `bytes-served`, `frames-served`, `frames-dropped`,
   * `queued-bytes`, `queued-frames`, `connected-time` in nanoseconds).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Clients connected, bytes served and frames dropped, overall and "
          "per client",
          GST_TYPE_STRUCTURE,
          (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  /**
   * GstSoupHttpServerSink::client-added:
   * @sink: the sink
   * @id: the client's identifier, unique while the sink runs
   * @address: the client's address and port
   *
   * A client connected and receives the stream. Emitted from the server
   * thread.
   *
   * Since: 0.1
   */
  signals[SIGNAL_CLIENT_ADDED] = g_signal_new ("client-added",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, nullptr, nullptr,
      nullptr, G_TYPE_NONE, 2, G_TYPE_UINT64, G_TYPE_STRING);

  /**
   * GstSoupHttpServerSink::client-removed:
   * @sink: the sink
   * @id: the client's identifier
   * @address: the client's address and port
   * @stats: the client's final statistics (see #GstSoupHttpServerSink:stats)
   *
   * A client's connection was closed: it disconnected, was too slow, the
   * stream ended or the sink stopped. Emitted from the server thread.
   *
   * Since: 0.1
   */
  signals[SIGNAL_CLIENT_REMOVED] = g_signal_new ("client-removed",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, nullptr, nullptr,
      nullptr, G_TYPE_NONE, 3, G_TYPE_UINT64, G_TYPE_STRING,
      GST_TYPE_STRUCTURE);

  /**
   * GstSoupHttpServerSink::get-stats:
   * @sink: the sink
   *
   * Returns the same structure as #GstSoupHttpServerSink:stats.
   *
   * Since: 0.1
   */
  signals[SIGNAL_GET_STATS] = g_signal_new_class_handler ("get-stats",
      G_TYPE_FROM_CLASS (klass),
      (GSignalFlags) (G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK (gst_soup_http_server_sink_get_stats), nullptr, nullptr,
      nullptr, GST_TYPE_STRUCTURE, 0);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "HTTP server sink",
      "Sink/Network",
      "Serves the stream over HTTP to any number of clients: multipart "
      "images for <img>, WebM or Ogg for <video>",
      "gst-kafka <https://github.com/gst-kafka/gst-kafka>");

  basesink_class->start = GST_DEBUG_FUNCPTR (gst_soup_http_server_sink_start);
  basesink_class->stop = GST_DEBUG_FUNCPTR (gst_soup_http_server_sink_stop);
  basesink_class->unlock = GST_DEBUG_FUNCPTR (gst_soup_http_server_sink_unlock);
  basesink_class->unlock_stop = GST_DEBUG_FUNCPTR (
      gst_soup_http_server_sink_unlock_stop);
  basesink_class->set_caps = GST_DEBUG_FUNCPTR (
      gst_soup_http_server_sink_set_caps);
  basesink_class->event = GST_DEBUG_FUNCPTR (gst_soup_http_server_sink_event);
  basesink_class->render = GST_DEBUG_FUNCPTR (gst_soup_http_server_sink_render);

  GST_DEBUG_CATEGORY_INIT (gst_soup_http_server_sink_debug,
      "souphttpserversink", 0, "HTTP server sink");
}

static void
gst_soup_http_server_sink_init (GstSoupHttpServerSink *self)
{
  self->priv = new GstSoupHttpServerSinkPrivate ();
}

static void
gst_soup_http_server_sink_finalize (GObject *object)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (object);

  delete self->priv;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
set_string (std::string &field, const GValue *value)
{
  const gchar *s = g_value_get_string (value);
  field = s ? s : "";
}

static void
get_string (const std::string &field, GValue *value)
{
  g_value_set_string (value, field.empty () ? nullptr : field.c_str ());
}

static void
gst_soup_http_server_sink_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (object);
  Settings &s = self->priv->settings;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
  case PROP_ADDRESS:
    set_string (s.address, value);
    if (s.address.empty ())
      s.address = DEFAULT_ADDRESS;
    break;
  case PROP_PORT:
    s.port = g_value_get_int (value);
    break;
  case PROP_PATH:
    set_string (s.path, value);
    if (s.path.empty () || s.path[0] != '/')
      s.path.insert (0, "/");
    break;
  case PROP_MAX_CLIENTS:
    s.max_clients = g_value_get_uint (value);
    break;
  case PROP_WAIT_FOR_CLIENTS:
    s.wait_for_clients = g_value_get_boolean (value);
    break;
  case PROP_TIMEOUT:
    s.timeout = g_value_get_uint64 (value);
    break;
  case PROP_MAX_CLIENT_FRAMES:
    s.max_client_frames = g_value_get_uint (value);
    break;
  case PROP_MAX_CLIENT_BYTES:
    s.max_client_bytes = g_value_get_uint64 (value);
    break;
  case PROP_USER:
    set_string (s.user, value);
    break;
  case PROP_PASSWORD:
    set_string (s.password, value);
    break;
  case PROP_CERTIFICATE_FILE:
    set_string (s.certificate_file, value);
    break;
  case PROP_PRIVATE_KEY_FILE:
    set_string (s.private_key_file, value);
    break;
  case PROP_CORS:
    set_string (s.cors, value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_soup_http_server_sink_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (object);
  const Settings &s = self->priv->settings;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, gst_soup_http_server_sink_get_stats (self));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
  case PROP_ADDRESS:
    get_string (s.address, value);
    break;
  case PROP_PORT:
    g_value_set_int (value, s.port);
    break;
  case PROP_CURRENT_PORT:
    g_value_set_int (value, self->priv->current_port);
    break;
  case PROP_PATH:
    get_string (s.path, value);
    break;
  case PROP_MAX_CLIENTS:
    g_value_set_uint (value, s.max_clients);
    break;
  case PROP_WAIT_FOR_CLIENTS:
    g_value_set_boolean (value, s.wait_for_clients);
    break;
  case PROP_TIMEOUT:
    g_value_set_uint64 (value, s.timeout);
    break;
  case PROP_MAX_CLIENT_FRAMES:
    g_value_set_uint (value, s.max_client_frames);
    break;
  case PROP_MAX_CLIENT_BYTES:
    g_value_set_uint64 (value, s.max_client_bytes);
    break;
  case PROP_USER:
    get_string (s.user, value);
    break;
  case PROP_CERTIFICATE_FILE:
    get_string (s.certificate_file, value);
    break;
  case PROP_PRIVATE_KEY_FILE:
    get_string (s.private_key_file, value);
    break;
  case PROP_CORS:
    get_string (s.cors, value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- statistics ---- */

static GstStructure *
make_stats_locked (GstSoupHttpServerSink *self)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  gint64 now = g_get_monotonic_time ();
  guint64 bytes = priv->removed_bytes_served;
  guint64 dropped = priv->removed_frames_dropped;
  GValue array = G_VALUE_INIT;

  gst_value_array_init (&array, priv->clients.size ());
  for (const ClientPtr &client : priv->clients) {
    GValue v = G_VALUE_INIT;

    bytes += client->bytes_sent;
    dropped += client->frames_dropped;
    g_value_init (&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&v, client->make_stats (now));
    gst_value_array_append_and_take_value (&array, &v);
  }

  GstStructure *s = gst_structure_new ("application/x-souphttpserversink-stats",
      "clients-connected", G_TYPE_UINT, (guint) priv->clients.size (),
      "clients-total", G_TYPE_UINT64, priv->clients_total, "bytes-served",
      G_TYPE_UINT64, bytes, "frames-dropped", G_TYPE_UINT64, dropped, nullptr);
  gst_structure_take_value (s, "clients", &array);
  return s;
}

static GstStructure *
gst_soup_http_server_sink_get_stats (GstSoupHttpServerSink *self)
{
  std::lock_guard<std::mutex> guard (self->priv->lock);
  return make_stats_locked (self);
}

/* ---- clients (server thread unless noted) ---- */

static std::string
make_response_header_locked (GstSoupHttpServerSink *self,
    const GstSoupHttpServerClient &client)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  std::string h = client.http_1_0 ? "HTTP/1.0 200 OK\r\n"
                                  : "HTTP/1.1 200 OK\r\n";

  h += "Content-Type: " + priv->content_type + "\r\n";
  h += "Cache-Control: no-cache, no-store, must-revalidate\r\n";
  h += "Pragma: no-cache\r\n";
  h += "Connection: close\r\n";
  if (!priv->run.cors.empty ())
    h += "Access-Control-Allow-Origin: " + priv->run.cors + "\r\n";
  h += "\r\n";
  return h;
}

/* Every image part is followed by the next delimiter at once, so a client
 * knows the part is complete without waiting for the next image. */
static GstSoupHttpServerChunkPtr
make_delimiter_locked (GstSoupHttpServerSink *self, bool after_part)
{
  return GstSoupHttpServerChunk::from_string (
      (after_part ? "\r\n--" : "--") + self->priv->boundary + "\r\n");
}

/* Queues the response header, the stream headers and the latest frame for a
 * client whose caps are known. Any thread. */
static void
start_client_locked (GstSoupHttpServerSink *self,
    GstSoupHttpServerClient &client)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  gint64 now = g_get_monotonic_time ();

  client.push_always (GstSoupHttpServerChunk::from_string (
      make_response_header_locked (self, client)));
  for (const GstSoupHttpServerChunkPtr &header : priv->streamheaders)
    client.push_always (header);
  if (priv->mode == StreamMode::IMAGE || priv->mode == StreamMode::MULTIPART)
    client.push_always (priv->delimiter);
  client.started = true;

  /* A continuous stream starts at the frame being received (it began with
   * a keyframe); multipart and images start at the latest complete one. */
  bool current_is_enough = priv->mode == StreamMode::STREAM
                               ? !priv->current_frame.empty ()
                               : priv->current_frame_complete;
  if (!current_is_enough) {
    for (const GstSoupHttpServerItem &item : priv->last_frame)
      client.push (item, 0, 0, now);
  }
  for (const GstSoupHttpServerItem &item : priv->current_frame)
    client.push (item, 0, 0, now);

  if (priv->eos)
    client.close_when_drained = true;
}

static void
remove_client_locked (GstSoupHttpServerSink *self,
    std::list<ClientPtr>::iterator it, const char *reason,
    RemovedClients &removed)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  ClientPtr client = std::move (*it);

  priv->clients.erase (it);
  priv->removed_bytes_served += client->bytes_sent;
  priv->removed_frames_dropped += client->frames_dropped;
  GstStructure *stats = client->make_stats (g_get_monotonic_time ());
  removed.push_back ({std::move (client), reason, stats});
  priv->cond.notify_all ();
}

static void
close_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  g_autoptr (GError) error = nullptr;

  if (!g_io_stream_close_finish (G_IO_STREAM (source), result, &error))
    GST_DEBUG_OBJECT (self, "closing a connection: %s", error->message);
  g_object_unref (source);

  priv->pending_closes--;
  if (priv->pending_closes == 0 && priv->shutting_down)
    g_main_loop_quit (priv->loop);
  gst_object_unref (self);
}

/* Announces and closes removed clients, without the lock. */
static void
finish_removals (GstSoupHttpServerSink *self, RemovedClients &removed)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;

  for (RemovedClient &r : removed) {
    GIOStream *stream = G_IO_STREAM (
        g_object_ref (G_OBJECT (r.client->stream)));
    guint64 id = r.client->id;
    std::string address = r.client->address;

    GST_INFO_OBJECT (self, "client %" G_GUINT64_FORMAT " (%s) removed: %s", id,
        address.c_str (), r.reason.c_str ());
    /* Destroys its sources; the connection is closed below. */
    r.client.reset ();

    priv->pending_closes++;
    g_io_stream_close_async (stream, G_PRIORITY_DEFAULT, priv->cancellable,
        close_done, gst_object_ref (self));

    g_signal_emit (self, signals[SIGNAL_CLIENT_REMOVED], 0, id,
        address.c_str (), r.stats);
    gst_structure_free (r.stats);
  }
  removed.clear ();
}

static gboolean client_writable (GObject *stream, gpointer user_data);

struct ClientSourceData
{
  GstSoupHttpServerSink *self;
  GstSoupHttpServerClient *client;
};

static void
client_source_data_free (gpointer data)
{
  delete static_cast<ClientSourceData *> (data);
}

/* Writes what the socket takes and returns FALSE when the client is to be
 * removed. */
static bool
service_client_locked (GstSoupHttpServerSink *self,
    GstSoupHttpServerClient &client, gint64 now, const char **reason)
{
  g_autoptr (GError) error = nullptr;

  if (client.close_reason) {
    *reason = client.close_reason;
    return false;
  }
  if (client.write_source)
    return true;

  GstSoupHttpServerWriteResult result = client.write (now, &error);
  /* A render waiting for a client to catch up may go on now. */
  if (self->priv->waiting_for_room)
    self->priv->cond.notify_all ();
  switch (result) {
  case GstSoupHttpServerWriteResult::DRAINED:
    if (client.close_when_drained) {
      *reason = "end of stream";
      return false;
    }
    return true;
  case GstSoupHttpServerWriteResult::BLOCKED:
    client.write_source = g_pollable_output_stream_create_source (client.output,
        nullptr);
    g_source_set_callback (client.write_source, G_SOURCE_FUNC (client_writable),
        new ClientSourceData{self, &client}, client_source_data_free);
    g_source_attach (client.write_source, self->priv->context);
    return true;
  case GstSoupHttpServerWriteResult::FAILED:
    GST_DEBUG_OBJECT (self, "client %" G_GUINT64_FORMAT ": %s", client.id,
        error ? error->message : "write failed");
    *reason = "connection lost";
    return false;
  }
  return true;
}

static std::list<ClientPtr>::iterator
find_client_locked (GstSoupHttpServerSink *self,
    GstSoupHttpServerClient *client)
{
  auto &clients = self->priv->clients;
  for (auto it = clients.begin (); it != clients.end (); ++it) {
    if (it->get () == client)
      return it;
  }
  return clients.end ();
}

static gboolean
client_writable (GObject *, gpointer user_data)
{
  auto *data = static_cast<ClientSourceData *> (user_data);
  GstSoupHttpServerSink *self = data->self;
  GstSoupHttpServerClient *client = data->client;
  g_autoptr (GError) error = nullptr;
  RemovedClients removed;
  const char *reason;
  gboolean ret = G_SOURCE_REMOVE;

  {
    std::lock_guard<std::mutex> guard (self->priv->lock);

    reason = client->close_reason;
    if (!reason) {
      switch (client->write (g_get_monotonic_time (), &error)) {
      case GstSoupHttpServerWriteResult::DRAINED:
        g_clear_pointer (&client->write_source, g_source_unref);
        if (client->close_when_drained)
          reason = "end of stream";
        break;
      case GstSoupHttpServerWriteResult::BLOCKED:
        ret = G_SOURCE_CONTINUE;
        break;
      case GstSoupHttpServerWriteResult::FAILED:
        GST_DEBUG_OBJECT (self, "client %" G_GUINT64_FORMAT ": %s", client->id,
            error ? error->message : "write failed");
        reason = "connection lost";
        break;
      }
    }
    /* A render waiting for a client to catch up may go on now. */
    if (self->priv->waiting_for_room)
      self->priv->cond.notify_all ();
    /* Removing destroys this source and frees data, after which neither
     * is touched. */
    if (reason)
      remove_client_locked (self, find_client_locked (self, client), reason,
          removed);
  }
  finish_removals (self, removed);
  return ret;
}

static gboolean
client_readable (GObject *, gpointer user_data)
{
  auto *data = static_cast<ClientSourceData *> (user_data);
  GstSoupHttpServerSink *self = data->self;
  GstSoupHttpServerClient *client = data->client;
  g_autoptr (GError) error = nullptr;
  guint8 scratch[4096];

  /* A streaming response expects nothing more from the client: discard
   * what it sends and watch for the end of the connection. */
  gssize n = g_pollable_input_stream_read_nonblocking (client->input, scratch,
      sizeof (scratch), nullptr, &error);
  if (n > 0 ||
      (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
    return G_SOURCE_CONTINUE;

  RemovedClients removed;
  {
    std::lock_guard<std::mutex> guard (self->priv->lock);
    GST_DEBUG_OBJECT (self, "client %" G_GUINT64_FORMAT ": %s", client->id,
        n == 0 ? "end of input" : error->message);
    /* Removing the client destroys this source while it is dispatched,
     * which GLib allows; neither is touched afterwards. */
    remove_client_locked (self, find_client_locked (self, client),
        "closed by the client", removed);
  }
  finish_removals (self, removed);
  return G_SOURCE_REMOVE;
}

/* Writes to every client that has data and is not waiting for its socket,
 * and removes the clients marked for removal. */
static gboolean
flush_clients (gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  RemovedClients removed;

  {
    std::lock_guard<std::mutex> guard (priv->lock);
    gint64 now = g_get_monotonic_time ();

    for (auto it = priv->clients.begin (); it != priv->clients.end ();) {
      auto next = std::next (it);
      const char *reason = nullptr;

      if (!service_client_locked (self, **it, now, &reason))
        remove_client_locked (self, it, reason, removed);
      it = next;
    }
  }
  finish_removals (self, removed);
  return G_SOURCE_CONTINUE;
}

static gboolean
check_timeouts (gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  RemovedClients removed;

  {
    std::lock_guard<std::mutex> guard (priv->lock);
    gint64 now = g_get_monotonic_time ();
    gint64 limit = (gint64) (priv->run.timeout / GST_USECOND);

    for (auto it = priv->clients.begin (); it != priv->clients.end ();) {
      auto next = std::next (it);
      if (!(*it)->empty () && now - (*it)->last_progress > limit)
        remove_client_locked (self, it, "timed out", removed);
      it = next;
    }
  }
  finish_removals (self, removed);
  return G_SOURCE_CONTINUE;
}

/* Wakes the server thread to write. Any thread. */
static void
wake_server (GstSoupHttpServerSink *self)
{
  g_source_set_ready_time (self->priv->flush_source, 0);
}

static gboolean
flush_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  g_source_set_ready_time (source, -1);
  return callback (data);
}

static GSourceFuncs flush_source_funcs = {nullptr, nullptr,
    flush_source_dispatch, nullptr, nullptr, nullptr};

/* ---- requests (server thread) ---- */

static void
set_stream_headers (GstSoupHttpServerSink *self, SoupMessageHeaders *headers,
    const std::string &content_type)
{
  soup_message_headers_replace (headers, "Content-Type", content_type.c_str ());
  soup_message_headers_replace (headers, "Cache-Control",
      "no-cache, no-store, must-revalidate");
  soup_message_headers_replace (headers, "Pragma", "no-cache");
  if (!self->priv->run.cors.empty ())
    soup_message_headers_replace (headers, "Access-Control-Allow-Origin",
        self->priv->run.cors.c_str ());
}

static void
respond_error (SoupServerMessage *msg, guint status)
{
  const char *phrase = soup_status_get_phrase (status);
  g_autofree gchar *body = g_strdup_printf ("%u %s\n", status, phrase);

  soup_server_message_set_status (msg, status, nullptr);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, body,
      strlen (body));
}

static void
accept_client (GstSoupHttpServerSink *self, SoupServerMessage *msg)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  bool http_1_0 = soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0;
  std::string address = "unknown";

  if (G_IS_INET_SOCKET_ADDRESS (remote)) {
    GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (remote);
    g_autofree gchar *host = g_inet_address_to_string (
        g_inet_socket_address_get_address (inet));
    bool ipv6 = strchr (host, ':') != nullptr;
    address = (ipv6 ? "[" + std::string (host) + "]" : std::string (host)) +
              ":" + std::to_string (g_inet_socket_address_get_port (inet));
  }

  {
    std::lock_guard<std::mutex> guard (priv->lock);
    if (priv->shutting_down ||
        (priv->run.max_clients > 0 &&
            priv->clients.size () >= priv->run.max_clients)) {
      GST_INFO_OBJECT (self, "refusing %s: %u clients connected",
          address.c_str (), (guint) priv->clients.size ());
      soup_message_headers_replace (soup_server_message_get_response_headers (
                                        msg),
          "Retry-After", "5");
      respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE);
      return;
    }
  }

  /* From here on the connection is ours: we write the response. */
  g_autoptr (GIOStream) stream = soup_server_message_steal_connection (msg);
  if (!stream)
    return;

  RemovedClients removed;
  guint64 id;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    id = priv->next_client_id++;
    ClientPtr client (new GstSoupHttpServerClient (id, address, stream));

    client->http_1_0 = http_1_0;
    if (!client->output) {
      GST_WARNING_OBJECT (self, "cannot write to %s without blocking",
          address.c_str ());
      g_io_stream_close (stream, nullptr, nullptr);
      return;
    }
    if (client->input) {
      client->read_source =
          g_pollable_input_stream_create_source (client->input, nullptr);
      g_source_set_callback (client->read_source,
          G_SOURCE_FUNC (client_readable),
          new ClientSourceData{self, client.get ()}, client_source_data_free);
      g_source_attach (client->read_source, priv->context);
    }
    if (priv->mode != StreamMode::NONE)
      start_client_locked (self, *client);

    priv->clients.push_back (std::move (client));
    priv->clients_total++;
    priv->cond.notify_all ();

    const char *reason = nullptr;
    if (!service_client_locked (self, *priv->clients.back (),
            g_get_monotonic_time (), &reason))
      remove_client_locked (self, std::prev (priv->clients.end ()), reason,
          removed);
  }

  GST_INFO_OBJECT (self, "client %" G_GUINT64_FORMAT " (%s) connected", id,
      address.c_str ());
  g_signal_emit (self, signals[SIGNAL_CLIENT_ADDED], 0, id, address.c_str ());
  finish_removals (self, removed);
}

static void
handle_request (SoupServer *, SoupServerMessage *msg, const char *path,
    GHashTable *, gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  const char *method = soup_server_message_get_method (msg);

  GST_DEBUG_OBJECT (self, "%s %s", method, path);

  if (priv->run.path != path) {
    respond_error (msg, SOUP_STATUS_NOT_FOUND);
    return;
  }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
    soup_message_headers_replace (soup_server_message_get_response_headers (
                                      msg),
        "Allow", "GET, HEAD");
    respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED);
    return;
  }
  if (method == SOUP_METHOD_GET) {
    accept_client (self, msg);
    return;
  }

  std::string content_type;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    content_type = priv->content_type;
  }
  if (content_type.empty ()) {
    respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE);
    return;
  }
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  set_stream_headers (self, headers, content_type);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_EOF);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, nullptr);
}

/* Every response libsoup sends itself (errors, HEAD, 401) closes its
 * connection: clients of a stream have no use for keep-alive, and libsoup
 * 3.2 does not release idle connections that the client closes. */
static void
close_after_response (SoupServer *, SoupServerMessage *msg, gpointer)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Connection", "close");
}

static gboolean
check_credentials (SoupAuthDomain *, SoupServerMessage *, const char *user,
    const char *password, gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);
  const Settings &run = self->priv->run;
  const std::string given = std::string (user ? user : "") + ":" +
                            (password ? password : "");
  const std::string expected = run.user + ":" + run.password;
  guint8 diff = given.size () != expected.size ();

  /* Compare every byte so the time taken does not tell how much matched. */
  for (size_t i = 0; i < given.size (); i++)
    diff |= given[i] ^ expected[i % expected.size ()];
  if (diff)
    GST_INFO_OBJECT (self, "rejected credentials");
  return diff == 0;
}

/* ---- server thread ---- */

static bool
load_certificate (GstSoupHttpServerSink *self, GTlsCertificate **cert)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  const Settings &run = priv->run;
  g_autoptr (GError) error = nullptr;

  *cert = nullptr;
  if (run.certificate_file.empty ()) {
    if (run.private_key_file.empty ())
      return true;
    priv->start_error_code = GST_RESOURCE_ERROR_SETTINGS;
    priv->start_error = "private-key-file is set but certificate-file is not";
    return false;
  }
  const std::string &key = run.private_key_file.empty () ? run.certificate_file
                                                         : run.private_key_file;
  *cert = g_tls_certificate_new_from_files (run.certificate_file.c_str (),
      key.c_str (), &error);
  if (!*cert) {
    priv->start_error_code = GST_RESOURCE_ERROR_OPEN_READ;
    priv->start_error = "Could not load the TLS certificate '" +
                        run.certificate_file + "' with key '" + key +
                        "': " + error->message;
    return false;
  }
  return true;
}

/* The addresses to listen on: the address itself, or every address a host
 * name resolves to (localhost: 127.0.0.1 and ::1). */
static GList *
resolve_address (GstSoupHttpServerSink *self, GError **error)
{
  const Settings &run = self->priv->run;
  GInetAddress *inet = g_inet_address_new_from_string (run.address.c_str ());

  if (inet)
    return g_list_append (nullptr, inet);
  g_autoptr (GResolver) resolver = g_resolver_get_default ();
  return g_resolver_lookup_by_name (resolver, run.address.c_str (), nullptr,
      error);
}

/* libsoup listens with a backlog of 10, too short for a crowd of viewers
 * connecting at once: their connections would wait for SYN retries. */
static GSocket *
make_listener (GInetAddress *inet, gint port, GError **error)
{
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  GSocket *socket = g_socket_new (g_inet_address_get_family (inet),
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);

  if (!socket)
    return nullptr;
  g_socket_set_listen_backlog (socket, LISTEN_BACKLOG);
  if (!g_socket_bind (socket, address, TRUE, error) ||
      !g_socket_listen (socket, error)) {
    g_object_unref (socket);
    return nullptr;
  }
  return socket;
}

static gint
listening_port (SoupServer *server)
{
  GSList *listeners = soup_server_get_listeners (server);
  gint port = 0;

  if (listeners) {
    g_autoptr (GSocketAddress)
        local = g_socket_get_local_address (G_SOCKET (listeners->data),
            nullptr);
    if (G_IS_INET_SOCKET_ADDRESS (local))
      port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  }
  g_slist_free (listeners);
  return port;
}

static bool
setup_server (GstSoupHttpServerSink *self)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  const Settings &run = priv->run;
  g_autoptr (GTlsCertificate) cert = nullptr;
  g_autoptr (GError) error = nullptr;

  if (!load_certificate (self, &cert))
    return false;

  priv->server = soup_server_new ("server-header",
      "GStreamer-souphttpserversink", "tls-certificate", cert, nullptr);
  soup_server_add_handler (priv->server, nullptr, handle_request, self,
      nullptr);
  g_signal_connect (priv->server, "request-started",
      G_CALLBACK (close_after_response), nullptr);

  if (!run.user.empty ()) {
    g_autoptr (SoupAuthDomain)
        domain = soup_auth_domain_basic_new ("realm", "GStreamer", nullptr);
    soup_auth_domain_basic_set_auth_callback (domain, check_credentials, self,
        nullptr);
    soup_auth_domain_add_path (domain, "/");
    soup_server_add_auth_domain (priv->server, domain);
  }

  GList *addresses = resolve_address (self, &error);
  if (!addresses) {
    priv->start_error_code = GST_RESOURCE_ERROR_NOT_FOUND;
    priv->start_error = "Could not resolve the address '" + run.address +
                        "': " + error->message;
    return false;
  }

  /* All addresses share the port the first one got. */
  gint port = run.port;
  SoupServerListenOptions options = cert ? SOUP_SERVER_LISTEN_HTTPS
                                         : (SoupServerListenOptions) 0;
  for (GList *l = addresses; l; l = l->next) {
    g_autofree gchar *name = g_inet_address_to_string (
        G_INET_ADDRESS (l->data));
    g_autoptr (GError) listen_error = nullptr;
    g_autoptr (GSocket)
        socket = make_listener (G_INET_ADDRESS (l->data), port, &listen_error);

    if (socket && soup_server_listen_socket (priv->server, socket, options,
                      &listen_error)) {
      port = listening_port (priv->server);
    } else if (l == addresses) {
      priv->start_error_code = GST_RESOURCE_ERROR_OPEN_READ_WRITE;
      priv->start_error = "Could not listen on " + std::string (name) +
                          " port " + std::to_string (port) + ": " +
                          listen_error->message;
      g_resolver_free_addresses (addresses);
      return false;
    } else {
      GST_WARNING_OBJECT (self, "not listening on %s: %s", name,
          listen_error->message);
    }
  }
  g_resolver_free_addresses (addresses);

  GST_OBJECT_LOCK (self);
  priv->current_port = port;
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (self, "serving %s://%s:%d%s", cert ? "https" : "http",
      run.address.c_str (), port, run.path.c_str ());
  return true;
}

static void
server_thread (GstSoupHttpServerSink *self)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;

  g_main_context_push_thread_default (priv->context);

  bool ok = setup_server (self);
  if (ok && priv->run.timeout > 0) {
    /* Check a few times per timeout, at least once a second. */
    guint interval = (guint) CLAMP (priv->run.timeout / GST_MSECOND / 4, 10,
        1000);
    priv->timeout_source = g_timeout_source_new (interval);
    g_source_set_callback (priv->timeout_source, check_timeouts, self, nullptr);
    g_source_attach (priv->timeout_source, priv->context);
  }
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    priv->thread_ready = true;
    priv->cond.notify_all ();
  }

  if (ok)
    g_main_loop_run (priv->loop);

  if (priv->timeout_source) {
    g_source_destroy (priv->timeout_source);
    g_clear_pointer (&priv->timeout_source, g_source_unref);
  }
  if (priv->server) {
    soup_server_disconnect (priv->server);
    g_clear_object (&priv->server);
  }
  /* Let libsoup finish the connections it still owns. */
  while (g_main_context_iteration (priv->context, FALSE)) {
  }
  g_main_context_pop_thread_default (priv->context);
}

static gboolean
cancel_closes (gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);

  GST_DEBUG_OBJECT (self, "cancelling %u connection closes",
      self->priv->pending_closes);
  g_cancellable_cancel (self->priv->cancellable);
  return G_SOURCE_REMOVE;
}

static gboolean
shutdown_server (gpointer user_data)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (user_data);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  RemovedClients removed;

  {
    std::lock_guard<std::mutex> guard (priv->lock);
    priv->shutting_down = true;
    while (!priv->clients.empty ())
      remove_client_locked (self, priv->clients.begin (), "shutting down",
          removed);
  }
  finish_removals (self, removed);
  soup_server_disconnect (priv->server);

  if (priv->pending_closes == 0) {
    g_main_loop_quit (priv->loop);
  } else {
    /* TLS close_notify may wait for a peer that does not read. */
    GSource *grace = g_timeout_source_new (DEFAULT_CLOSE_GRACE_MS);
    g_source_set_callback (grace, cancel_closes, self, nullptr);
    g_source_attach (grace, priv->context);
    g_source_unref (grace);
  }
  return G_SOURCE_REMOVE;
}

/* ---- GstBaseSink ---- */

static void
reset_stream_locked (GstSoupHttpServerSinkPrivate *priv)
{
  priv->mode = StreamMode::NONE;
  priv->content_type.clear ();
  priv->part_type.clear ();
  priv->streamheaders.clear ();
  priv->caps_have_streamheader = false;
  priv->last_frame.clear ();
  priv->current_frame.clear ();
  priv->current_frame_bytes = 0;
  priv->current_frame_complete = false;
  priv->delimiter.reset ();
  priv->part_open = false;
  priv->part_remaining = -1;
}

static void
release_server_objects (GstSoupHttpServerSinkPrivate *priv)
{
  if (priv->flush_source) {
    g_source_destroy (priv->flush_source);
    g_clear_pointer (&priv->flush_source, g_source_unref);
  }
  g_clear_pointer (&priv->loop, g_main_loop_unref);
  g_clear_pointer (&priv->context, g_main_context_unref);
  g_clear_object (&priv->cancellable);
}

static gboolean
gst_soup_http_server_sink_start (GstBaseSink *sink)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (sink);
  GstSoupHttpServerSinkPrivate *priv = self->priv;

  GST_OBJECT_LOCK (self);
  priv->run = priv->settings;
  GST_OBJECT_UNLOCK (self);

  {
    std::lock_guard<std::mutex> guard (priv->lock);
    reset_stream_locked (priv);
    priv->flushing = false;
    priv->eos = false;
    priv->shutting_down = false;
    priv->thread_ready = false;
    priv->start_error.clear ();
    priv->clients_total = 0;
    priv->removed_bytes_served = 0;
    priv->removed_frames_dropped = 0;
    priv->pending_closes = 0;
    /* A boundary no image is likely to contain. */
    g_autofree gchar *uuid = g_uuid_string_random ();
    priv->boundary = std::string ("gst-") + uuid;
  }

  priv->context = g_main_context_new ();
  priv->loop = g_main_loop_new (priv->context, FALSE);
  priv->cancellable = g_cancellable_new ();
  priv->flush_source = g_source_new (&flush_source_funcs, sizeof (GSource));
  g_source_set_callback (priv->flush_source, flush_clients, self, nullptr);
  g_source_set_priority (priv->flush_source, G_PRIORITY_HIGH);
  g_source_attach (priv->flush_source, priv->context);

  priv->thread = std::thread (server_thread, self);
  {
    std::unique_lock<std::mutex> guard (priv->lock);
    priv->cond.wait (guard, [priv] { return priv->thread_ready; });
  }

  if (!priv->start_error.empty ()) {
    priv->thread.join ();
    release_server_objects (priv);
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        GST_RESOURCE_ERROR, priv->start_error_code,
        g_strdup (priv->start_error.c_str ()), nullptr, __FILE__, GST_FUNCTION,
        __LINE__);
    return FALSE;
  }
  g_object_notify (G_OBJECT (self), "current-port");
  return TRUE;
}

static gboolean
gst_soup_http_server_sink_stop (GstBaseSink *sink)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (sink);
  GstSoupHttpServerSinkPrivate *priv = self->priv;

  if (priv->thread.joinable ()) {
    g_main_context_invoke (priv->context, shutdown_server, self);
    priv->thread.join ();
  }
  release_server_objects (priv);

  {
    std::lock_guard<std::mutex> guard (priv->lock);
    priv->clients.clear ();
    reset_stream_locked (priv);
  }

  GST_OBJECT_LOCK (self);
  priv->current_port = 0;
  GST_OBJECT_UNLOCK (self);
  g_object_notify (G_OBJECT (self), "current-port");
  return TRUE;
}

static gboolean
gst_soup_http_server_sink_unlock (GstBaseSink *sink)
{
  GstSoupHttpServerSinkPrivate *priv = GST_SOUP_HTTP_SERVER_SINK (sink)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);

  priv->flushing = true;
  priv->cond.notify_all ();
  return TRUE;
}

static gboolean
gst_soup_http_server_sink_unlock_stop (GstBaseSink *sink)
{
  GstSoupHttpServerSinkPrivate *priv = GST_SOUP_HTTP_SERVER_SINK (sink)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);

  priv->flushing = false;
  return TRUE;
}

static std::string
concatenate (const std::vector<GstSoupHttpServerChunkPtr> &chunks)
{
  std::string bytes;
  for (const GstSoupHttpServerChunkPtr &chunk : chunks)
    bytes.append (reinterpret_cast<const char *> (chunk->data ()),
        chunk->size ());
  return bytes;
}

/* The same bytes, however they are split into buffers: webmmux pushes its
 * header in two HEADER buffers and puts it in the caps as one. */
static bool
same_streamheaders (const std::vector<GstSoupHttpServerChunkPtr> &a,
    const std::vector<GstSoupHttpServerChunkPtr> &b)
{
  return concatenate (a) == concatenate (b);
}

static gboolean
gst_soup_http_server_sink_set_caps (GstBaseSink *sink, GstCaps *caps)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (sink);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  GstStructure *s = gst_caps_get_structure (caps, 0);
  const gchar *name = gst_structure_get_name (s);
  std::vector<GstSoupHttpServerChunkPtr> streamheaders;
  StreamMode mode;
  std::string content_type, part_type, multipart_boundary;

  if (g_str_equal (name, "multipart/x-mixed-replace")) {
    const gchar *boundary = gst_structure_get_string (s, "boundary");
    if (!boundary) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT,
          ("Multipart caps without boundary"),
          ("caps: %" GST_PTR_FORMAT, caps));
      return FALSE;
    }
    mode = StreamMode::MULTIPART;
    content_type = std::string (name) + "; boundary=" + boundary;
    multipart_boundary = boundary;
  } else if (g_str_has_prefix (name, "image/")) {
    mode = StreamMode::IMAGE;
    part_type = name;
  } else {
    const GValue *headers = gst_structure_get_value (s, "streamheader");
    mode = StreamMode::STREAM;
    content_type = g_str_equal (name, "video/mpegts") ? "video/mp2t" : name;
    for (guint i = 0; headers && GST_VALUE_HOLDS_ARRAY (headers) &&
                      i < gst_value_array_get_size (headers);
         i++) {
      const GValue *v = gst_value_array_get_value (headers, i);
      GstBuffer *buffer = GST_VALUE_HOLDS_BUFFER (v) ? gst_value_get_buffer (v)
                                                     : nullptr;
      GstSoupHttpServerChunkPtr chunk =
          buffer ? GstSoupHttpServerChunk::from_buffer (buffer) : nullptr;
      if (chunk && chunk->size () > 0)
        streamheaders.push_back (chunk);
    }
  }

  bool caps_have_streamheader = !streamheaders.empty ();
  std::unique_lock<std::mutex> guard (priv->lock);
  if (mode == StreamMode::IMAGE)
    content_type = "multipart/x-mixed-replace; boundary=" + priv->boundary;

  bool same_type = priv->mode != StreamMode::NONE &&
                   content_type == priv->content_type;
  /* Muxers push their headers as HEADER buffers before they put them in
   * the caps: those collected from the buffers still hold. */
  if (same_type && !caps_have_streamheader)
    streamheaders = priv->streamheaders;
  if (priv->mode != StreamMode::NONE &&
      (!same_type ||
          !same_streamheaders (streamheaders, priv->streamheaders))) {
    GST_INFO_OBJECT (self, "stream format changed, closing every connection");
    for (ClientPtr &client : priv->clients)
      client->close_reason = "stream format changed";
    reset_stream_locked (priv);
  }
  priv->caps_have_streamheader = caps_have_streamheader;
  if (mode == StreamMode::MULTIPART)
    priv->delimiter = GstSoupHttpServerChunk::from_string (
        "--" + multipart_boundary + "\r\n");
  else if (mode == StreamMode::IMAGE)
    priv->delimiter = make_delimiter_locked (self, false);
  GST_DEBUG_OBJECT (self, "serving %s with %u stream headers",
      content_type.c_str (), (guint) streamheaders.size ());
  priv->mode = mode;
  priv->content_type = content_type;
  priv->part_type = part_type;
  priv->streamheaders = std::move (streamheaders);

  for (ClientPtr &client : priv->clients) {
    if (!client->started && !client->close_reason)
      start_client_locked (self, *client);
  }
  bool wake = !priv->clients.empty ();
  guard.unlock ();

  if (wake)
    wake_server (self);
  return TRUE;
}

static void
handle_eos (GstSoupHttpServerSink *self)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  std::unique_lock<std::mutex> guard (priv->lock);

  priv->eos = true;
  for (ClientPtr &client : priv->clients) {
    if (!client->started) {
      client->close_reason = "end of stream";
      continue;
    }
    client->close_when_drained = true;
  }
  guard.unlock ();
  wake_server (self);

  /* Post EOS once every client got its data or was dropped (which the
   * timeout bounds). */
  guard.lock ();
  priv->cond.wait (guard,
      [priv] { return priv->clients.empty () || priv->flushing; });
}

static gboolean
gst_soup_http_server_sink_event (GstBaseSink *sink, GstEvent *event)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (sink);

  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_EOS:
    handle_eos (self);
    break;
  case GST_EVENT_FLUSH_STOP: {
    std::lock_guard<std::mutex> guard (self->priv->lock);
    self->priv->eos = false;
    break;
  }
  default:
    break;
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (sink, event);
}

static gint64
parse_content_length (const guint8 *data, gsize size)
{
  std::string head (reinterpret_cast<const char *> (data), size);
  static const char name[] = "\r\ncontent-length:";

  for (char &c : head)
    c = g_ascii_tolower (c);
  size_t pos = head.find (name);
  if (pos == std::string::npos)
    return -1;
  const char *value = head.c_str () + pos + strlen (name);
  while (*value == ' ' || *value == '\t')
    value++;
  if (!g_ascii_isdigit (*value))
    return -1;
  return (gint64) g_ascii_strtoull (value, nullptr, 10);
}

/* multipartmux puts the delimiter in front of each part, so a client would
 * only know that a part is complete when the next one starts. The sink moves
 * the delimiter to right after the part (after Content-Length bytes and the
 * CRLF), where it closes the frame. */
static void
make_multipart_items_locked (GstSoupHttpServerSink *self, GstBuffer *buffer,
    const GstSoupHttpServerChunkPtr &data,
    std::vector<GstSoupHttpServerItem> &items)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  const GstSoupHttpServerChunkPtr &delimiter = priv->delimiter;

  if (!GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT)) {
    if (priv->part_open)
      items.push_back ({delimiter, false});
    bool has_delimiter = data->size () > delimiter->size () &&
                         memcmp (data->data (), delimiter->data (),
                             delimiter->size ()) == 0;
    items.push_back (
        {has_delimiter ? GstSoupHttpServerChunk::from_buffer (buffer,
                             delimiter->size ())
                       : data,
            true});
    priv->part_open = true;
    priv->part_remaining = parse_content_length (data->data (), data->size ());
    if (priv->part_remaining >= 0)
      priv->part_remaining += 2;
    return;
  }

  items.push_back ({data, false});
  if (priv->part_open && priv->part_remaining > 0) {
    priv->part_remaining -= data->size ();
    if (priv->part_remaining == 0) {
      items.push_back ({delimiter, false});
      priv->part_open = false;
    } else if (priv->part_remaining < 0) {
      priv->part_remaining = -1;
    }
  }
}

/* Splits a buffer into the entries every client queues. */
static bool
make_items (GstSoupHttpServerSink *self, GstBuffer *buffer,
    std::vector<GstSoupHttpServerItem> &items)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  bool delta = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  std::vector<GstSoupHttpServerChunkPtr> data;
  gsize size = 0;

  /* A buffer of several memories (a frame kafkasrc joined from several
   * Kafka messages) is queued memory by memory, without a copy; but the
   * multipart headers the sink reads come whole. */
  guint n = gst_buffer_n_memory (buffer);
  if (n > 1 && (priv->mode != StreamMode::MULTIPART || delta)) {
    for (guint i = 0; i < n; i++)
      data.push_back (GstSoupHttpServerChunk::from_memory (buffer, i));
  } else {
    data.push_back (GstSoupHttpServerChunk::from_buffer (buffer));
  }
  for (const GstSoupHttpServerChunkPtr &chunk : data) {
    if (!chunk)
      return false;
    size += chunk->size ();
  }

  if (priv->mode == StreamMode::IMAGE) {
    g_autofree gchar *header =
        g_strdup_printf ("Content-Type: %s\r\nContent-Length: %" G_GSIZE_FORMAT
                         "\r\n\r\n",
            priv->part_type.c_str (), size);
    items.push_back ({GstSoupHttpServerChunk::from_string (header), true});
    for (const GstSoupHttpServerChunkPtr &chunk : data)
      items.push_back ({chunk, false});
    items.push_back ({make_delimiter_locked (self, true), false});
  } else if (priv->mode == StreamMode::MULTIPART) {
    for (const GstSoupHttpServerChunkPtr &chunk : data)
      make_multipart_items_locked (self, buffer, chunk, items);
  } else {
    for (size_t i = 0; i < data.size (); i++)
      items.push_back ({data[i], i == 0 && !delta});
  }
  return true;
}

static void
remember_frame_locked (GstSoupHttpServerSinkPrivate *priv,
    const std::vector<GstSoupHttpServerItem> &items)
{
  if (priv->mode == StreamMode::IMAGE) {
    /* An image is complete on arrival. */
    priv->last_frame = items;
    return;
  }
  for (const GstSoupHttpServerItem &item : items) {
    if (item.frame_start) {
      if (!priv->current_frame.empty ())
        priv->last_frame.swap (priv->current_frame);
      priv->current_frame.clear ();
      priv->current_frame_bytes = 0;
    } else if (priv->current_frame.empty ()) {
      continue;
    }
    priv->current_frame.push_back (item);
    priv->current_frame_bytes += item.chunk->size ();
  }
  priv->current_frame_complete = priv->mode == StreamMode::MULTIPART &&
                                 !priv->current_frame.empty () &&
                                 !priv->part_open;

  /* A stream with rare keyframes must not pile up in memory: past this
   * bound new clients wait for the next keyframe instead. */
  if (priv->current_frame_bytes > MAX_REMEMBERED_FRAME_BYTES) {
    priv->last_frame.clear ();
    priv->current_frame.clear ();
    priv->current_frame_bytes = 0;
  }
}

/* A HEADER buffer of a continuous stream: part of the stream headers, unless
 * the caps carry them. */
static GstFlowReturn
add_header_buffer_locked (GstSoupHttpServerSink *self, GstBuffer *buffer)
{
  GstSoupHttpServerSinkPrivate *priv = self->priv;

  if (priv->caps_have_streamheader)
    return GST_FLOW_OK;

  GstSoupHttpServerChunkPtr chunk = GstSoupHttpServerChunk::from_buffer (
      buffer);
  if (!chunk)
    return GST_FLOW_ERROR;
  priv->streamheaders.push_back (chunk);
  for (ClientPtr &client : priv->clients) {
    if (client->started && !client->close_reason)
      client->push_always (chunk);
  }
  wake_server (self);
  return GST_FLOW_OK;
}

/* Whether a client could take another frame without skipping one. */
static bool
client_has_room_locked (GstSoupHttpServerSinkPrivate *priv)
{
  for (const ClientPtr &client : priv->clients) {
    if (client->close_reason)
      continue;
    if (!client->started || client->has_room (priv->run.max_client_frames,
                                priv->run.max_client_bytes))
      return true;
  }
  return false;
}

static GstFlowReturn
gst_soup_http_server_sink_render (GstBaseSink *sink, GstBuffer *buffer)
{
  GstSoupHttpServerSink *self = GST_SOUP_HTTP_SERVER_SINK (sink);
  GstSoupHttpServerSinkPrivate *priv = self->priv;
  std::vector<GstSoupHttpServerItem> items;

  if (gst_buffer_get_size (buffer) == 0)
    return GST_FLOW_OK;

  std::unique_lock<std::mutex> guard (priv->lock);
  /* Every client gets the stream headers when it connects. */
  if (priv->mode == StreamMode::STREAM &&
      GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_HEADER))
    return add_header_buffer_locked (self, buffer);

  if (!make_items (self, buffer, items)) {
    guard.unlock ();
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not read a buffer"),
        (nullptr));
    return GST_FLOW_ERROR;
  }

  while (priv->run.wait_for_clients && !client_has_room_locked (priv)) {
    if (priv->flushing) {
      /* Unlocked for a state change: hold the buffer until PLAYING again,
       * or give up if this is a flush. */
      guard.unlock ();
      GstFlowReturn ret = gst_base_sink_wait_preroll (sink);
      if (ret != GST_FLOW_OK)
        return ret;
      guard.lock ();
      continue;
    }
    GST_DEBUG_OBJECT (self, priv->clients.empty ()
                                ? "waiting for a client"
                                : "waiting for a client to catch up");
    priv->waiting_for_room = true;
    priv->cond.wait (guard);
    priv->waiting_for_room = false;
  }

  remember_frame_locked (priv, items);

  gint64 now = g_get_monotonic_time ();
  bool wake = false;
  for (ClientPtr &client : priv->clients) {
    if (!client->started || client->close_reason)
      continue;
    for (const GstSoupHttpServerItem &item : items) {
      if (client->push (item, priv->run.max_client_frames,
              priv->run.max_client_bytes, now) &&
          !client->write_source)
        wake = true;
    }
  }
  guard.unlock ();

  if (wake)
    wake_server (self);
  return GST_FLOW_OK;
}
