/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for what kafkasrc reads from any Kafka client: the gst.*
 * headers and the caps string they carry. The input is a list of headers,
 * each encoded as [name length:1][name][value length:2 BE][value]. */

#include "gstkafkacommon.h"

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>

static const char *const names[] = {GST_KAFKA_HEADER_CAPS, GST_KAFKA_HEADER_PTS,
    GST_KAFKA_HEADER_DTS, GST_KAFKA_HEADER_DURATION, GST_KAFKA_HEADER_FLAGS,
    GST_KAFKA_HEADER_SESSION, GST_KAFKA_HEADER_SEQ, GST_KAFKA_HEADER_EOS,
    GST_KAFKA_HEADER_BUF};

extern "C" int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  gst_init (argc, argv);
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  gstkafka::FrameInfo info;
  /* FrameInfo points into the header values, as into a message. */
  std::deque<std::string> values;
  size_t pos = 0;

  while (pos + 3 <= size) {
    std::string name;
    size_t name_len = data[pos++];
    /* A length byte of 0xf0+ picks one of the real names, so the fuzzer
     * reaches every field without having to guess them. */
    if (name_len >= 0xf0) {
      name = names[(name_len - 0xf0) % G_N_ELEMENTS (names)];
    } else {
      if (pos + name_len > size)
        break;
      name.assign (reinterpret_cast<const char *> (data + pos), name_len);
      pos += name_len;
    }
    if (pos + 2 > size)
      break;
    size_t value_len = (size_t (data[pos]) << 8) | data[pos + 1];
    pos += 2;
    if (pos + value_len > size)
      value_len = size - pos;
    /* Copy the value so ASan sees reads past its end. */
    const std::string &value =
        values.emplace_back (reinterpret_cast<const char *> (data + pos),
            value_len);
    pos += value_len;
    std::string problem;
    gstkafka::header_parse (info, name.c_str (),
        value_len ? value.data () : nullptr, value_len, problem);
  }

  std::string problem;
  GstCaps *caps = gstkafka::frame_info_parse_caps (info, problem);
  if (caps) {
    /* What kafkasrc does next with caps from the wire. */
    gchar *str = gst_caps_to_string (caps);
    g_free (str);
    gst_caps_unref (caps);
  }
  return 0;
}
