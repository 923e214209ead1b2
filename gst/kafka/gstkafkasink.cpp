/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkafkasink.h"
#include "gstkafkaelements.h"

struct _GstKafkaSink
{
  GstBaseSink parent;
};

G_DEFINE_TYPE (GstKafkaSink, gst_kafka_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (kafkasink, "kafkasink", GST_RANK_NONE,
    GST_TYPE_KAFKA_SINK, kafka_element_init (plugin));

static void
gst_kafka_sink_class_init (GstKafkaSinkClass *klass)
{
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "Kafka sink (not yet implemented)", "Generic", "TODO", "gst-kafka");
}

static void
gst_kafka_sink_init (GstKafkaSink *)
{
}
