/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* souphttpserversink as HTTP clients see it: libsoup clients, and raw
 * sockets for clients that misbehave. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include <dirent.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

/* ---- frames: deterministic bytes that carry their index ---- */

static std::string
make_frame (guint index, guint base_size = 2000)
{
  gsize size = base_size + (index * 7919) % 5000;
  std::string frame (size, '\0');

  for (gsize i = 0; i < size; i++)
    frame[i] = (char) ((index * 31 + i * 7) & 0xff);
  memcpy (&frame[0], &index, sizeof (index));
  memcpy (&frame[sizeof (index)], &base_size, sizeof (base_size));
  return frame;
}

/* The index of a frame whose bytes are exactly make_frame (), or -1. */
static gint
frame_index (const std::string &data)
{
  guint index, base_size;

  if (data.size () < sizeof (index) + sizeof (base_size))
    return -1;
  memcpy (&index, data.data (), sizeof (index));
  memcpy (&base_size, data.data () + sizeof (index), sizeof (base_size));
  if (base_size > data.size ())
    return -1;
  return data == make_frame (index, base_size) ? (gint) index : -1;
}

static GstBuffer *
frame_buffer (guint index, guint base_size = 2000)
{
  std::string frame = make_frame (index, base_size);
  GstBuffer *buffer = gst_buffer_new_memdup (frame.data (), frame.size ());

  GST_BUFFER_PTS (buffer) = index * GST_SECOND / 30;
  return buffer;
}

/* ---- the sink under test, fed by a harness ---- */

struct Server
{
  GstHarness *h = nullptr;
  GstElement *sink = nullptr;
  gint port = 0;

  std::mutex lock;
  std::condition_variable cond;
  guint added = 0;
  guint removed = 0;
  std::map<guint64, GstStructure *> removed_stats;

  explicit Server (const gchar *properties, const gchar *caps = "image/jpeg")
  {
    g_autofree gchar *launch =
        g_strdup_printf ("souphttpserversink name=sink port=0 %s", properties);

    h = gst_harness_new_parse (launch);
    sink = gst_harness_find_element (h, "souphttpserversink");
    g_signal_connect (sink, "client-added", G_CALLBACK (on_added), this);
    g_signal_connect (sink, "client-removed", G_CALLBACK (on_removed), this);
    gst_harness_play (h);
    g_object_get (sink, "current-port", &port, nullptr);
    fail_unless (port > 0);
    if (caps)
      gst_harness_set_src_caps_str (h, caps);
  }

  ~Server ()
  {
    gst_harness_teardown (h);
    gst_object_unref (sink);
    for (auto &kv : removed_stats)
      gst_structure_free (kv.second);
  }

  static void on_added (GstElement *, guint64, const gchar *, Server *self)
  {
    std::lock_guard<std::mutex> guard (self->lock);
    self->added++;
    self->cond.notify_all ();
  }

  static void on_removed (GstElement *, guint64 id, const gchar *,
      GstStructure *stats, Server *self)
  {
    std::lock_guard<std::mutex> guard (self->lock);
    self->removed++;
    self->removed_stats[id] = gst_structure_copy (stats);
    self->cond.notify_all ();
  }

  void wait_added (guint n)
  {
    std::unique_lock<std::mutex> guard (lock);
    cond.wait (guard, [&] { return added >= n; });
  }

  void wait_removed (guint n)
  {
    std::unique_lock<std::mutex> guard (lock);
    cond.wait (guard, [&] { return removed >= n; });
  }

  std::string url (const char *path = "/", const char *scheme = "http") const
  {
    return std::string (scheme) + "://127.0.0.1:" + std::to_string (port) +
           path;
  }

  void push (guint index, guint base_size = 2000)
  {
    fail_unless_equals_int (gst_harness_push (h,
                                frame_buffer (index, base_size)),
        GST_FLOW_OK);
  }

  void push_eos ()
  {
    fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  }

  guint stats_uint (const char *field)
  {
    GstStructure *stats = nullptr;
    guint value = 0;

    g_object_get (sink, "stats", &stats, nullptr);
    gst_structure_get_uint (stats, field, &value);
    gst_structure_free (stats);
    return value;
  }
};

/* ---- a libsoup client reading multipart parts ---- */

struct PartsResult
{
  guint status = 0;
  std::string content_type;
  std::vector<gint> frames; /* index per part, -1 for a corrupt part */
  bool length_mismatch = false;
  bool part_type_missing = false;
  std::string error;
};

static gboolean
accept_any_certificate (SoupMessage *, GTlsCertificate *, GTlsCertificateFlags,
    gpointer)
{
  return TRUE;
}

/* GETs url and reads up to max_parts parts (0: until the response ends).
 * progress, when given, is told the count of parts received so far. */
