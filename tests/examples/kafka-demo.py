#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Video through Kafka into web browsers, as one GStreamer application.

Builds the two pipelines of gst-kafka's demo programmatically, each in its
own GstPipeline on one bus-watching main loop:

  producer: filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB !
            queue ! pngenc ! kafkasink
            (or a generated test pattern when no file is given)
  viewer:   kafkasrc ! multipartmux ! souphttpserversink

  kafka-demo.py [VIDEO] [--brokers B] [--topic T] [--group G] [--port P]
                [--num-frames N] [--producer-only | --viewer-only]
"""

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def make(factory, name=None, **props):
    element = Gst.ElementFactory.make(factory, name)
    if element is None:
        sys.exit("error: GStreamer element '%s' is missing: is gst-kafka built and "
                 "GST_PLUGIN_PATH set (or the plugins installed)?" % factory)
    for key, value in props.items():
        element.set_property(key.replace("_", "-"), value)
    return element


def build_producer(args):
    pipeline = Gst.Pipeline.new("producer")
    sink = make("kafkasink", "kafkasink", brokers=args.brokers, topic=args.topic)
    enc = make("pngenc", compression_level=1)
    # 24-bit PNGs (pngenc would be given RGBA), encoded in a thread of their
    # own.
    rgb = make("capsfilter", caps=Gst.Caps.from_string("video/x-raw,format=RGB"))
    queue = make("queue")
    convert = make("videoconvert")
    for e in (convert, rgb, queue, enc, sink):
        pipeline.add(e)
    convert.link(rgb)
    rgb.link(queue)
    queue.link(enc)
    enc.link(sink)

    if args.video:
        if not os.path.exists(args.video):
            sys.exit("error: no such video file: %s" % args.video)
        src = make("filesrc", location=args.video)
        decode = make("decodebin")
        pipeline.add(src)
        pipeline.add(decode)
        src.link(decode)

        def on_pad(_decodebin, pad):
            caps = pad.get_current_caps() or pad.query_caps(None)
            if caps.get_structure(0).get_name().startswith("video/") and \
                    not convert.get_static_pad("sink").is_linked():
                pad.link(convert.get_static_pad("sink"))
        decode.connect("pad-added", on_pad)
    else:
        src = make("videotestsrc", is_live=True, pattern="ball",
                   num_buffers=args.num_frames)
        caps = make("capsfilter", caps=Gst.Caps.from_string(
            "video/x-raw,width=640,height=360,framerate=30/1"))
        overlay = make("timeoverlay", font_desc="Sans 24", halignment="right")
        for e in (src, caps, overlay):
            pipeline.add(e)
        src.link(caps)
        caps.link(overlay)
        overlay.link(convert)
    return pipeline


def build_viewer(args):
    pipeline = Gst.Pipeline.new("viewer")
    src = make("kafkasrc", "kafkasrc", brokers=args.brokers, topic=args.topic,
               group_id=args.group)
    mux = make("multipartmux", boundary="frame")
    sink = make("souphttpserversink", "httpsink", port=args.port, address=args.address)
    for e in (src, mux, sink):
        pipeline.add(e)
    src.link(mux)
    mux.link(sink)
    return pipeline


def prop(pipeline, element, *names):
    """First readable property of @names on @element, None when missing."""
    e = pipeline.get_by_name(element) if pipeline else None
    if e is None:
        return None
    for name in names:
        if e.find_property(name) is not None:
            return e.get_property(name)
    return None


class Demo:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.status = 0
        self.producer = None if args.viewer_only else build_producer(args)
        self.viewer = None if args.producer_only else build_viewer(args)
        self.running = [p for p in (self.producer, self.viewer) if p]
        for p in self.running:
            bus = p.get_bus()
            bus.add_signal_watch()
            bus.connect("message", self.on_message, p)

    def on_message(self, _bus, msg, pipeline):
        name = pipeline.get_name()
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print("%s: error from %s: %s" % (name, msg.src.get_name(), err.message),
                  file=sys.stderr)
            if debug:
                print("  (%s)" % debug, file=sys.stderr)
            self.status = 1
            self.stop()
        elif msg.type == Gst.MessageType.WARNING:
            err, _debug = msg.parse_warning()
            print("%s: warning from %s: %s" % (name, msg.src.get_name(), err.message),
                  file=sys.stderr)
        elif msg.type == Gst.MessageType.EOS:
            print("%s: end of stream" % name)
            pipeline.set_state(Gst.State.NULL)
            self.running.remove(pipeline)
            if pipeline is self.producer:
                print("producer finished; the frames stay in Kafka topic '%s'" %
                      self.args.topic)
            if not self.running:
                self.loop.quit()

    def progress(self):
        parts = []
        if self.producer in self.running:
            parts.append("producer: %s frames in Kafka (%s in flight)" % (
                prop(self.producer, "kafkasink", "messages-delivered"),
                prop(self.producer, "kafkasink", "messages-queued")))
        if self.viewer in self.running:
            stats = prop(self.viewer, "httpsink", "stats")
            clients = stats.get_value("clients-connected") if stats else "?"
            parts.append("viewer: %s frames read, %s browser(s) watching" % (
                prop(self.viewer, "kafkasrc", "messages"), clients))
        if parts:
            print("; ".join(parts), flush=True)
        return True

    def stop(self):
        for p in list(self.running):
            p.set_state(Gst.State.NULL)
        self.running.clear()
        self.loop.quit()

    def run(self):
        for p in self.running:
            if p.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                print("%s: could not start (see the error above)" % p.get_name(),
                      file=sys.stderr)
                self.status = 1
        if self.viewer and self.status == 0:
            port = prop(self.viewer, "httpsink", "current-port") or self.args.port
            print("\nOpen http://%s:%s/ in a web browser (Ctrl-C stops)\n" % (
                "127.0.0.1" if self.args.address in ("0.0.0.0", "::") else self.args.address,
                port), flush=True)
        GLib.timeout_add_seconds(2, self.progress)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.on_signal)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self.on_signal)
        if self.status == 0:
            self.loop.run()
        self.stop()
        return self.status

    def on_signal(self):
        print("stopping...", flush=True)
        self.stop()
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", help="video file (default: a generated test pattern)")
    p.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "localhost:9092"))
    p.add_argument("--topic", default="my-topic")
    p.add_argument("--group", default="view")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--num-frames", type=int, default=-1,
                   help="frames of the generated pattern (default: endless)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--producer-only", action="store_true")
    g.add_argument("--viewer-only", action="store_true")
    args = p.parse_args()
    Gst.init(None)
    sys.exit(Demo(args).run())


if __name__ == "__main__":
    main()
