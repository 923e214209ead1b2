/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kafka:// URIs: kafkasrc and kafkasink as GstURIHandlers. A URI sets the
 * brokers, the topic and the properties named in its query; GStreamer's own
 * URI users (gst_element_make_from_uri(), gst-launch-1.0 lines, playbin)
 * then reach a topic of the real broker of $KAFKA_BROKERS. */

#include <gst/check/gstcheck.h>

#include "gstkafkatest.h"

#include <cstring>
#include <string>
#include <vector>

static std::string
uri_for (const std::string &topic, const char *query = nullptr)
{
  std::string uri = std::string ("kafka://") + kafkatest::brokers () + "/" +
                    topic;
  if (query)
    uri += std::string ("?") + query;
  return uri;
}

static std::string
string_property (GstElement *element, const char *name)
{
  g_autofree gchar *value = nullptr;
  g_object_get (element, name, &value, nullptr);
  return value ? value : "(null)";
}

#define assert_property(element, name, expected)                               \
  G_STMT_START                                                                 \
  {                                                                            \
    std::string got_ = string_property (element, name);                        \
    fail_unless_equals_string (got_.c_str (), expected);                       \
  }                                                                            \
  G_STMT_END

static void
assert_contains (const char *text, std::initializer_list<const char *> words)
{
  for (const char *w : words)
    fail_unless (strstr (text, w) != nullptr, "'%s' not in: %s", w, text);
}

/* The error a pipeline posts on its way to PAUSED, which must fail. */
static std::string
start_error (GstElement *element)
{
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != nullptr);
  g_autoptr (GError) err = nullptr;
  gst_message_parse_error (msg, &err, nullptr);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR,
                   GST_RESOURCE_ERROR_SETTINGS),
      "%s", err->message);
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, nullptr);
  gst_object_unref (bus);
  return err->message;
}

GST_START_TEST (test_uri_sets_properties)
{
  g_autoptr (GError) err = nullptr;

  /* kafkasrc: brokers, topic, properties of every type, and librdkafka
   * settings (a '.' in the name) which do not touch config. */
  std::string uri = "kafka://b1:9092,b2:9093/frames.v1?group-id=view&"
                    "start-from=latest&partition=2&is-live=false&"
                    "caps=image/png&fetch.wait.max.ms=5&stats-interval=%31000";
  GstElement *src = gst_element_make_from_uri (GST_URI_SRC, uri.c_str (),
      nullptr, &err);
  fail_unless (src != nullptr, "%s", err ? err->message : "");
  gst_object_ref_sink (src);
  g_autofree gchar *factory = gst_object_get_name (
      GST_OBJECT (gst_element_get_factory (src)));
  fail_unless_equals_string (factory, "kafkasrc");
  assert_property (src, "brokers", "b1:9092,b2:9093");
  assert_property (src, "topic", "frames.v1");
  assert_property (src, "group-id", "view");
  gint start_from, partition;
  guint stats_interval;
  gboolean is_live;
  GstCaps *caps;
  GstStructure *config;
  g_object_get (src, "start-from", &start_from, "partition", &partition,
      "is-live", &is_live, "caps", &caps, "stats-interval", &stats_interval,
      "config", &config, nullptr);
  fail_unless_equals_int (start_from, 2); /* latest */
  fail_unless_equals_int (partition, 2);
  fail_unless (!is_live);
  g_autoptr (GstCaps) png = gst_caps_from_string ("image/png");
  fail_unless (caps && gst_caps_is_equal_fixed (caps, png));
  gst_caps_unref (caps);
  fail_unless_equals_int (stats_interval, 1000); /* %31 is '1' */
  fail_unless (config == nullptr);
  assert_property (src, "uri", uri.c_str ());
  g_autofree gchar *got = gst_uri_handler_get_uri (GST_URI_HANDLER (src));
  fail_unless_equals_string (got, uri.c_str ());

  /* A URI changes only what it names; no host means the default broker. */
  fail_unless (gst_uri_handler_set_uri (GST_URI_HANDLER (src),
      "kafka:///other?start-from=earliest", &err));
  assert_property (src, "brokers", "localhost:9092");
  assert_property (src, "topic", "other");
  assert_property (src, "group-id", "view");
  assert_property (src, "uri",
      "kafka://localhost:9092/other?start-from=earliest");
  /* Setting topic afterwards shows in the URI. */
  g_object_set (src, "topic", "third", nullptr);
  assert_property (src, "uri",
      "kafka://localhost:9092/third?start-from=earliest");
  gst_object_unref (src);

  /* kafkasink, through its uri property. */
  GstElement *sink = gst_element_factory_make ("kafkasink", nullptr);
  gst_object_ref_sink (sink);
  GstElement *made = gst_element_make_from_uri (GST_URI_SINK, "kafka://h/t",
      nullptr, nullptr);
  fail_unless (made != nullptr);
  g_autofree gchar *made_factory = gst_object_get_name (
      GST_OBJECT (gst_element_get_factory (made)));
  fail_unless_equals_string (made_factory, "kafkasink");
  gst_object_unref (gst_object_ref_sink (made));
  g_object_set (sink, "uri",
      "kafka://h:1/t?key=camera%201&queue-full-policy=drop&sync=false",
      nullptr);
  assert_property (sink, "brokers", "h:1");
  assert_property (sink, "topic", "t");
  assert_property (sink, "key", "camera 1");
  gint policy;
  gboolean sync;
  g_object_get (sink, "queue-full-policy", &policy, "sync", &sync, nullptr);
  fail_unless_equals_int (policy, 1); /* drop */
  fail_unless (!sync);
  gst_object_unref (sink);

  /* Secrets in a URI never read back, nor show in its errors. */
  sink = gst_element_factory_make ("kafkasink", nullptr);
  gst_object_ref_sink (sink);
  g_object_set (sink, "uri",
      "kafka://h/t?sasl.username=u&sasl.password=hunter2&linger.ms=0", nullptr);
  assert_property (sink, "uri",
      "kafka://h/t?sasl.username=u&sasl.password=****&linger.ms=0");
  g_autoptr (GError) secret_err = nullptr;
  fail_if (gst_uri_handler_set_uri (GST_URI_HANDLER (sink),
      "kafka://h/?sasl.password=hunter2", &secret_err));
  fail_if (strstr (secret_err->message, "hunter2"), "%s", secret_err->message);
  g_autoptr (GError) userinfo_err = nullptr;
  fail_if (gst_uri_handler_set_uri (GST_URI_HANDLER (sink),
      "kafka://u:hunter2@h/t", &userinfo_err));
  fail_if (strstr (userinfo_err->message, "hunter2"), "%s",
      userinfo_err->message);
  gst_object_unref (sink);

  /* Other schemes are not ours. */
  fail_unless (gst_element_make_from_uri (GST_URI_SRC, "kafkas://h/t", nullptr,
                   nullptr) == nullptr);
}
GST_END_TEST;

