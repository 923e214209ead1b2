/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The header codec shared by kafkasink and kafkasrc: what one writes the
 * other must read back, and malformed headers from other clients must be
 * reported, never trusted. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/check/gstcheck.h>

#include "gstkafkacommon.h"

#include <cstring>
#include <glib/gstdio.h>

using gstkafka::FrameInfo;

static FrameInfo
round_trip (const FrameInfo &in, bool *ok, std::string *problems)
{
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (8);
  gstkafka::headers_write (hdrs, in);

  /* Decode from a copy, as a consumer would see the message. */
  static rd_kafka_headers_t *keep = nullptr;
  if (keep)
    rd_kafka_headers_destroy (keep);
  keep = rd_kafka_headers_copy (hdrs);
  rd_kafka_headers_destroy (hdrs);

  FrameInfo out;
  *ok = gstkafka::headers_parse (keep, out, *problems);
  return out;
}

/* The value headers_write() gives header @name for @in; @present tells
 * whether it wrote the header at all. */
static std::string
written_value (const FrameInfo &in, const char *name, bool *present = nullptr)
{
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (2);
  gstkafka::headers_write (hdrs, in);
  const void *value = nullptr;
  size_t size = 0;
  rd_kafka_resp_err_t err = rd_kafka_header_get_last (hdrs, name, &value,
      &size);
  std::string out (static_cast<const char *> (value), value ? size : 0);
  rd_kafka_headers_destroy (hdrs);
  if (present)
    *present = err == RD_KAFKA_RESP_ERR_NO_ERROR;
  else
    fail_unless_equals_int (err, RD_KAFKA_RESP_ERR_NO_ERROR);
  return out;
}

GST_START_TEST (test_round_trip)
{
  FrameInfo in;
  const char *caps = "video/x-raw, format=(string)I420, width=(int)640, "
                     "height=(int)360, framerate=(fraction)30/1";
  in.caps = caps;
  in.pts = 3 * GST_SECOND + 1;
  in.dts = 2 * GST_SECOND;
  in.duration = GST_SECOND / 30;
  in.flags = GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_DISCONT;
  in.session = G_GUINT64_CONSTANT (0x0123456789abcdef);
  in.seq = G_MAXUINT64 - 1;

  bool ok;
  std::string problems;
  FrameInfo out = round_trip (in, &ok, &problems);
  fail_unless (ok, "%s", problems.c_str ());
  fail_unless (out.has_gst_headers);
  fail_unless_equals_int (out.caps_len, strlen (caps));
  fail_unless (strncmp (out.caps, caps, out.caps_len) == 0);
  fail_unless_equals_uint64 (out.pts, in.pts);
  fail_unless_equals_uint64 (out.dts, in.dts);
  fail_unless_equals_uint64 (out.duration, in.duration);
  fail_unless_equals_int (out.flags, in.flags);
  fail_unless_equals_uint64 (out.session, in.session);
  fail_unless_equals_uint64 (out.seq, in.seq);
  fail_if (out.eos);

  std::string p;
  GstCaps *c = gstkafka::frame_info_parse_caps (out, p);
  fail_unless (c != nullptr, "%s", p.c_str ());
  GstCaps *expected = gst_caps_from_string (caps);
  fail_unless (gst_caps_is_equal (c, expected));
  gst_caps_unref (c);
  gst_caps_unref (expected);
}
GST_END_TEST;

GST_START_TEST (test_caps_elsewhere)
{
  FrameInfo in;
  in.flags = GST_BUFFER_FLAG_MARKER;
  in.caps_elsewhere = true;
  bool ok;
  std::string problems;
  FrameInfo out = round_trip (in, &ok, &problems);
  fail_unless (ok, "%s", problems.c_str ());
  fail_unless (out.caps_elsewhere);
  fail_unless (out.caps == nullptr);
  /* Not a buffer flag: it never reaches a buffer. */
  fail_unless_equals_int (out.flags, GST_BUFFER_FLAG_MARKER);

  /* Bit 31 of the flags word, as other clients read it. */
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (2);
  gstkafka::headers_write (hdrs, in);
  const void *value;
  size_t size;
  fail_unless (rd_kafka_header_get_last (hdrs, "gst.buf", &value, &size) ==
               RD_KAFKA_RESP_ERR_NO_ERROR);
  const guint8 *b = static_cast<const guint8 *> (value) + 2;
  guint32 flags = (guint32 (b[0]) << 24) | (guint32 (b[1]) << 16) |
                  (guint32 (b[2]) << 8) | b[3];
  fail_unless_equals_int (flags, GST_BUFFER_FLAG_MARKER | 0x80000000u);
  rd_kafka_headers_destroy (hdrs);

  /* A message that carries the caps does not say they are elsewhere. */
  in.caps = "audio/x-opus";
  out = round_trip (in, &ok, &problems);
  fail_unless (ok, "%s", problems.c_str ());
  fail_if (out.caps_elsewhere);
}
GST_END_TEST;

