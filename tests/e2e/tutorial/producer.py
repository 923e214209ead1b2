# SPDX-License-Identifier: LGPL-2.1-or-later
# The tutorial's producer.py ("Build a Distributed Streaming System with
# Apache Kafka and Python"), kept as it was but for what no longer runs or
# what a test must set:
#  - kafka-python removed SimpleProducer/KafkaClient: KafkaProducer.send()
#  - the broker address and the video file come from the environment
#    (KAFKA_BROKERS, argv[1]) instead of localhost:9092 and 'video.mp4'
#  - the producer is flushed before exiting, as KafkaProducer sends in the
#    background
#  - TUTORIAL_SLEEP overrides the 0.2 s pause (the benchmark measures both)

import os
import sys
import time
import cv2
from kafka import KafkaProducer
#  connect to Kafka
producer = KafkaProducer(bootstrap_servers=os.environ.get('KAFKA_BROKERS', 'localhost:9092').split(','),
                         max_request_size=16 * 1024 * 1024)
# Assign a topic
topic = os.environ.get('TUTORIAL_TOPIC', 'my-topic')
sleep = float(os.environ.get('TUTORIAL_SLEEP', '0.2'))


def video_emitter(video):
    # Open the video
    video = cv2.VideoCapture(video)
    print(' emitting.....')

    # read the file
    while (video.isOpened):
        # read the image in each frame
        success, image = video.read()
        # check if the file has read to the end
        if not success:
            break
        # convert the image png
        ret, jpeg = cv2.imencode('.png', image)
        # Convert the image to bytes and send to kafka
        producer.send(topic, jpeg.tobytes())
        # To reduce CPU usage create sleep time of 0.2sec
        time.sleep(sleep)
    # clear the capture
    video.release()
    producer.flush()
    print('done emitting')


if __name__ == '__main__':
    video_emitter(sys.argv[1] if len(sys.argv) > 1 else 'video.mp4')