static PartsResult
read_parts (const std::string &url, guint max_parts,
    const char *authorization = nullptr,
    std::function<void (guint)> progress = nullptr)
{
  PartsResult r;
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  {
    g_autoptr (SoupSession)
        session = soup_session_new_with_options ("timeout", 60, nullptr);
    g_autoptr (SoupMessage) msg = soup_message_new ("GET", url.c_str ());
    g_autoptr (GError) error = nullptr;

    g_signal_connect (msg, "accept-certificate",
        G_CALLBACK (accept_any_certificate), nullptr);
    if (authorization)
      soup_message_headers_replace (soup_message_get_request_headers (msg),
          "Authorization", authorization);
    g_autoptr (GInputStream)
        in = soup_session_send (session, msg, nullptr, &error);
    r.status = soup_message_get_status (msg);
    if (!in) {
      r.error = error->message;
    } else if (r.status == SOUP_STATUS_OK) {
      const char *ct = soup_message_headers_get_content_type (
          soup_message_get_response_headers (msg), nullptr);
      r.content_type = ct ? ct : "";
      g_autoptr (SoupMultipartInputStream)
          multipart = soup_multipart_input_stream_new (msg, in);

      while (max_parts == 0 || r.frames.size () < max_parts) {
        g_autoptr (GInputStream)
            part = soup_multipart_input_stream_next_part (multipart, nullptr,
                &error);
        if (!part) {
          if (error)
            r.error = error->message;
          break;
        }
        SoupMessageHeaders *headers = soup_multipart_input_stream_get_headers (
            multipart);
        /* The body ended after a delimiter: libsoup reports that as parts
         * without headers. */
        if (!headers ||
            !soup_message_headers_get_one (headers, "Content-Length")) {
          if (headers &&
              soup_message_headers_get_content_type (headers, nullptr))
            r.length_mismatch = true;
          break;
        }
        if (!soup_message_headers_get_content_type (headers, nullptr))
          r.part_type_missing = true;
        goffset length = soup_message_headers_get_content_length (headers);

        std::string data;
        char chunk[16384];
        gssize n;
        while ((n = g_input_stream_read (part, chunk, sizeof (chunk), nullptr,
                    &error)) > 0)
          data.append (chunk, n);
        if (n < 0) {
          r.error = error->message;
          break;
        }
        if ((goffset) data.size () != length)
          r.length_mismatch = true;
        r.frames.push_back (frame_index (data));
        if (progress)
          progress (r.frames.size ());
      }
    }
  }
  g_main_context_pop_thread_default (context);
  return r;
}

/* Simple status check: method, url, optional Authorization. */
struct SimpleResponse
{
  guint status = 0;
  std::string body;
  SoupMessageHeaders *headers = nullptr;
  ~SimpleResponse ()
  {
    if (headers)
      soup_message_headers_unref (headers);
  }
};

static void
simple_request (const char *method, const std::string &url,
    SimpleResponse &response, const char *authorization = nullptr)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autoptr (SoupMessage) msg = soup_message_new (method, url.c_str ());
  g_autoptr (GError) error = nullptr;

  if (authorization)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", authorization);
  g_autoptr (GBytes)
      body = soup_session_send_and_read (session, msg, nullptr, &error);
  response.status = soup_message_get_status (msg);
  response.headers = soup_message_headers_ref (
      soup_message_get_response_headers (msg));
  if (body)
    response.body.assign ((const char *) g_bytes_get_data (body, nullptr),
        g_bytes_get_size (body));
}

static void
assert_consecutive (const PartsResult &r, gint first_index, gint count)
{
  fail_unless_equals_int (r.status, 200);
  fail_if (r.length_mismatch);
  fail_if (r.part_type_missing);
  fail_unless_equals_int (r.frames.size (), count);
  for (gint i = 0; i < count; i++)
    fail_unless_equals_int (r.frames[i], first_index + i);
}

/* ---- raw socket clients ---- */

static GSocket *
raw_connect (gint port, gint rcvbuf = 0)
{
  g_autoptr (GError) error = nullptr;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, &error);
  fail_unless (socket != nullptr);
  if (rcvbuf > 0)
    g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, rcvbuf, nullptr);
  g_autoptr (GInetAddress)
      inet = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  fail_unless (g_socket_connect (socket, address, nullptr, &error));
  const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  fail_unless_equals_int (g_socket_send (socket, request, strlen (request),
                              nullptr, nullptr),
      strlen (request));
  return socket;
}

static std::string
raw_read_all (GSocket *socket)
{
  std::string data;
  char chunk[65536];
  gssize n;

  while ((n = g_socket_receive (socket, chunk, sizeof (chunk), nullptr,
              nullptr)) > 0)
    data.append (chunk, n);
  return data;
}

/* Parses a raw multipart response. Complete parts go to frames; a part cut
 * short by the end of the data sets truncated. */
