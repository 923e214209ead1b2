/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_KAFKA_SINK (gst_kafka_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstKafkaSink, gst_kafka_sink, GST, KAFKA_SINK,
    GstBaseSink)

/**
 * GstKafkaSinkQueueFullPolicy:
 * @GST_KAFKA_SINK_QUEUE_FULL_BLOCK: wait until librdkafka's producer queue
 *   has room again, which backpressures upstream
 * @GST_KAFKA_SINK_QUEUE_FULL_DROP: drop the buffer and count it in
 *   #GstKafkaSink:messages-dropped
 *
 * What kafkasink does with a buffer when librdkafka's producer queue
 * (`queue.buffering.max.messages`, `queue.buffering.max.kbytes`) is full.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_KAFKA_SINK_QUEUE_FULL_BLOCK,
  GST_KAFKA_SINK_QUEUE_FULL_DROP,
} GstKafkaSinkQueueFullPolicy;

#define GST_TYPE_KAFKA_SINK_QUEUE_FULL_POLICY                                  \
  (gst_kafka_sink_queue_full_policy_get_type ())
GType gst_kafka_sink_queue_full_policy_get_type (void);

G_END_DECLS
