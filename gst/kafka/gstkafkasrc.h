/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_KAFKA_SRC (gst_kafka_src_get_type ())
G_DECLARE_FINAL_TYPE (GstKafkaSrc, gst_kafka_src, GST, KAFKA_SRC, GstPushSrc)

/**
 * GstKafkaSrcStartFrom:
 * @GST_KAFKA_SRC_START_FROM_COMMITTED: the group's committed offset, or the
 *   earliest message when the group has none
 * @GST_KAFKA_SRC_START_FROM_EARLIEST: the earliest message still in the topic
 * @GST_KAFKA_SRC_START_FROM_LATEST: only messages produced from now on
 * @GST_KAFKA_SRC_START_FROM_OFFSET: #GstKafkaSrc:start-offset
 * @GST_KAFKA_SRC_START_FROM_TIMESTAMP: the first message at or after
 *   #GstKafkaSrc:start-time
 *
 * Where kafkasrc starts reading each partition.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_KAFKA_SRC_START_FROM_COMMITTED,
  GST_KAFKA_SRC_START_FROM_EARLIEST,
  GST_KAFKA_SRC_START_FROM_LATEST,
  GST_KAFKA_SRC_START_FROM_OFFSET,
  GST_KAFKA_SRC_START_FROM_TIMESTAMP,
} GstKafkaSrcStartFrom;

/**
 * GstKafkaSrcStopAt:
 * @GST_KAFKA_SRC_STOP_AT_NEVER: run until stopped (live)
 * @GST_KAFKA_SRC_STOP_AT_END: EOS once every partition reached the end it
 *   had when kafkasrc got it
 * @GST_KAFKA_SRC_STOP_AT_TIMESTAMP: EOS at the first message at or after
 *   #GstKafkaSrc:stop-time
 *
 * When kafkasrc sends EOS on its own.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_KAFKA_SRC_STOP_AT_NEVER,
  GST_KAFKA_SRC_STOP_AT_END,
  GST_KAFKA_SRC_STOP_AT_TIMESTAMP,
} GstKafkaSrcStopAt;

/**
 * GstKafkaSrcMalformedPolicy:
 * @GST_KAFKA_SRC_MALFORMED_DELIVER: deliver the payload with the fallback
 *   caps and whatever header could be decoded
 * @GST_KAFKA_SRC_MALFORMED_SKIP: drop the message
 *
 * What kafkasrc does with a message whose gst.* headers are malformed. A
 * warning naming the topic, partition and offset is posted either way (once
 * per kind of problem).
 *
 * Since: 0.1
 */
typedef enum
{
  GST_KAFKA_SRC_MALFORMED_DELIVER,
  GST_KAFKA_SRC_MALFORMED_SKIP,
} GstKafkaSrcMalformedPolicy;

#define GST_TYPE_KAFKA_SRC_START_FROM (gst_kafka_src_start_from_get_type ())
GType gst_kafka_src_start_from_get_type (void);
#define GST_TYPE_KAFKA_SRC_STOP_AT (gst_kafka_src_stop_at_get_type ())
GType gst_kafka_src_stop_at_get_type (void);
#define GST_TYPE_KAFKA_SRC_MALFORMED_POLICY                                    \
  (gst_kafka_src_malformed_policy_get_type ())
GType gst_kafka_src_malformed_policy_get_type (void);

G_END_DECLS