static bool
parse_raw_multipart (const std::string &data, std::vector<gint> &frames,
    bool &truncated)
{
  size_t end = data.find ("\r\n\r\n");
  if (end == std::string::npos)
    return false;
  std::string head = data.substr (0, end);
  size_t b = head.find ("boundary=");
  if (b == std::string::npos)
    return false;
  std::string boundary = head.substr (b + 9, head.find ("\r\n", b) - b - 9);
  std::string delimiter = "--" + boundary + "\r\n";
  size_t pos = end + 4;

  truncated = false;
  while (pos < data.size ()) {
    if (pos + delimiter.size () == data.size () &&
        data.compare (pos, delimiter.size (), delimiter) == 0)
      return true; /* closed after a delimiter */
    if (data.compare (pos, delimiter.size (), delimiter) != 0) {
      /* Either the final boundary or a cut in the middle of a delimiter. */
      truncated = data.compare (pos, boundary.size () + 4,
                      "--" + boundary + "--") != 0;
      return !truncated || data.size () - pos < delimiter.size ();
    }
    size_t headers_end = data.find ("\r\n\r\n", pos);
    if (headers_end == std::string::npos) {
      truncated = true;
      return true;
    }
    std::string headers = data.substr (pos, headers_end - pos);
    size_t cl = headers.find ("Content-Length: ");
    if (cl == std::string::npos)
      return false;
    gsize length = g_ascii_strtoull (headers.c_str () + cl + 16, nullptr, 10);
    size_t body = headers_end + 4;
    if (body + length + 2 > data.size ()) {
      truncated = true;
      return true;
    }
    frames.push_back (frame_index (data.substr (body, length)));
    if (data.compare (body + length, 2, "\r\n") != 0)
      return false;
    pos = body + length + 2;
  }
  return true;
}

static guint
count_fds ()
{
  guint n = 0;
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *e;
  if (!dir)
    return 0;
  while ((e = readdir (dir))) {
    if (g_getenv ("SHOW_FDS")) {
      g_autofree gchar *p = g_strdup_printf ("/proc/self/fd/%s", e->d_name);
      g_autofree gchar *t = g_file_read_link (p, nullptr);
      g_printerr ("fd %s -> %s\n", e->d_name, t);
    }
    n++;
  }
  closedir (dir);
  return n;
}

/* ---- tests ---- */

GST_START_TEST (test_clients_receive_identical_frames_in_order)
{
  const guint n_clients = 4, n_frames = 60;
  Server server ("max-client-frames=1000");
  std::vector<PartsResult> results (n_clients);
  std::vector<std::thread> threads;

  for (guint i = 0; i < n_clients; i++)
    threads.emplace_back (
        [&, i] { results[i] = read_parts (server.url (), 0); });
  server.wait_added (n_clients);
  fail_unless_equals_int (server.stats_uint ("clients-connected"), n_clients);
  GstStructure *stats = nullptr;
  g_signal_emit_by_name (server.sink, "get-stats", &stats);
  fail_unless_equals_int (gst_value_array_get_size (
                              gst_structure_get_value (stats, "clients")),
      n_clients);
  gst_structure_free (stats);

  for (guint i = 0; i < n_frames; i++)
    server.push (i);
  server.push_eos ();
  for (std::thread &t : threads)
    t.join ();

  for (const PartsResult &r : results) {
    fail_unless (g_str_has_prefix (r.content_type.c_str (),
        "multipart/x-mixed-replace"));
    assert_consecutive (r, 0, n_frames);
  }
  server.wait_removed (n_clients);
  fail_unless_equals_int (server.stats_uint ("clients-connected"), 0);
  for (auto &kv : server.removed_stats) {
    guint64 frames = 0, dropped = 1;
    gst_structure_get_uint64 (kv.second, "frames-served", &frames);
    gst_structure_get_uint64 (kv.second, "frames-dropped", &dropped);
    fail_unless_equals_int (frames, n_frames);
    fail_unless_equals_int (dropped, 0);
  }
}
GST_END_TEST;

static void push_multipartmux_frame (GstHarness *h, guint index);

GST_START_TEST (test_multipartmux_passthrough)
{
  /* multipartmux's own framing: header, data, footer per frame. */
  Server server ("max-client-frames=1000",
      "multipart/x-mixed-replace, boundary=(string)frame");
  const guint n_frames = 20;
  PartsResult r;
  std::thread t ([&] { r = read_parts (server.url (), 0); });

  server.wait_added (1);
  for (guint i = 0; i < n_frames; i++)
    push_multipartmux_frame (server.h, i);
  server.push_eos ();
  t.join ();

  fail_unless_equals_string (r.content_type.c_str (),
      "multipart/x-mixed-replace");
  fail_if (r.length_mismatch);
  fail_unless_equals_int (r.frames.size (), n_frames);
  for (guint i = 0; i < n_frames; i++)
    fail_unless_equals_int (r.frames[i], i);
}
GST_END_TEST;

/* Pushes frame index as multipartmux would: header, data, footer. */
static void
push_multipartmux_frame (GstHarness *h, guint index)
{
  std::string frame = make_frame (index);
  g_autofree gchar *header = g_strdup_printf (
      "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %" G_GSIZE_FORMAT
      "\r\n\r\n",
      frame.size ());
  GstBuffer *buffers[3] = {gst_buffer_new_memdup (header, strlen (header)),
      gst_buffer_new_memdup (frame.data (), frame.size ()),
      gst_buffer_new_memdup ("\r\n", 2)};
  GST_BUFFER_FLAG_SET (buffers[1], GST_BUFFER_FLAG_DELTA_UNIT);
  GST_BUFFER_FLAG_SET (buffers[2], GST_BUFFER_FLAG_DELTA_UNIT);
  for (GstBuffer *b : buffers)
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
}

/* Frame @index as a buffer of three memories, as kafkasrc joins a frame
 * that kafkasink split into three Kafka messages. */
