/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkafkaelements.h"

#include <librdkafka/rdkafka.h>

GST_DEBUG_CATEGORY (gst_kafka_debug);

void
kafka_element_init (GstPlugin *)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (gst_kafka_debug, "kafka", 0, "Kafka plugin");
    GST_INFO ("using librdkafka %s", rd_kafka_version_str ());
    g_once_init_leave (&done, 1);
  }
}
