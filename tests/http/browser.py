#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real browser shows what souphttpserversink serves.

Headless Chromium loads a page whose <img> points at the sink, for JPEG and
PNG images framed by the sink and for multipartmux's stream, and the
screenshot must show the seven SMPTE colour bars where they belong. Then a
<video> element plays the sink's live WebM stream; the page draws the video
into a canvas (which CORS allows: the sink runs with cors=*) and reports the
colours of the bars.

Usage: browser.py [CHROMIUM]. Exits 77 (skip) without Chromium.
"""

import os
import shutil
import struct
import subprocess
import sys
import socket
import tempfile
import threading
import zlib

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

WIDTH, HEIGHT = 320, 240
# videotestsrc pattern=smpte100: seven full-height bars, left to right.
BARS = [
    ("white", (255, 255, 255)),
    ("yellow", (255, 255, 0)),
    ("cyan", (0, 255, 255)),
    ("green", (0, 255, 0)),
    ("magenta", (255, 0, 255)),
    ("red", (255, 0, 0)),
    ("blue", (0, 0, 255)),
]
# JPEG and the browser's colour conversion move colours a little; a wrong
# bar is off by about 255 in at least one channel.
TOLERANCE = 60

CASES = [
    ("jpeg", "jpegenc quality=90"),
    ("png", "pngenc compression-level=1"),
    ("multipartmux", "jpegenc quality=90 ! multipartmux boundary=frame"),
]


def read_png(path):
    """Decodes an 8-bit RGB or RGBA PNG into (width, height, rows of RGB)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, b""
    width = height = bpp = None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(
                ">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError("unsupported PNG layout")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


# The bars fill the top, noise the bottom: the browser's demuxer wants a
# fair amount of data before it reports the stream's metadata.
WEBM = (
    f"compositor name=mix sink_1::ypos={HEIGHT * 3 // 4} ! "
    f"video/x-raw,width={WIDTH},height={HEIGHT},framerate=30/1 ! "
    "vp8enc deadline=1 keyframe-max-dist=30 ! webmmux streamable=true ! "
    "souphttpserversink name=sink port=0 path=/stream cors=* "
    "videotestsrc pattern=smpte100 is-live=true ! "
    f"video/x-raw,width={WIDTH},height={HEIGHT},framerate=30/1 ! mix. "
    "videotestsrc pattern=snow is-live=true ! "
    f"video/x-raw,width={WIDTH},height={HEIGHT // 4},framerate=30/1 ! mix.")

VIDEO_PAGE = """<!DOCTYPE html><html><body>
<div id="out">pending</div>
<video id="v" src="{url}" crossorigin="anonymous" autoplay muted></video>
<img src="{hold}">
<script>
const v = document.getElementById('v');
const out = document.getElementById('out');
v.addEventListener('error', () => {{ out.textContent = 'error ' + v.error.code; }});
v.addEventListener('timeupdate', () => {{
  if (out.textContent.startsWith('pixels')) return;
  const c = document.createElement('canvas');
  c.width = {width}; c.height = {height};
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, {width}, {height});
  const px = [];
  for (let i = 0; i < 7; i++) {{
    const d = g.getImageData(Math.floor((i + 0.5) * {width} / 7), {y}, 1, 1).data;
    px.push(d[0] + ',' + d[1] + ',' + d[2]);
  }}
  out.textContent = 'pixels ' + px.join(' ');
}});
</script></body></html>
"""


def start_server(encoder=None, launch=None):
    pipeline = Gst.parse_launch(launch or (
        "videotestsrc pattern=smpte100 is-live=true ! "
        f"video/x-raw,width={WIDTH},height={HEIGHT},framerate=10/1 ! "
        f"{encoder} ! souphttpserversink name=sink port=0 path=/stream"))
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        raise RuntimeError("the pipeline does not start")
    pipeline.get_state(Gst.CLOCK_TIME_NONE)
    port = pipeline.get_by_name("sink").get_property("current-port")
    return pipeline, port


def screenshot(chromium, url, workdir):
    page = os.path.join(workdir, "page.html")
    shot = os.path.join(workdir, "shot.png")
    with open(page, "w") as f:
        f.write('<!DOCTYPE html><html><body style="margin:0;background:#000">'
                f'<img src="{url}" width="{WIDTH}" height="{HEIGHT}" '
                'style="display:block"></body></html>')
    if os.path.exists(shot):
        os.unlink(shot)
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1",
         f"--user-data-dir={os.path.join(workdir, 'profile')}",
         f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
         "--virtual-time-budget=3000", "file://" + page],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        check=False)
    if not os.path.exists(shot):
        raise RuntimeError("Chromium wrote no screenshot")
    return read_png(shot)