static GstBuffer *
frame_buffer_in_parts (guint index, bool delta = false)
{
  std::string frame = make_frame (index);
  GstBuffer *buffer = gst_buffer_new ();
  gsize part = frame.size () / 3 + 1;
  for (gsize offset = 0; offset < frame.size (); offset += part) {
    gsize len = MIN (part, frame.size () - offset);
    gpointer data = g_memdup2 (frame.data () + offset, len);
    gst_buffer_append_memory (buffer,
        gst_memory_new_wrapped (GstMemoryFlags (0), data, len, 0, len, data,
            g_free));
  }
  GST_BUFFER_PTS (buffer) = index * GST_SECOND / 30;
  if (delta)
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  return buffer;
}

/* A buffer of several memories is served memory by memory (nothing merges
 * them into a copy), whole and in order, as an image part and as the data
 * of a multipartmux part. */
GST_START_TEST (test_buffers_of_several_memories)
{
  const guint n_frames = 10;
  for (bool multipartmux : {false, true}) {
    Server server ("max-client-frames=1000",
        multipartmux ? "multipart/x-mixed-replace, boundary=(string)frame"
                     : "image/jpeg");
    PartsResult r;
    std::thread t ([&] { r = read_parts (server.url (), 0); });
    server.wait_added (1);
    for (guint i = 0; i < n_frames; i++) {
      if (!multipartmux) {
        fail_unless_equals_int (gst_harness_push (server.h,
                                    frame_buffer_in_parts (i)),
            GST_FLOW_OK);
        continue;
      }
      std::string frame = make_frame (i);
      g_autofree gchar *header = g_strdup_printf (
          "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
          "%" G_GSIZE_FORMAT "\r\n\r\n",
          frame.size ());
      GstBuffer *footer = gst_buffer_new_memdup ("\r\n", 2);
      GST_BUFFER_FLAG_SET (footer, GST_BUFFER_FLAG_DELTA_UNIT);
      for (GstBuffer *b : {gst_buffer_new_memdup (header, strlen (header)),
               frame_buffer_in_parts (i, true), footer})
        fail_unless_equals_int (gst_harness_push (server.h, b), GST_FLOW_OK);
    }
    server.push_eos ();
    t.join ();
    fail_if (r.length_mismatch);
    assert_consecutive (r, 0, n_frames);
  }
}
GST_END_TEST;

static void
check_latest_frame_at_once (const char *caps)
{
  Server server ("wait-for-clients=false", caps);
  bool multipartmux = g_str_has_prefix (caps, "multipart/");
  auto push = [&] (guint i) {
    if (multipartmux)
      push_multipartmux_frame (server.h, i);
    else
      server.push (i);
  };

  /* Nobody watches: the stream flows and is dropped. */
  for (guint i = 0; i < 5; i++)
    push (i);

  PartsResult r;
  std::mutex lock;
  std::condition_variable cond;
  guint received = 0;
  std::thread t ([&] {
    r = read_parts (server.url (), 2, nullptr, [&] (guint n) {
      std::lock_guard<std::mutex> guard (lock);
      received = n;
      cond.notify_all ();
    });
  });

  /* The latest frame arrives, complete, without a new one being pushed. */
  {
    std::unique_lock<std::mutex> guard (lock);
    cond.wait (guard, [&] { return received >= 1; });
  }
  push (5);
  t.join ();
  assert_consecutive (r, 4, 2);
}

GST_START_TEST (test_new_client_gets_latest_frame_at_once)
{
  check_latest_frame_at_once ("image/jpeg");
  check_latest_frame_at_once (
      "multipart/x-mixed-replace, boundary=(string)frame");
}
GST_END_TEST;

GST_START_TEST (test_client_before_caps)
{
  Server server ("", nullptr);
  SimpleResponse head;

  /* Nothing to describe yet: HEAD says so, GET waits for the stream. */
  simple_request ("HEAD", server.url (), head);
  fail_unless_equals_int (head.status, 503);

  PartsResult r;
  std::thread t ([&] { r = read_parts (server.url (), 2); });
  server.wait_added (1);
  gst_harness_set_src_caps_str (server.h, "image/png");
  server.push (0);
  server.push (1);
  t.join ();
  assert_consecutive (r, 0, 2);
}
GST_END_TEST;

GST_START_TEST (test_wait_for_clients_holds_the_stream)
{
  Server server ("wait-for-clients=true max-client-frames=1000");
  std::atomic<bool> pushed{false};

  /* The first push blocks until a client connects; nothing is lost. */
  std::thread producer ([&] {
    for (guint i = 0; i < 3; i++)
      server.push (i);
    pushed = true;
  });
  PartsResult r = read_parts (server.url (), 3);
  producer.join ();
  fail_unless (pushed);
  assert_consecutive (r, 0, 3);
}
GST_END_TEST;

