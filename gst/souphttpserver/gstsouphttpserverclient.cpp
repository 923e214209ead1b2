/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsouphttpserverclient.h"

#include <algorithm>

/* Enough entries for a few frames of part header, data and trailer in one
 * writev() call. */
#define MAX_VECTORS 32

std::shared_ptr<const GstSoupHttpServerChunk>
GstSoupHttpServerChunk::from_buffer (GstBuffer *buffer, gsize offset)
{
  std::shared_ptr<GstSoupHttpServerChunk> chunk (new GstSoupHttpServerChunk);

  if (!gst_buffer_map (buffer, &chunk->map_, GST_MAP_READ))
    return nullptr;
  chunk->buffer_ = gst_buffer_ref (buffer);
  offset = MIN (offset, chunk->map_.size);
  chunk->data_ = chunk->map_.data + offset;
  chunk->size_ = chunk->map_.size - offset;
  return chunk;
}

std::shared_ptr<const GstSoupHttpServerChunk>
GstSoupHttpServerChunk::from_memory (GstBuffer *buffer, guint idx)
{
  std::shared_ptr<GstSoupHttpServerChunk> chunk (new GstSoupHttpServerChunk);
  GstMemory *memory = gst_buffer_peek_memory (buffer, idx);

  if (!memory || !gst_memory_map (memory, &chunk->map_, GST_MAP_READ))
    return nullptr;
  chunk->memory_ = gst_memory_ref (memory);
  chunk->data_ = chunk->map_.data;
  chunk->size_ = chunk->map_.size;
  return chunk;
}

std::shared_ptr<const GstSoupHttpServerChunk>
GstSoupHttpServerChunk::from_string (std::string text)
{
  std::shared_ptr<GstSoupHttpServerChunk> chunk (new GstSoupHttpServerChunk);

  chunk->text_ = std::move (text);
  chunk->data_ = reinterpret_cast<const guint8 *> (chunk->text_.data ());
  chunk->size_ = chunk->text_.size ();
  return chunk;
}

GstSoupHttpServerChunk::~GstSoupHttpServerChunk ()
{
  if (memory_) {
    gst_memory_unmap (memory_, &map_);
    gst_memory_unref (memory_);
  }
  if (buffer_) {
    gst_buffer_unmap (buffer_, &map_);
    gst_buffer_unref (buffer_);
  }
}

GstSoupHttpServerClient::GstSoupHttpServerClient (guint64 id,
    std::string address, GIOStream *stream)
    : id (id), address (std::move (address)),
      stream (G_IO_STREAM (g_object_ref (stream))),
      connect_time (g_get_monotonic_time ())
{
  GOutputStream *out = g_io_stream_get_output_stream (stream);
  GInputStream *in = g_io_stream_get_input_stream (stream);

  if (G_IS_POLLABLE_OUTPUT_STREAM (out) &&
      g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (out)))
    output = G_POLLABLE_OUTPUT_STREAM (out);
  if (G_IS_POLLABLE_INPUT_STREAM (in) &&
      g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (in)))
    input = G_POLLABLE_INPUT_STREAM (in);
  last_progress = connect_time;
}

GstSoupHttpServerClient::~GstSoupHttpServerClient ()
{
  if (write_source) {
    g_source_destroy (write_source);
    g_source_unref (write_source);
  }
  if (read_source) {
    g_source_destroy (read_source);
    g_source_unref (read_source);
  }
  g_object_unref (stream);
}

void
GstSoupHttpServerClient::push_always (const GstSoupHttpServerChunkPtr &chunk)
{
  if (queue_.empty ())
    last_progress = g_get_monotonic_time ();
  queue_.push_back ({chunk, false});
  queued_bytes_ += chunk->size ();
}

bool
GstSoupHttpServerClient::push (const GstSoupHttpServerItem &item,
    guint max_frames, guint64 max_bytes, gint64 now)
{
  bool was_empty = queue_.empty ();

  if (!item.frame_start && !have_frame_start_)
    return false;

  if (was_empty)
    last_progress = now;
  queue_.push_back (item);
  queued_bytes_ += item.chunk->size ();
  if (item.frame_start) {
    have_frame_start_ = true;
    queued_frames_++;
    if ((max_frames > 0 && queued_frames_ > max_frames) ||
        (max_bytes > 0 && queued_bytes_ > max_bytes))
      skip_frames ();
  }
  return was_empty;
}

/* Drops the whole frames between the frame being written (or the preamble)
 * and the frame that was just queued at the tail. */
void
GstSoupHttpServerClient::skip_frames ()
{
  size_t first = 0;

  /* Keep what is partly written: the head frame once a byte of it went out,
   * or the preamble. */
  if (head_offset_ > 0 || !queue_.front ().frame_start) {
    first = 1;
    while (first < queue_.size () && !queue_[first].frame_start)
      first++;
  }

  size_t last = queue_.size () - 1;
  if (first >= last)
    return;

  for (size_t i = first; i < last; i++) {
    queued_bytes_ -= queue_[i].chunk->size ();
    if (queue_[i].frame_start) {
      queued_frames_--;
      frames_dropped++;
    }
  }
  queue_.erase (queue_.begin () + first, queue_.begin () + last);
}

void
GstSoupHttpServerClient::consume (gsize written)
{
  bytes_sent += written;
  queued_bytes_ -= written;

  while (written > 0) {
    const GstSoupHttpServerItem &head = queue_.front ();
    gsize left = head.chunk->size () - head_offset_;

    if (written < left) {
      head_offset_ += written;
      return;
    }
    written -= left;
    if (head.frame_start) {
      queued_frames_--;
      frames_sent++;
    }
    head_offset_ = 0;
    queue_.pop_front ();
  }
}

GstSoupHttpServerWriteResult
GstSoupHttpServerClient::write (gint64 now, GError **error)
{
  while (!queue_.empty ()) {
    GOutputVector vectors[MAX_VECTORS];
    size_t n = std::min<size_t> (queue_.size (), MAX_VECTORS);
    gsize written = 0;

    for (size_t i = 0; i < n; i++) {
      gsize offset = i == 0 ? head_offset_ : 0;
      vectors[i].buffer = queue_[i].chunk->data () + offset;
      vectors[i].size = queue_[i].chunk->size () - offset;
    }

    GPollableReturn ret = g_pollable_output_stream_writev_nonblocking (output,
        vectors, n, &written, nullptr, error);
    if (ret == G_POLLABLE_RETURN_WOULD_BLOCK)
      return GstSoupHttpServerWriteResult::BLOCKED;
    if (ret != G_POLLABLE_RETURN_OK)
      return GstSoupHttpServerWriteResult::FAILED;

    if (written == 0)
      return GstSoupHttpServerWriteResult::BLOCKED;
    last_progress = now;
    consume (written);
  }
  return GstSoupHttpServerWriteResult::DRAINED;
}

GstStructure *
GstSoupHttpServerClient::make_stats (gint64 now) const
{
  return gst_structure_new ("client", "id", G_TYPE_UINT64, id, "address",
      G_TYPE_STRING, address.c_str (), "bytes-served", G_TYPE_UINT64,
      bytes_sent, "frames-served", G_TYPE_UINT64, frames_sent, "frames-dropped",
      G_TYPE_UINT64, frames_dropped, "queued-bytes", G_TYPE_UINT64,
      queued_bytes_, "queued-frames", G_TYPE_UINT, queued_frames_,
      "connected-time", G_TYPE_UINT64, (guint64) (now - connect_time) * 1000,
      nullptr);
}
