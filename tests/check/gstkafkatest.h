/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for tests that talk to the real broker started by
 * tests/kafka/kafka-local (its address comes in $KAFKA_BROKERS). */

#pragma once

#include <gst/gst.h>
#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace kafkatest {

/* Exit code that tells meson a test was skipped. */
constexpr int SKIP = 77;

/* The broker's bootstrap servers; skips the test when none is given. */
inline const char *
brokers ()
{
  const char *b = g_getenv ("KAFKA_BROKERS");
  if (!b || !*b) {
    g_printerr ("KAFKA_BROKERS is not set: run the tests through "
                "tests/run (or tests/kafka/kafka-local run -- meson test)\n");
    exit (SKIP);
  }
  return b;
}

/* A topic name no other test (or earlier run) uses. */
inline std::string
unique_topic (const char *prefix)
{
  static int counter = 0;
  return std::string (prefix) + "-" + std::to_string (g_get_real_time ()) +
         "-" + std::to_string (getpid ()) + "-" + std::to_string (++counter);
}

/* An administration client: a producer handle that never produces, and
 * whose metadata requests never create a topic. */
inline rd_kafka_t *
admin_handle (const char *bootstrap = nullptr)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_conf_set (conf, "bootstrap.servers",
      bootstrap ? bootstrap : brokers (), errstr, sizeof (errstr));
  rd_kafka_conf_set (conf, "allow.auto.create.topics", "false", errstr,
      sizeof (errstr));
  rd_kafka_t *rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr,
      sizeof (errstr));
  if (!rk)
    g_printerr ("rd_kafka_new: %s\n", errstr);
  return rk;
}

/* Waits for the result of an administration request on @q: whether the
 * one topic it names got no error (or @also_ok). */