GST_START_TEST (test_slow_client_skips_frames_and_is_dropped)
{
  const guint n_fast = 2, n_frames = 150;
  const guint frame_size = 100000;
  Server server (
      "max-client-frames=4 timeout=1000000000 wait-for-clients=false");

  /* A client that asks for the stream and never reads. */
  GSocket *slow = raw_connect (server.port, 4096);
  server.wait_added (1);
  guint64 slow_id = 0;
  {
    GstStructure *stats = nullptr;
    g_object_get (server.sink, "stats", &stats, nullptr);
    const GValue *clients = gst_structure_get_value (stats, "clients");
    gst_structure_get_uint64 (gst_value_get_structure (
                                  gst_value_array_get_value (clients, 0)),
        "id", &slow_id);
    gst_structure_free (stats);
  }

  std::mutex lock;
  std::condition_variable cond;
  std::vector<guint> progress (n_fast, 0);
  std::vector<PartsResult> results (n_fast);
  std::vector<std::thread> threads;
  for (guint i = 0; i < n_fast; i++) {
    threads.emplace_back ([&, i] {
      results[i] = read_parts (server.url (), 0, nullptr, [&, i] (guint n) {
        std::lock_guard<std::mutex> guard (lock);
        progress[i] = n;
        cond.notify_all ();
      });
    });
  }
  server.wait_added (1 + n_fast);

  /* Each frame is pushed once the fast clients have the previous one: the
   * slow client must not hold them back. */
  for (guint i = 0; i < n_frames; i++) {
    {
      std::unique_lock<std::mutex> guard (lock);
      cond.wait (guard, [&] {
        for (guint p : progress)
          if (p < i)
            return false;
        return true;
      });
    }
    server.push (i, frame_size);
  }

  /* The slow client is disconnected once it accepts nothing for the
   * timeout; the fast ones stay. */
  {
    std::unique_lock<std::mutex> guard (server.lock);
    server.cond.wait (guard,
        [&] { return server.removed_stats.count (slow_id) > 0; });
  }
  fail_unless_equals_int (server.stats_uint ("clients-connected"), n_fast);

  server.push_eos ();
  for (std::thread &t : threads)
    t.join ();
  for (const PartsResult &r : results) {
    fail_unless_equals_int (r.status, 200);
    fail_unless_equals_int (r.frames.size (), n_frames);
    for (guint i = 0; i < n_frames; i++)
      fail_unless_equals_int (r.frames[i], i);
  }

  guint64 dropped = 0;
  gst_structure_get_uint64 (server.removed_stats[slow_id], "frames-dropped",
      &dropped);
  fail_unless (dropped > 0);

  /* What the slow client got is whole parts of intact frames in order,
   * with frames skipped, then the cut of the disconnection. */
  std::string data = raw_read_all (slow);
  std::vector<gint> frames;
  bool truncated = false;
  fail_unless (parse_raw_multipart (data, frames, truncated));
  fail_unless (frames.size () > 0);
  for (size_t i = 0; i < frames.size (); i++) {
    fail_unless (frames[i] >= 0);
    if (i > 0)
      fail_unless (frames[i] > frames[i - 1]);
  }
  fail_unless ((guint) frames.back () < n_frames - 1);
  g_object_unref (slow);
}
GST_END_TEST;

GST_START_TEST (test_slow_reader_skips_whole_frames)
{
  const guint n_frames = 200;
  const guint frame_size = 50000;
  Server server ("max-client-frames=2 timeout=0 wait-for-clients=false");
  std::string data;

  /* A client that reads, but much slower than the stream flows. */
  GSocket *slow = raw_connect (server.port, 4096);
  server.wait_added (1);
  std::thread reader ([&] {
    char chunk[16384];
    gssize n;
    while ((n = g_socket_receive (slow, chunk, sizeof (chunk), nullptr,
                nullptr)) > 0) {
      data.append (chunk, n);
      g_usleep (5000);
    }
  });

  for (guint i = 0; i < n_frames; i++)
    server.push (i, frame_size);
  /* The end of the stream waits for the client to get what is queued. */
  server.push_eos ();
  reader.join ();
  g_object_unref (slow);

  std::vector<gint> frames;
  bool truncated = true;
  fail_unless (parse_raw_multipart (data, frames, truncated));
  fail_if (truncated);
  guint gaps = 0;
  for (size_t i = 0; i < frames.size (); i++) {
    fail_unless (frames[i] >= 0, "part %u is not an intact frame", (guint) i);
    if (i > 0) {
      fail_unless (frames[i] > frames[i - 1]);
      gaps += frames[i] != frames[i - 1] + 1;
    }
  }
  /* It skipped frames, and still got the latest one. */
  fail_unless (gaps > 0);
  fail_unless_equals_int (frames.back (), n_frames - 1);
  server.wait_removed (1);
  guint64 dropped = 0;
  gst_structure_get_uint64 (server.removed_stats.begin ()->second,
      "frames-dropped", &dropped);
  fail_unless_equals_int (dropped, n_frames - frames.size ());
}
GST_END_TEST;