GST_START_TEST (test_absent_fields)
{
  FrameInfo in;
  in.eos = true;
  bool ok;
  std::string problems;
  FrameInfo out = round_trip (in, &ok, &problems);
  fail_unless (ok);
  fail_unless (out.eos);
  fail_unless (out.caps == nullptr);
  fail_if (GST_CLOCK_TIME_IS_VALID (out.pts));
  fail_if (GST_CLOCK_TIME_IS_VALID (out.dts));
  fail_if (GST_CLOCK_TIME_IS_VALID (out.duration));
  /* gst.buf always carries flags, session and seq; unset means zero. */
  fail_unless (out.has_flags && out.has_session && out.has_seq);
  fail_unless_equals_int (out.flags, 0);
  fail_unless_equals_uint64 (out.seq, 0);
}
GST_END_TEST;

/* Adds a header per field, as a producer written in another language may. */
static void
add_be (rd_kafka_headers_t *hdrs, const char *name, guint64 v, int bytes)
{
  guint8 buf[8];
  for (int i = 0; i < bytes; i++)
    buf[i] = guint8 (v >> (8 * (bytes - 1 - i)));
  rd_kafka_header_add (hdrs, name, -1, buf, bytes);
}

GST_START_TEST (test_one_header_per_field)
{
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (8);
  rd_kafka_header_add (hdrs, GST_KAFKA_HEADER_CAPS, -1, "image/png", -1);
  add_be (hdrs, GST_KAFKA_HEADER_PTS, 5 * GST_SECOND, 8);
  add_be (hdrs, GST_KAFKA_HEADER_DURATION, GST_SECOND / 30, 8);
  add_be (hdrs, GST_KAFKA_HEADER_FLAGS, GST_BUFFER_FLAG_DELTA_UNIT, 4);
  add_be (hdrs, GST_KAFKA_HEADER_SESSION, 77, 8);
  add_be (hdrs, GST_KAFKA_HEADER_SEQ, 9, 8);
  std::string problems;
  FrameInfo out;
  bool ok = gstkafka::headers_parse (hdrs, out, problems);
  fail_unless (ok, "%s", problems.c_str ());
  fail_unless_equals_uint64 (out.pts, 5 * GST_SECOND);
  fail_if (GST_CLOCK_TIME_IS_VALID (out.dts));
  fail_unless_equals_uint64 (out.duration, GST_SECOND / 30);
  fail_unless_equals_int (out.flags, GST_BUFFER_FLAG_DELTA_UNIT);
  fail_unless_equals_uint64 (out.session, 77);
  fail_unless_equals_uint64 (out.seq, 9);

  /* The same field twice, once in each form, is malformed. */
  guint8 buf[GST_KAFKA_BUF_MAX_SIZE];
  memset (buf, 0, sizeof (buf));
  buf[0] = GST_KAFKA_BUF_VERSION;
  buf[1] = 0x01;
  rd_kafka_header_add (hdrs, GST_KAFKA_HEADER_BUF, -1, buf,
      GST_KAFKA_BUF_FIXED_SIZE + 8);
  problems.clear ();
  FrameInfo again;
  fail_if (gstkafka::headers_parse (hdrs, again, problems));
  fail_unless (problems.find ("repeats") != std::string::npos, "%s",
      problems.c_str ());
  rd_kafka_headers_destroy (hdrs);
}
GST_END_TEST;