GST_START_TEST (test_uri_refused)
{
  struct
  {
    const char *uri;
    std::initializer_list<const char *> words;
    const char *only = nullptr;
  } cases[] = {
      {"kafka://h:9092", {"names no topic", "kafka://HOST:PORT"}},
      {"kafka://h:9092/", {"names no topic"}},
      {"kafka://h/a/b", {"one topic name"}},
      {"kafka://h/a%2Fb", {"one topic name"}},
      {"kafka://h/my%20topic", {"'my topic' is not a valid Kafka topic name"}},
      {"kafka://h/%zz", {"malformed"}},
      {"kafka://user:secret@h/t", {"no user name or password", "config-file"}},
      {"kafka://h/t?no-such=1", {"no property 'no-such'", "gst-inspect-1.0"}},
      {"kafka://h/t?messages=5", {"no property 'messages'"}},
      {"kafka://h/t?uri=kafka://h/u", {"no property 'uri'"}},
      {"kafka://h/t?partition=banana",
          {"'banana' is not a valid value", "'partition'", "gint"}},
      {"kafka://h/t?partition=-5", {"'-5' is not a valid value"}},
      {"kafka://h/t?start-from=sometime", {"'sometime'", "'start-from'"},
          "kafkasrc"},
      {"kafka://h/t?queue-full-policy=wait", {"'wait'", "'queue-full-policy'"},
          "kafkasink"},
      {"kafka://h/t?start-from", {"'start-from' in the URI is not KEY=VALUE"}},
  };

  for (auto &c : cases) {
    for (const char *factory : {"kafkasrc", "kafkasink"}) {
      if (c.only && strcmp (c.only, factory))
        continue;
      /* The URI handler refuses it and changes nothing. */
      GstElement *e = gst_element_factory_make (factory, nullptr);
      gst_object_ref_sink (e);
      g_object_set (e, "brokers", "before:1", "topic", "before", nullptr);
      g_autoptr (GError) err = nullptr;
      fail_if (gst_uri_handler_set_uri (GST_URI_HANDLER (e), c.uri, &err),
          "%s accepted %s", factory, c.uri);
      fail_unless (err != nullptr);
      assert_contains (err->message, c.words);
      assert_property (e, "brokers", "before:1");
      assert_property (e, "topic", "before");

      /* Through the uri property, starting fails with the same reason. */
      g_object_set (e, "uri", c.uri, nullptr);
      std::string message = start_error (e);
      assert_contains (message.c_str (), {"Invalid 'uri' property"});
      assert_contains (message.c_str (), c.words);

      /* A good URI afterwards clears the problem. */
      g_object_set (e, "uri", "kafka://h/t", nullptr);
      assert_property (e, "topic", "t");
      gst_object_unref (e);
    }
  }
  fail_unless (gst_element_make_from_uri (GST_URI_SRC, "kafka://h/t?x=1",
                   nullptr, nullptr) == nullptr);
}
GST_END_TEST;

