/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-client output queue of souphttpserversink (internal C++ header). */
#pragma once

#include <gst/gst.h>
#include <gio/gio.h>

#include <deque>
#include <memory>
#include <string>

/* Immutable bytes shared by every client queue that holds them: a mapped
 * GstBuffer or GstMemory, or a string the sink generated (HTTP header, part
 * header). */
class GstSoupHttpServerChunk
{
public:
  /* The bytes of buffer from offset on, or nullptr if it cannot be read. */
  static std::shared_ptr<const GstSoupHttpServerChunk>
  from_buffer (GstBuffer *buffer, gsize offset = 0);
  /* The bytes of memory @idx of @buffer, or nullptr if they cannot be
   * read: a buffer of several memories is queued memory by memory, where a
   * map of the whole would copy them into one. */
  static std::shared_ptr<const GstSoupHttpServerChunk>
  from_memory (GstBuffer *buffer, guint idx);
  static std::shared_ptr<const GstSoupHttpServerChunk> from_string (
      std::string text);

  GstSoupHttpServerChunk (const GstSoupHttpServerChunk &) = delete;
  GstSoupHttpServerChunk &operator= (const GstSoupHttpServerChunk &) = delete;
  ~GstSoupHttpServerChunk ();

  const guint8 *data () const
  {
    return data_;
  }
  gsize size () const
  {
    return size_;
  }

private:
  GstSoupHttpServerChunk () = default;

  GstBuffer *buffer_ = nullptr;
  GstMemory *memory_ = nullptr;
  GstMapInfo map_ = GST_MAP_INFO_INIT;
  std::string text_;
  const guint8 *data_ = nullptr;
  gsize size_ = 0;
};

using GstSoupHttpServerChunkPtr = std::shared_ptr<const GstSoupHttpServerChunk>;

/* One entry of a client queue. A frame is the run of entries from one
 * frame_start entry to the next; the entries before the first frame start
 * (the HTTP response header, stream headers) are the preamble. */
struct GstSoupHttpServerItem
{
  GstSoupHttpServerChunkPtr chunk;
  bool frame_start;
};

enum class GstSoupHttpServerWriteResult
{
  DRAINED, /* everything queued was handed to the socket */
  BLOCKED, /* the socket is full; wait until it is writable */
  FAILED,  /* the connection is broken */
};

/* A connected HTTP client. Every method expects the sink's client lock held;
 * the I/O methods run on the server thread only. */
class GstSoupHttpServerClient
{
public:
  GstSoupHttpServerClient (guint64 id, std::string address, GIOStream *stream);
  GstSoupHttpServerClient (const GstSoupHttpServerClient &) = delete;
  GstSoupHttpServerClient &operator= (const GstSoupHttpServerClient &) = delete;
  ~GstSoupHttpServerClient ();

  /* Queues an entry that is never skipped: the preamble, the final
   * boundary. */
  void push_always (const GstSoupHttpServerChunkPtr &chunk);

  /* Appends one entry. Until the client has a frame start queued it ignores
   * entries that continue a frame. When a new frame starts while the queue
   * holds more than max_frames frames or max_bytes bytes (0: no byte
   * bound), the client skips every whole frame between the one it is
   * writing and the new one. Returns TRUE if the queue was empty before. */
  bool push (const GstSoupHttpServerItem &item, guint max_frames,
      guint64 max_bytes, gint64 now);

  /* Writes as much as the socket takes without blocking. */
  GstSoupHttpServerWriteResult write (gint64 now, GError **error);

  bool empty () const
  {
    return queue_.empty ();
  }

  /* Whether another frame fits without skipping one. */
  bool has_room (guint max_frames, guint64 max_bytes) const
  {
    return (max_frames == 0 || queued_frames_ < max_frames) &&
           (max_bytes == 0 || queued_bytes_ < max_bytes);
  }

  GstStructure *make_stats (gint64 now) const;

  const guint64 id;
  const std::string address;
  GIOStream *const stream;
  GPollableOutputStream *output = nullptr;
  GPollableInputStream *input = nullptr;

  /* Server-thread sources; destroyed when the client is removed. */
  GSource *write_source = nullptr;
  GSource *read_source = nullptr;

  /* The request was HTTP/1.0. */
  bool http_1_0 = false;
  /* The response header was queued (the caps were known). */
  bool started = false;
  /* Close once the queue is drained (end of stream). */
  bool close_when_drained = false;
  /* Remove at the next server-thread pass, with this reason. */
  const char *close_reason = nullptr;

  /* Monotonic time of the last write progress while data was queued. */
  gint64 last_progress = 0;
  const gint64 connect_time;

  guint64 bytes_sent = 0;
  guint64 frames_sent = 0;
  guint64 frames_dropped = 0;

private:
  void skip_frames ();
  void consume (gsize written);

  std::deque<GstSoupHttpServerItem> queue_;
  gsize head_offset_ = 0;
  guint64 queued_bytes_ = 0;
  guint queued_frames_ = 0;
  bool have_frame_start_ = false;
};