GST_START_TEST (test_wire_format)
{
  /* Other clients (kcat, Python) read these bytes: keep them stable.
   * gst.buf of a buffer with a pts and a duration but no dts. */
  FrameInfo in;
  in.pts = G_GUINT64_CONSTANT (0x1112131415161718);
  in.duration = G_GUINT64_CONSTANT (0x2122232425262728);
  in.flags = GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_DISCONT;
  in.session = G_GUINT64_CONSTANT (0x3132333435363738);
  in.seq = G_GUINT64_CONSTANT (0x4142434445464748);
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new (2);
  gstkafka::headers_write (hdrs, in);
  const void *value;
  size_t size;
  fail_unless_equals_int (rd_kafka_header_get_last (hdrs, GST_KAFKA_HEADER_BUF,
                              &value, &size),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  const guint8 expected_buf[] = {1, 0x05, 0, 0, 0x20, 0x40, 0x31, 0x32, 0x33,
      0x34, 0x35, 0x36, 0x37, 0x38, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
      0x48, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x21, 0x22, 0x23,
      0x24, 0x25, 0x26, 0x27, 0x28};
  fail_unless_equals_int (size, sizeof (expected_buf));
  fail_unless (memcmp (value, expected_buf, size) == 0);
  fail_unless_equals_int (rd_kafka_header_cnt (hdrs), 1);
  rd_kafka_headers_destroy (hdrs);

  FrameInfo info;
  std::string p;
  const guint8 flags[4] = {0, 0, 0x20, 0x40};
  fail_unless (
      gstkafka::header_parse (info, GST_KAFKA_HEADER_FLAGS, flags, 4, p));
  fail_unless_equals_int (info.flags,
      GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_DISCONT);
}
GST_END_TEST;

/* gst.frag, on each part of a buffer split into several messages: what one
 * writes the other reads, in the documented bytes, and nonsense is
 * refused. */
GST_START_TEST (test_parts)
{
  FrameInfo in;
  in.session = 5;
  in.seq = 6;
  in.frag_index = 2;
  in.frag_count = 3;
  in.frag_size = G_GUINT64_CONSTANT (0x0102030405);
  const guint8 expected[GST_KAFKA_FRAG_SIZE] = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0,
      0, 0x01, 0x02, 0x03, 0x04, 0x05};
  fail_unless (written_value (in, GST_KAFKA_HEADER_FRAG) ==
               std::string (reinterpret_cast<const char *> (expected),
                   sizeof (expected)));

  bool ok;
  std::string problems;
  FrameInfo out = round_trip (in, &ok, &problems);
  fail_unless (ok, "%s", problems.c_str ());
  fail_unless_equals_int (out.frag_index, 2);
  fail_unless_equals_int (out.frag_count, 3);
  fail_unless_equals_uint64 (out.frag_size, in.frag_size);
  fail_unless_equals_uint64 (out.seq, 6);

  /* A whole buffer has none. */
  in.frag_count = 0;
  bool present = true;
  written_value (in, GST_KAFKA_HEADER_FRAG, &present);
  fail_if (present);

  const struct
  {
    guint8 version;
    guint32 index, count;
    guint64 total;
    size_t size;
    const char *problem;
  } bad[] = {{1, 0, 2, 10, 16, "expected 17"}, {2, 0, 2, 10, 17, "version 2"},
      {1, 2, 2, 10, 17, "part 2 of 2"}, {1, 0, 1, 10, 17, "part 0 of 1"},
      {1, 0, 3, 2, 17, "of 2 bytes"}};
  for (auto &b : bad) {
    guint8 v[GST_KAFKA_FRAG_SIZE] = {b.version};
    /* Byte by byte: GStreamer's GST_WRITE_* would store misaligned. */
    for (int i = 0; i < 4; i++) {
      v[1 + i] = guint8 (b.index >> (24 - 8 * i));
      v[5 + i] = guint8 (b.count >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++)
      v[9 + i] = guint8 (b.total >> (56 - 8 * i));
    FrameInfo info;
    std::string p;
    fail_if (
        gstkafka::header_parse (info, GST_KAFKA_HEADER_FRAG, v, b.size, p));
    fail_unless (p.find (b.problem) != std::string::npos, "%s", p.c_str ());
    fail_unless_equals_int (info.frag_count, 0);
  }
  guint8 v[GST_KAFKA_FRAG_SIZE] = {1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
      0, 9};
  FrameInfo info;
  std::string p;
  fail_unless (
      gstkafka::header_parse (info, GST_KAFKA_HEADER_FRAG, v, sizeof (v), p));
  fail_if (
      gstkafka::header_parse (info, GST_KAFKA_HEADER_FRAG, v, sizeof (v), p));
  fail_unless (p.find ("more than once") != std::string::npos, "%s",
      p.c_str ());
}
GST_END_TEST;

GST_START_TEST (test_malformed)
{
  const guint8 seven[7] = {0};
  const guint8 eight[8] = {0, 0, 0, 0, 0, 0, 0, 42};
  std::string p;

  {
    FrameInfo info;
    fail_if (gstkafka::header_parse (info, GST_KAFKA_HEADER_PTS, seven, 7, p));
    fail_unless (p.find ("gst.pts") != std::string::npos, "%s", p.c_str ());
    fail_unless (p.find ("expected 8") != std::string::npos, "%s", p.c_str ());
    fail_if (GST_CLOCK_TIME_IS_VALID (info.pts));
  }
  {
    FrameInfo info;
    p.clear ();
    fail_unless (
        gstkafka::header_parse (info, GST_KAFKA_HEADER_SEQ, eight, 8, p));
    fail_if (gstkafka::header_parse (info, GST_KAFKA_HEADER_SEQ, eight, 8, p));
    fail_unless (p.find ("more than once") != std::string::npos);
    fail_unless_equals_uint64 (info.seq, 42);
  }
  {
    FrameInfo info;
    p.clear ();
    fail_if (
        gstkafka::header_parse (info, GST_KAFKA_HEADER_CAPS, nullptr, 0, p));
    const char bad_utf8[] = "video/x-raw\xff\xfe";
    fail_if (gstkafka::header_parse (info, GST_KAFKA_HEADER_CAPS, bad_utf8,
        sizeof (bad_utf8) - 1, p));
  }
  {
    FrameInfo info;
    p.clear ();
    const char garbage[] = "this is not caps {{{";
    fail_unless (gstkafka::header_parse (info, GST_KAFKA_HEADER_CAPS, garbage,
        strlen (garbage), p));
    fail_unless (gstkafka::frame_info_parse_caps (info, p) == nullptr);
    fail_unless (p.find ("do not parse") != std::string::npos, "%s",
        p.c_str ());
  }
  {
    FrameInfo info;
    p.clear ();
    const char unfixed[] = "video/x-raw, width=(int)[ 1, 100 ]";
    fail_unless (gstkafka::header_parse (info, GST_KAFKA_HEADER_CAPS, unfixed,
        strlen (unfixed), p));
    fail_unless (gstkafka::frame_info_parse_caps (info, p) == nullptr);
    fail_unless (p.find ("not fixed") != std::string::npos);
  }
  {
    /* gst.buf: short, another version, unknown fields, wrong length. */
    guint8 buf[GST_KAFKA_BUF_MAX_SIZE + 1];
    memset (buf, 0, sizeof (buf));
    buf[0] = GST_KAFKA_BUF_VERSION;
    const struct
    {
      guint8 version, present;
      size_t size;
      const char *problem;
    } bad[] = {{1, 0, 21, "expected at least 22"}, {2, 0, 22, "version 2"},
        {1, 0x08, 22, "unknown fields (0x08)"}, {1, 0x01, 22, "expected 30"},
        {1, 0x07, 47, "expected 46"}, {1, 0, 30, "expected 22"}};
    for (auto &b : bad) {
      FrameInfo info;
      p.clear ();
      buf[0] = b.version;
      buf[1] = b.present;
      fail_if (
          gstkafka::header_parse (info, GST_KAFKA_HEADER_BUF, buf, b.size, p));
      fail_unless (p.find (b.problem) != std::string::npos, "%s", p.c_str ());
      fail_unless (p.find ("gst.buf") != std::string::npos, "%s", p.c_str ());
      fail_if (info.has_seq);
    }
    FrameInfo info;
    p.clear ();
    fail_if (
        gstkafka::header_parse (info, GST_KAFKA_HEADER_BUF, nullptr, 0, p));
    buf[0] = GST_KAFKA_BUF_VERSION;
    buf[1] = 0;
    fail_unless (gstkafka::header_parse (info, GST_KAFKA_HEADER_BUF, buf,
        GST_KAFKA_BUF_FIXED_SIZE, p));
    fail_if (gstkafka::header_parse (info, GST_KAFKA_HEADER_BUF, buf,
        GST_KAFKA_BUF_FIXED_SIZE, p));
  }
  {
    /* Headers of other applications are none of our business. */
    FrameInfo info;
    p.clear ();
    fail_unless (gstkafka::header_parse (info, "traceparent", "00-abc", 6, p));
    fail_unless (gstkafka::header_parse (info, "gst", seven, 7, p));
    fail_if (info.has_gst_headers);
    /* A gst.* header from a newer version is ignored, not an error. */
    fail_unless (gstkafka::header_parse (info, "gst.future", seven, 7, p));
  }
}
GST_END_TEST;

GST_START_TEST (test_config)
{
  GstElement *e = gst_element_factory_make ("fakesink", "my-sink");
  GError *error = nullptr;
  GstDebugCategory *cat = _gst_debug_category_new ("kafkatest", 0, "test");

  GstStructure *s =
      gst_structure_from_string ("kafka, linger.ms=5, enable.idempotence=true, "
                                 "sasl.password=hunter2",
          nullptr);
  gstkafka::Conf conf = gstkafka::conf_new (e, cat, nullptr, 0, "127.0.0.1:1",
      nullptr, s, &error);
  fail_unless (conf != nullptr, "%s", error ? error->message : "");
  char value[256];
  size_t len = sizeof (value);
  rd_kafka_conf_get (conf.get (), "linger.ms", value, &len);
  fail_unless_equals_string (value, "5");
  len = sizeof (value);
  rd_kafka_conf_get (conf.get (), "client.id", value, &len);
  fail_unless_equals_string (value, "my-sink");
  len = sizeof (value);
  rd_kafka_conf_get (conf.get (), "bootstrap.servers", value, &len);
  fail_unless_equals_string (value, "127.0.0.1:1");

  GstStructure *redacted = gstkafka::conf_redact (s);
  gchar *str = gst_structure_to_string (redacted);
  fail_if (strstr (str, "hunter2") != nullptr, "%s", str);
  fail_unless (strstr (str, "linger.ms") != nullptr);
  g_free (str);
  gst_structure_free (redacted);
  gst_structure_free (s);

  /* An unknown key fails, naming it. */
  s = gst_structure_from_string ("kafka, linger.mss=5", nullptr);
  conf = gstkafka::conf_new (e, cat, nullptr, 0, nullptr, nullptr, s, &error);
  fail_unless (conf == nullptr);
  fail_unless (
      g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS));
  fail_unless (strstr (error->message, "linger.mss") != nullptr, "%s",
      error->message);
  g_clear_error (&error);
  gst_structure_free (s);

  /* A bad value fails, naming the key. */
  s = gst_structure_from_string ("kafka, acks=sometimes", nullptr);
  conf = gstkafka::conf_new (e, cat, nullptr, 0, nullptr, nullptr, s, &error);
  fail_unless (conf == nullptr);
  fail_unless (strstr (error->message, "acks") != nullptr, "%s",
      error->message);
  g_clear_error (&error);
  gst_structure_free (s);

  /* A properties file, like kcat -F; the structure wins over the file. */
  gchar *path = nullptr;
  gint fd = g_file_open_tmp ("kafkaconf-XXXXXX", &path, nullptr);
  const char *file = "# comment\n\nlinger.ms = 7\nbatch.num.messages=100\n";
  fail_unless (write (fd, file, strlen (file)) == (ssize_t) strlen (file));
  close (fd);
  s = gst_structure_from_string ("kafka, batch.num.messages=200", nullptr);
  conf = gstkafka::conf_new (e, cat, nullptr, 0, nullptr, path, s, &error);
  fail_unless (conf != nullptr, "%s", error ? error->message : "");
  len = sizeof (value);
  rd_kafka_conf_get (conf.get (), "linger.ms", value, &len);
  fail_unless_equals_string (value, "7");
  len = sizeof (value);
  rd_kafka_conf_get (conf.get (), "batch.num.messages", value, &len);
  fail_unless_equals_string (value, "200");
  gst_structure_free (s);

  /* A bad line names the file and the line. */
  fail_unless (
      g_file_set_contents (path, "linger.ms=1\nnonsense\n", -1, nullptr));
  conf = gstkafka::conf_new (e, cat, nullptr, 0, nullptr, path, nullptr,
      &error);
  fail_unless (conf == nullptr);
  fail_unless (strstr (error->message, "line 2") != nullptr, "%s",
      error->message);
  g_clear_error (&error);

  /* A missing file is a read error naming the path. */
  conf = gstkafka::conf_new (e, cat, nullptr, 0, nullptr,
      "/nonexistent/kafka.properties", nullptr, &error);
  fail_unless (conf == nullptr);
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_READ));
  g_clear_error (&error);

  g_unlink (path);
  g_free (path);
  gst_object_unref (e);
}
GST_END_TEST;

static Suite *
kafkaheaders_suite (void)
{
  Suite *s = suite_create ("kafkaheaders");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_round_trip);
  tcase_add_test (tc, test_caps_elsewhere);
  tcase_add_test (tc, test_absent_fields);
  tcase_add_test (tc, test_one_header_per_field);
  tcase_add_test (tc, test_wire_format);
  tcase_add_test (tc, test_parts);
  tcase_add_test (tc, test_malformed);
  tcase_add_test (tc, test_config);
  return s;
}

GST_CHECK_MAIN (kafkaheaders);