inline bool
admin_result (rd_kafka_queue_t *q, const std::string &topic,
    rd_kafka_resp_err_t also_ok = RD_KAFKA_RESP_ERR_NO_ERROR)
{
  rd_kafka_event_t *ev = rd_kafka_queue_poll (q, 30000);
  if (!ev) {
    g_printerr ("%s: no answer from the broker\n", topic.c_str ());
    return false;
  }
  size_t n = 0;
  const rd_kafka_topic_result_t **res = nullptr;
  if (rd_kafka_event_type (ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
    res = rd_kafka_CreateTopics_result_topics (
        rd_kafka_event_CreateTopics_result (ev), &n);
  else if (rd_kafka_event_type (ev) == RD_KAFKA_EVENT_DELETETOPICS_RESULT)
    res = rd_kafka_DeleteTopics_result_topics (
        rd_kafka_event_DeleteTopics_result (ev), &n);
  rd_kafka_resp_err_t err = n == 1 ? rd_kafka_topic_result_error (res[0])
                                   : RD_KAFKA_RESP_ERR__FAIL;
  bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR || err == also_ok;
  if (!ok)
    g_printerr ("%s: %s\n", topic.c_str (),
        n ? rd_kafka_topic_result_error_string (res[0]) : "no result");
  rd_kafka_event_destroy (ev);
  return ok;
}

/* Asks for @topic's metadata every 100 ms, for up to 10 s, until @done
 * (given the topic's metadata) says it is as expected. */
template <typename Done>
inline void
wait_for_topic (rd_kafka_t *rk, const std::string &topic, Done done)
{
  for (int i = 0; i < 100; i++) {
    const rd_kafka_metadata_t *md = nullptr;
    rd_kafka_topic_t *t = rd_kafka_topic_new (rk, topic.c_str (), nullptr);
    bool ready = false;
    if (rd_kafka_metadata (rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ready = md->topic_cnt == 1 && done (md->topics[0]);
      rd_kafka_metadata_destroy (md);
    }
    rd_kafka_topic_destroy (t);
    if (ready)
      return;
    g_usleep (100 * 1000);
  }
}

/* Creates @topic and waits until the broker reports it. */
inline bool
create_topic (const std::string &topic, int partitions = 1, int rf = 1,
    const char *bootstrap = nullptr)
{
  char errstr[512];
  rd_kafka_t *rk = admin_handle (bootstrap);
  if (!rk)
    return false;
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new (topic.c_str (), partitions,
      rf, errstr, sizeof (errstr));
  rd_kafka_queue_t *q = rd_kafka_queue_new (rk);
  rd_kafka_CreateTopics (rk, &nt, 1, nullptr, q);
  bool ok = admin_result (q, topic, RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
  /* Every partition with a leader. */
  if (ok)
    wait_for_topic (rk, topic, [partitions] (const rd_kafka_metadata_topic &t) {
      bool ready = t.err == 0 && t.partition_cnt == partitions;
      for (int p = 0; ready && p < t.partition_cnt; p++)
        ready = t.partitions[p].leader >= 0;
      return ready;
    });
  rd_kafka_NewTopic_destroy (nt);
  rd_kafka_queue_destroy (q);
  rd_kafka_destroy (rk);
  return ok;
}

/* Deletes @topic and waits until the broker no longer reports it. */
inline bool
delete_topic (const std::string &topic)
{
  rd_kafka_t *rk = admin_handle ();
  if (!rk)
    return false;
  rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new (topic.c_str ());
  rd_kafka_queue_t *q = rd_kafka_queue_new (rk);
  rd_kafka_DeleteTopics (rk, &dt, 1, nullptr, q);
  bool ok = admin_result (q, topic);
  if (ok)
    wait_for_topic (rk, topic,
        [] (const rd_kafka_metadata_topic &t) { return t.err != 0; });
  rd_kafka_DeleteTopic_destroy (dt);
  rd_kafka_queue_destroy (q);
  rd_kafka_destroy (rk);
  return ok;
}

/* Deletes the messages of partition 0 of @topic before @offset, as the
 * topic's retention would. */
inline bool
delete_records (const std::string &topic, gint64 offset)
{
  rd_kafka_t *rk = admin_handle ();
  if (!rk)
    return false;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (l, topic.c_str (), 0)->offset = offset;
  rd_kafka_DeleteRecords_t *dr = rd_kafka_DeleteRecords_new (l);
  rd_kafka_queue_t *q = rd_kafka_queue_new (rk);
  rd_kafka_DeleteRecords (rk, &dr, 1, nullptr, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll (q, 30000);
  bool ok = false;
  if (ev && !rd_kafka_event_error (ev)) {
    const rd_kafka_topic_partition_list_t
        *res = rd_kafka_DeleteRecords_result_offsets (
            rd_kafka_event_DeleteRecords_result (ev));
    ok = res && res->cnt == 1 && !res->elems[0].err;
  }
  if (!ok)
    g_printerr ("%s: deleting records failed: %s\n", topic.c_str (),
        ev ? rd_kafka_event_error_string (ev) : "no answer");
  if (ev)
    rd_kafka_event_destroy (ev);
  rd_kafka_DeleteRecords_destroy (dr);
  rd_kafka_topic_partition_list_destroy (l);
  rd_kafka_queue_destroy (q);
  rd_kafka_destroy (rk);
  return ok;
}

/* Runs @argv (a NULL-terminated list), returns its exit status; its stdout
 * goes to @out when given. */
inline int
run (const std::vector<const char *> &argv, std::string *out = nullptr,
    std::string *err = nullptr)
{
  std::vector<gchar *> args;
  for (auto a : argv)
    args.push_back (const_cast<gchar *> (a));
  args.push_back (nullptr);
  gchar *sout = nullptr, *serr = nullptr;
  gint status = -1;
  GError *error = nullptr;
  gsize out_len = 0;
  if (!g_spawn_sync (nullptr, args.data (), nullptr, G_SPAWN_SEARCH_PATH,
          nullptr, nullptr, &sout, &serr, &status, &error)) {
    g_printerr ("%s: %s\n", argv[0], error->message);
    g_error_free (error);
    return -1;
  }
  (void) out_len;
  if (out)
    *out = sout ? sout : "";
  if (err)
    *err = serr ? serr : "";
  g_free (sout);
  g_free (serr);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* Every message of @topic, all partitions, as kcat prints it with
 * "-f @fmt" (a line per message when @fmt ends in "\n"), split into its
 * non-empty lines; empty when kcat fails. */
inline std::vector<std::string>
kcat_lines (const std::string &topic, const char *fmt)
{
  std::string out, err;
  if (run ({"kcat", "-C", "-b", brokers (), "-t", topic.c_str (), "-e", "-q",
               "-f", fmt},
          &out, &err) != 0) {
    g_printerr ("kcat: %s\n", err.c_str ());
    return {};
  }
  std::vector<std::string> lines;
  gchar **parts = g_strsplit (out.c_str (), "\n", -1);
  for (gchar **l = parts; *l; l++)
    if (**l)
      lines.push_back (*l);
  g_strfreev (parts);
  return lines;
}

/* Plays @pipeline until EOS (then sets it to NULL). Returns "" at EOS, or
 * what came instead: the error's message, or that nothing came in 60 s. */
inline std::string
run_to_eos (GstElement *pipeline)
{
  std::string problem;
  GstBus *bus = gst_element_get_bus (pipeline);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE)
    problem = "the pipeline did not start";
  GstMessage *msg = problem.empty ()
                        ? gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
                              static_cast<GstMessageType> (
                                  GST_MESSAGE_EOS | GST_MESSAGE_ERROR))
                        : nullptr;
  if (problem.empty () && !msg)
    problem = "no EOS within 60 s";
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error (msg, &err, nullptr);
    problem = std::string ("error instead of EOS: ") + err->message;
    g_error_free (err);
  }
  if (msg)
    gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  return problem;
}

} // namespace kafkatest