GST_START_TEST (test_uri_while_running)
{
  std::string topic = kafkatest::unique_topic ("uri-running");
  GstElement *src = gst_element_make_from_uri (GST_URI_SRC,
      uri_for (topic).c_str (), nullptr, nullptr);
  fail_unless (src != nullptr);
  gst_object_ref_sink (src);
  GstElement *pipeline = gst_pipeline_new (nullptr);
  GstElement *sink = gst_element_factory_make ("fakesink", nullptr);
  gst_bin_add_many (GST_BIN (pipeline), src, sink, nullptr);
  fail_unless (gst_element_link (src, sink));
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
               GST_STATE_CHANGE_FAILURE);
  fail_unless (gst_element_get_state (pipeline, nullptr, nullptr,
                   10 * GST_SECOND) != GST_STATE_CHANGE_FAILURE);

  g_autoptr (GError) err = nullptr;
  fail_if (gst_uri_handler_set_uri (GST_URI_HANDLER (src),
      uri_for ("elsewhere").c_str (), &err));
  fail_unless (g_error_matches (err, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE));
  assert_contains (err->message, {"NULL or READY"});
  assert_property (src, "topic", topic.c_str ());

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (pipeline);
}
GST_END_TEST;

GST_START_TEST (test_uri_librdkafka_settings)
{
  /* A setting librdkafka does not know fails the start, naming the URI. */
  for (const char *factory : {"kafkasrc", "kafkasink"}) {
    GstElement *e = gst_element_factory_make (factory, nullptr);
    gst_object_ref_sink (e);
    g_autoptr (GstStructure)
        config = gst_structure_from_string ("kafka, client.rack=r1", nullptr);
    g_object_set (e, "config", config, nullptr);
    g_object_set (e, "uri", uri_for ("t", "no.such.setting=1").c_str (),
        nullptr);
    std::string message = start_error (e);
    assert_contains (message.c_str (), {"no.such.setting", "(uri)"});
    gst_object_unref (e);
  }
}
GST_END_TEST;

static void
count_handoff (GstElement *, GstBuffer *, GstPad *, gpointer data)
{
  (*static_cast<int *> (data))++;
}

/* A producer written as a gst-launch line with a kafka:// sink, a key and
 * a librdkafka setting from the URI; played back by playbin from a
 * kafka:// URI. */
GST_START_TEST (test_playbin_plays_a_topic)
{
  std::string topic = kafkatest::unique_topic ("uri-playbin");
  std::string sink_uri = uri_for (topic, "key=cam-1&eos-marker=true&"
                                         "linger.ms=0&sync=false");
  std::string desc = "videotestsrc num-buffers=12 pattern=ball ! "
                     "video/x-raw,width=64,height=48,framerate=25/1 ! "
                     "pngenc ! " +
                     sink_uri;
  g_autoptr (GError) err = nullptr;
  GstElement *producer = gst_parse_launch (desc.c_str (), &err);
  fail_unless (producer != nullptr, "%s", err ? err->message : "");
  std::string ran = kafkatest::run_to_eos (producer);
  fail_unless (ran.empty (), "%s", ran.c_str ());
  gst_object_unref (producer);

  /* Any client sees the key the URI gave, on the 12 frames and the
   * end-of-stream marker. */
  fail_unless (kafkatest::kcat_lines (topic, "%k\n") ==
               std::vector<std::string> (13, "cam-1"));

  GstElement *playbin = gst_element_factory_make ("playbin", nullptr);
  fail_unless (playbin != nullptr);
  GstElement *vsink = gst_element_factory_make ("fakesink", nullptr);
  int frames = 0;
  g_object_set (vsink, "signal-handoffs", TRUE, "sync", FALSE, nullptr);
  g_signal_connect (vsink, "handoff", G_CALLBACK (count_handoff), &frames);
  g_object_set (playbin, "uri",
      uri_for (topic, "start-from=earliest&stop-at=end").c_str (), "video-sink",
      vsink, "audio-sink", gst_element_factory_make ("fakesink", nullptr),
      nullptr);
  ran = kafkatest::run_to_eos (playbin);
  fail_unless (ran.empty (), "%s", ran.c_str ());
  fail_unless_equals_int (frames, 12);
  gst_object_unref (playbin);
}
GST_END_TEST;

static Suite *
kafkauri_suite (void)
{
  Suite *s = suite_create ("kafkauri");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_uri_sets_properties);
  tcase_add_test (tc, test_uri_refused);
  tcase_add_test (tc, test_uri_while_running);
  tcase_add_test (tc, test_uri_librdkafka_settings);
  tcase_add_test (tc, test_playbin_plays_a_topic);
  return s;
}

GST_CHECK_MAIN (kafkauri);