GST_START_TEST (test_abrupt_disconnects_under_load)
{
  const guint n_connections = 1000;
  Server server ("wait-for-clients=false");
  std::atomic<bool> done{false};

  auto connect_and_vanish = [&] (guint i) {
    GSocket *s = raw_connect (server.port);
    if (i % 3 == 0) {
      char buf[1024];
      g_socket_receive (s, buf, sizeof (buf), nullptr, nullptr);
    }
    if (i % 2 == 0) {
      struct linger l = {1, 0};
      setsockopt (g_socket_get_fd (s), SOL_SOCKET, SO_LINGER, &l, sizeof (l));
    }
    g_socket_close (s, nullptr);
    g_object_unref (s);
  };

  /* A few rounds first, so that what GLib creates once is not counted. */
  server.push (0);
  for (guint i = 0; i < 10; i++)
    connect_and_vanish (i);
  server.wait_removed (10);
  guint fds_before = count_fds ();

  /* Clients connect, read a little or nothing and vanish, some with a
   * reset, while the stream flows. */
  std::thread churn ([&] {
    for (guint i = 0; i < n_connections; i++)
      connect_and_vanish (i);
    done = true;
  });
  guint i = 1;
  while (!done)
    server.push (i++, 20000);
  churn.join ();

  /* Every one of them is noticed and cleaned up. */
  server.wait_added (n_connections + 10);
  server.wait_removed (n_connections + 10);
  fail_unless_equals_int (server.stats_uint ("clients-connected"), 0);
  fail_unless_equals_int (count_fds (), fds_before);

  /* And the stream still serves well. */
  PartsResult r;
  std::thread t ([&] { r = read_parts (server.url (), 3); });
  server.wait_added (n_connections + 11);
  for (guint k = 0; k < 3; k++)
    server.push (i + k);
  t.join ();
  fail_unless_equals_int (r.status, 200);
  fail_unless_equals_int (r.frames.size (), 3);
  for (gint f : r.frames)
    fail_unless (f >= 0);
}
GST_END_TEST;

GST_START_TEST (test_http_errors_and_head)
{
  Server server (
      "path=/video.mjpg max-clients=1 cors=* wait-for-clients=false");
  SimpleResponse not_found, post, head, busy;

  server.push (0);
  simple_request ("GET", server.url ("/other"), not_found);
  fail_unless_equals_int (not_found.status, 404);
  /* No idle keep-alive connections: libsoup 3.2 would not release them. */
  fail_unless (soup_message_headers_header_contains (not_found.headers,
      "Connection", "close"));

  simple_request ("POST", server.url ("/video.mjpg"), post);
  fail_unless_equals_int (post.status, 405);
  fail_unless_equals_string (soup_message_headers_get_one (post.headers,
                                 "Allow"),
      "GET, HEAD");

  simple_request ("HEAD", server.url ("/video.mjpg"), head);
  fail_unless_equals_int (head.status, 200);
  fail_unless (head.body.empty ());
  fail_unless (
      g_str_has_prefix (soup_message_headers_get_content_type (head.headers,
                            nullptr),
          "multipart/x-mixed-replace"));
  fail_unless (
      strstr (soup_message_headers_get_one (head.headers, "Cache-Control"),
          "no-cache"));
  fail_unless_equals_string (soup_message_headers_get_one (head.headers,
                                 "Access-Control-Allow-Origin"),
      "*");

  /* One client at most: the second gets 503. */
  PartsResult first;
  std::thread t ([&] { first = read_parts (server.url ("/video.mjpg"), 2); });
  server.wait_added (1);
  simple_request ("GET", server.url ("/video.mjpg"), busy);
  fail_unless_equals_int (busy.status, 503);
  server.push (1);
  t.join ();
  assert_consecutive (first, 0, 2);
  /* A query string does not change the path. */
  server.wait_removed (1);
  PartsResult again;
  std::thread t2 (
      [&] { again = read_parts (server.url ("/video.mjpg?t=1"), 1); });
  t2.join ();
  assert_consecutive (again, 1, 1);
}
GST_END_TEST;

GST_START_TEST (test_basic_auth)
{
  Server server ("user=viewer password=s3cret wait-for-clients=false");
  SimpleResponse none, wrong;
  g_autofree gchar
      *good_b64 = g_base64_encode ((const guchar *) "viewer:s3cret", 13);
  g_autofree gchar *bad_b64 = g_base64_encode ((const guchar *) "viewer:secret",
      13);
  std::string good = std::string ("Basic ") + good_b64;
  std::string bad = std::string ("Basic ") + bad_b64;

  server.push (0);
  simple_request ("GET", server.url (), none);
  fail_unless_equals_int (none.status, 401);
  fail_unless (soup_message_headers_get_one (none.headers,
                   "WWW-Authenticate") != nullptr);
  simple_request ("GET", server.url (), wrong, bad.c_str ());
  fail_unless_equals_int (wrong.status, 401);

  /* The password cannot be read back. */
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (
                                                        server.sink),
      "password");
  fail_if (pspec->flags & G_PARAM_READABLE);

  PartsResult r = read_parts (server.url (), 1, good.c_str ());
  assert_consecutive (r, 0, 1);
}
GST_END_TEST;

static bool
make_certificate (const std::string &dir)
{
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                    "-subj /CN=127.0.0.1 -keyout " +
                    dir + "/key.pem -out " + dir + "/cert.pem";
  gint status = -1;
  g_autofree gchar *out = nullptr, *err = nullptr;
  if (!g_spawn_command_line_sync (cmd.c_str (), &out, &err, &status, nullptr))
    return false;
  return g_spawn_check_wait_status (status, nullptr);
}

