# SPDX-License-Identifier: LGPL-2.1-or-later
# The tutorial's consumer.py, kept as it was but for what no longer runs or
# what a test must set:
#  - the missing comma after group_id='view'
#  - the broker address, topic, group and port come from the environment
#    (KAFKA_BROKERS, TUTORIAL_TOPIC, TUTORIAL_GROUP, TUTORIAL_PORT)
#  - it listens on 127.0.0.1 without Flask's debug reloader (which would fork
#    a second consumer)
import os
from flask import Flask, Response
from kafka import KafkaConsumer
#connect to Kafka server and pass the topic we want to consume
consumer = KafkaConsumer(os.environ.get('TUTORIAL_TOPIC', 'my-topic'),
                         group_id=os.environ.get('TUTORIAL_GROUP', 'view'),
                         bootstrap_servers=os.environ.get('KAFKA_BROKERS', '0.0.0.0:9092').split(','),
                         fetch_max_bytes=64 * 1024 * 1024,
                         max_partition_fetch_bytes=16 * 1024 * 1024)
#Continuously listen to the connection and print messages as recieved
app = Flask(__name__)

@app.route('/')
def index():
    # return a multipart response
    return Response(kafkastream(),
                    mimetype='multipart/x-mixed-replace; boundary=frame')
def kafkastream():
    for msg in consumer:
        yield (b'--frame\r\n'
               b'Content-Type: image/png\r\n\r\n' + msg.value + b'\r\n\r\n')

if __name__ == '__main__':
    app.run(host='127.0.0.1', port=int(os.environ.get('TUTORIAL_PORT', '5000')),
            debug=False, threaded=True)