def hold_server():
    """A server that accepts connections and never answers: an <img> that
    points at it keeps the page loading, so Chromium dumps the DOM at its
    --timeout, after the video has played for a while."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


def video_pixels(chromium, url, workdir):
    listener, hold_port = hold_server()
    page = os.path.join(workdir, "video.html")
    with open(page, "w") as f:
        f.write(VIDEO_PAGE.format(url=url, hold=f"http://127.0.0.1:{hold_port}/",
                                  width=WIDTH, height=HEIGHT, y=HEIGHT // 3))
    try:
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync",
             "--autoplay-policy=no-user-gesture-required",
             f"--user-data-dir={os.path.join(workdir, 'profile-video')}",
             "--dump-dom", "--timeout=8000", "file://" + page],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120,
            check=False, text=True).stdout
    finally:
        listener.close()
    start = dom.find('<div id="out">')
    text = dom[start + 14:dom.find("<", start + 14)] if start >= 0 else ""
    if not text.startswith("pixels "):
        raise RuntimeError(f"the video did not play: {text!r}")
    return [tuple(int(c) for c in p.split(",")) for p in text.split()[1:]]


def check_pixels(pixels, where):
    errors = []
    for (name, expected), got in zip(BARS, pixels):
        if max(abs(g - e) for g, e in zip(got, expected)) > TOLERANCE:
            errors.append(f"{name} bar {where}: got {got}, "
                          f"expected {expected}")
    return errors


def check_bars(width, height, rows):
    y = height // 2
    pixels = [rows[y][int((i + 0.5) * width / len(BARS))]
              for i in range(len(BARS))]
    return check_pixels(pixels, f"at row {y}")


def main():
    chromium = sys.argv[1] if len(sys.argv) > 1 else (
        shutil.which("chromium") or shutil.which("chromium-browser"))
    if not chromium:
        print("SKIP: no Chromium")
        return 77
    Gst.init(None)
    if not Gst.ElementFactory.find("souphttpserversink"):
        print("FAIL: souphttpserversink not found")
        return 1

    failed = False
    with tempfile.TemporaryDirectory(prefix="souphttpserversink-") as workdir:
        for name, encoder in CASES:
            pipeline, port = start_server(encoder)
            try:
                url = f"http://127.0.0.1:{port}/stream"
                width, height, rows = screenshot(chromium, url, workdir)
                errors = check_bars(width, height, rows)
            finally:
                pipeline.set_state(Gst.State.NULL)
            if errors:
                failed = True
                print(f"FAIL {name}: " + "; ".join(errors))
            else:
                print(f"ok {name}: the screenshot shows the seven bars")

        pipeline, port = start_server(launch=WEBM)
        try:
            url = f"http://127.0.0.1:{port}/stream"
            errors = check_pixels(video_pixels(chromium, url, workdir),
                                  "in the <video>")
        except RuntimeError as e:
            errors = [str(e)]
        finally:
            pipeline.set_state(Gst.State.NULL)
        if errors:
            failed = True
            print("FAIL webm: " + "; ".join(errors))
        else:
            print("ok webm: the <video> shows the seven bars")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
