/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkafkasrc.h"
#include "gstkafkaelements.h"

struct _GstKafkaSrc
{
  GstPushSrc parent;
};

G_DEFINE_TYPE (GstKafkaSrc, gst_kafka_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (kafkasrc, "kafkasrc", GST_RANK_NONE,
    GST_TYPE_KAFKA_SRC, kafka_element_init (plugin));

static void
gst_kafka_src_class_init (GstKafkaSrcClass *klass)
{
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "Kafka src (not yet implemented)", "Generic", "TODO", "gst-kafka");
}

static void
gst_kafka_src_init (GstKafkaSrc *)
{
}