/* Starts a lone sink with these properties; returns the error it posts. */
static GError *
start_error (const gchar *properties)
{
  g_autofree gchar *launch = g_strdup_printf ("souphttpserversink %s",
      properties);
  GstElement *sink = gst_parse_launch (launch, nullptr);
  GstBus *bus = gst_bus_new ();
  GError *error = nullptr;

  gst_element_set_bus (sink, bus);
  fail_unless_equals_int (gst_element_set_state (sink, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != nullptr);
  gst_message_parse_error (msg, &error, nullptr);
  gst_message_unref (msg);
  gst_element_set_state (sink, GST_STATE_NULL);
  gst_element_set_bus (sink, nullptr);
  gst_object_unref (bus);
  gst_object_unref (sink);
  return error;
}

GST_START_TEST (test_start_errors)
{
  Server server ("");
  g_autofree gchar *busy = g_strdup_printf ("port=%d", server.port);
  GError *error = start_error (busy);

  /* Messages a user can act on. */
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_READ_WRITE));
  fail_unless (strstr (error->message, "Could not listen on 127.0.0.1 port"));
  g_error_free (error);

  error = start_error ("port=0 certificate-file=/nonexistent/cert.pem");
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_READ));
  fail_unless (strstr (error->message, "/nonexistent/cert.pem"));
  g_error_free (error);

  error = start_error ("port=0 private-key-file=/tmp/key.pem");
  fail_unless (
      g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS));
  g_error_free (error);

  /* A host name listens on each of its addresses. */
  {
    Server local ("address=localhost wait-for-clients=false");
    local.push (0);
    PartsResult r = read_parts (local.url (), 1);
    assert_consecutive (r, 0, 1);
  }
}
GST_END_TEST;

GST_START_TEST (test_tls)
{
  g_autofree gchar *dir = g_dir_make_tmp ("souphttpserversink-XXXXXX", nullptr);
  fail_unless (dir != nullptr);
  fail_unless (make_certificate (dir), "openssl could not make a certificate");
  g_autofree gchar *props = g_strdup_printf ("certificate-file=%s/cert.pem "
                                             "private-key-file=%s/key.pem "
                                             "max-client-frames=1000",
      dir, dir);
  {
    Server server (props);
    PartsResult r;
    std::thread t ([&] { r = read_parts (server.url ("/", "https"), 0); });
    server.wait_added (1);
    for (guint i = 0; i < 10; i++)
      server.push (i);
    server.push_eos ();
    t.join ();
    fail_unless (r.error.empty (), "%s", r.error.c_str ());
    assert_consecutive (r, 0, 10);

    /* Plain HTTP is not answered as a stream. */
    SimpleResponse plain;
    simple_request ("GET", server.url (), plain);
    fail_if (plain.status == 200);
  }
  for (const char *f : {"cert.pem", "key.pem"})
    g_unlink ((std::string (dir) + "/" + f).c_str ());
  g_rmdir (dir);
}
GST_END_TEST;

GST_START_TEST (test_stop_closes_connections)
{
  GSocket *sockets[3];

  /* Once, so that what GLib and libsoup open for good is counted. */
  {
    Server server ("wait-for-clients=false");
    server.push (0);
    GSocket *s = raw_connect (server.port);
    server.wait_added (1);
    g_object_unref (s);
  }
  guint fds_before = count_fds ();
  {
    Server server ("wait-for-clients=false");
    server.push (0);
    for (GSocket *&s : sockets)
      s = raw_connect (server.port);
    server.wait_added (3);
  }
  /* The sink is gone: every connection ends with the frame it had. */
  for (GSocket *s : sockets) {
    std::vector<gint> frames;
    bool truncated = true;
    std::string data = raw_read_all (s);
    fail_unless (parse_raw_multipart (data, frames, truncated));
    fail_if (truncated);
    fail_unless_equals_int (frames.size (), 1);
    g_object_unref (s);
  }
  fail_unless_equals_int (count_fds (), fds_before);
}
GST_END_TEST;

GST_START_TEST (test_pause_while_waiting_for_clients)
{
  GstElement *pipeline = gst_parse_launch (
      "videotestsrc num-buffers=20 ! video/x-raw,width=64,height=48 ! "
      "jpegenc ! souphttpserversink name=sink port=0 sync=false "
      "max-client-frames=100",
      nullptr);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gint port = 0;

  /* PLAYING with nobody connected: the sink holds the first frame. */
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
               GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (gst_element_get_state (pipeline, nullptr, nullptr,
                              GST_CLOCK_TIME_NONE),
      GST_STATE_CHANGE_SUCCESS);

  /* Pausing does not wait for a client, nor does it lose the frame. */
  gst_element_set_state (pipeline, GST_STATE_PAUSED);
  fail_unless_equals_int (gst_element_get_state (pipeline, nullptr, nullptr,
                              GST_CLOCK_TIME_NONE),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  g_object_get (sink, "current-port", &port, nullptr);

  std::vector<gint> frames;
  bool truncated = true;
  GSocket *s = raw_connect (port);
  std::string data = raw_read_all (s);
  g_object_unref (s);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);

  /* Every frame reached the client. */
  fail_unless (parse_raw_multipart (data, frames, truncated));
  fail_if (truncated);
  fail_unless_equals_int (frames.size (), 20);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}
GST_END_TEST;

/* ---- WebM served to two clients joining at different times ---- */

struct BodyReader
{
  std::string body;
  std::mutex lock;
  std::condition_variable cond;

  void run (const std::string &url)
  {
    g_autoptr (GMainContext) context = g_main_context_new ();
    g_main_context_push_thread_default (context);
    {
      g_autoptr (SoupSession) session = soup_session_new ();
      g_autoptr (SoupMessage) msg = soup_message_new ("GET", url.c_str ());
      g_autoptr (GInputStream)
          in = soup_session_send (session, msg, nullptr, nullptr);
      char chunk[16384];
      gssize n;
      while (in && (n = g_input_stream_read (in, chunk, sizeof (chunk), nullptr,
                        nullptr)) > 0) {
        std::lock_guard<std::mutex> guard (lock);
        body.append (chunk, n);
        cond.notify_all ();
      }
    }
    g_main_context_pop_thread_default (context);
  }

  void wait_bytes (gsize n)
  {
    std::unique_lock<std::mutex> guard (lock);
    cond.wait (guard, [&] { return body.size () >= n; });
  }
};

static guint
decode_webm (const std::string &body)
{
  g_autofree gchar *path = nullptr;
  gint fd = g_file_open_tmp ("souphttpserversink-XXXXXX.webm", &path, nullptr);
  fail_unless (fd >= 0);
  fail_unless (
      write (fd, body.data (), body.size ()) == (ssize_t) body.size ());
  close (fd);

  g_autofree gchar *launch =
      g_strdup_printf ("filesrc location=%s ! matroskademux ! vp8dec ! "
                       "fakesink name=out signal-handoffs=true sync=false",
          path);
  GstElement *pipeline = gst_parse_launch (launch, nullptr);
  GstElement *out = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  std::atomic<guint> frames{0};
  g_signal_connect (out, "handoff",
      G_CALLBACK (+[] (GstElement *, GstBuffer *, GstPad *,
                       std::atomic<guint> *n) { (*n)++; }),
      &frames);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (out);
  gst_object_unref (pipeline);
  g_unlink (path);
  return frames;
}

GST_START_TEST (test_webm_two_clients)
{
  GstElement *pipeline = gst_parse_launch (
      "videotestsrc num-buffers=120 ! "
      "video/x-raw,width=160,height=120,framerate=30/1 ! "
      "vp8enc deadline=1 keyframe-max-dist=10 ! webmmux streamable=true ! "
      "souphttpserversink name=sink port=0 sync=true",
      nullptr);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gint port = 0;

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PAUSED),
      GST_STATE_CHANGE_ASYNC);
  fail_unless_equals_int (gst_element_get_state (pipeline, nullptr, nullptr,
                              GST_CLOCK_TIME_NONE),
      GST_STATE_CHANGE_SUCCESS);
  g_object_get (sink, "current-port", &port, nullptr);
  std::string url = "http://127.0.0.1:" + std::to_string (port) + "/";
  gst_element_set_state (pipeline, GST_STATE_PLAYING);

  BodyReader first, second;
  std::thread a ([&] { first.run (url); });
  /* The second client joins once the first has had more than the first
   * cluster (about 22 kB): it starts at a later cluster. */
  first.wait_bytes (60000);
  std::thread b ([&] { second.run (url); });

  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);
  a.join ();
  b.join ();
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);

  /* Both bodies start with the EBML header and decode. */
  for (BodyReader *r : {&first, &second})
    fail_unless (r->body.compare (0, 4, "\x1a\x45\xdf\xa3") == 0);
  guint first_frames = decode_webm (first.body);
  guint second_frames = decode_webm (second.body);
  fail_unless_equals_int (first_frames, 120);
  fail_unless (second_frames > 0);
  fail_unless (second_frames < first_frames,
      "first %u frames (%u bytes), second %u (%u bytes)", first_frames,
      (guint) first.body.size (), second_frames, (guint) second.body.size ());
}
GST_END_TEST;

static Suite *
souphttpserversink_suite (void)
{
  Suite *s = suite_create ("souphttpserversink");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_clients_receive_identical_frames_in_order);
  tcase_add_test (tc, test_multipartmux_passthrough);
  tcase_add_test (tc, test_buffers_of_several_memories);
  tcase_add_test (tc, test_new_client_gets_latest_frame_at_once);
  tcase_add_test (tc, test_wait_for_clients_holds_the_stream);
  tcase_add_test (tc, test_client_before_caps);
  tcase_add_test (tc, test_slow_client_skips_frames_and_is_dropped);
  tcase_add_test (tc, test_slow_reader_skips_whole_frames);
  tcase_add_test (tc, test_abrupt_disconnects_under_load);
  tcase_add_test (tc, test_http_errors_and_head);
  tcase_add_test (tc, test_basic_auth);
  tcase_add_test (tc, test_tls);
  tcase_add_test (tc, test_start_errors);
  tcase_add_test (tc, test_stop_closes_connections);
  tcase_add_test (tc, test_pause_while_waiting_for_clients);
  tcase_add_test (tc, test_webm_two_clients);
  return s;
}

GST_CHECK_MAIN (souphttpserversink);
