"""Benchmark camera: GStreamer's RTSP server on 127.0.0.1, run by the system Python.

    /usr/bin/python3 bench/camera.py --port 8554 [--path /cam …] [--clock] [--gop 50]

One shared encoder per path for every client, like a camera. The query string is ignored
when choosing the media, so rtsp://127.0.0.1:8554/cam?n=17 shares /cam's one encoder (many
"cameras" from one source). With `--clock` the frames come from an appsrc that writes the
capture time (ms since epoch, low 32 bits) into the top of each picture: 32 blocks of 32×32
pixels, white for 1, and below them the inverted bits as a check. Prints
`READY rtsp://127.0.0.1:PORT/PATH` per path and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

import gi  # type: ignore[import-not-found, unused-ignore]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found, unused-ignore]  # noqa: E402

BLOCK = 32
BITS = 32
LOW, HIGH = 16, 235  # limited-range luma for black and white


def encoder(args: argparse.Namespace) -> str:
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
        f"bitrate={args.bitrate} threads=1 ! video/x-h264,profile=constrained-baseline ! "
        "rtph264pay name=pay0 pt=96 config-interval=-1"
    )


def launch_line(args: argparse.Namespace) -> str:
    width, height = args.size.split("x")
    caps = f"video/x-raw,width={width},height={height},framerate={args.fps}/1"
    if args.clock:
        return (
            f"( appsrc name=clocksrc is-live=true format=time do-timestamp=true "
            f"caps={caps},format=I420 ! queue max-size-buffers=2 leaky=downstream ! "
            f"{encoder(args)} )"
        )
    return (
        f"( videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! {caps} ! "
        f"timeoverlay ! {encoder(args)} )"
    )


class ClockFrames:
    """Feeds an appsrc with I420 frames stamped with their capture time, at `fps`."""

    def __init__(self, appsrc: Any, width: int, height: int, fps: int) -> None:
        self.appsrc, self.width, self.height, self.fps = appsrc, width, height, fps
        self.running = True
        luma = bytearray([LOW + 40]) * (width * height)
        self.frame = luma + bytearray([128]) * (width * height // 2)
        threading.Thread(target=self._run, daemon=True).start()

    def _stamp(self, ms: int, n: int) -> bytes:
        w, frame = self.width, self.frame
        row = bytearray()
        inverted = bytearray()
        for i in range(BITS):
            bit = (ms >> (BITS - 1 - i)) & 1
            row += bytes([HIGH if bit else LOW]) * BLOCK
            inverted += bytes([LOW if bit else HIGH]) * BLOCK
        for y in range(BLOCK):
            frame[y * w : y * w + len(row)] = row
            frame[(y + BLOCK) * w : (y + BLOCK) * w + len(row)] = inverted
        # a moving box below, so that pictures differ as a camera's do
        top, size = 3 * BLOCK, 64
        x_old = ((n - 1) * 8) % (w - size)
        x_new = (n * 8) % (w - size)
        for y in range(top, top + size):
            frame[y * w + x_old : y * w + x_old + size] = bytes([LOW + 40]) * size
            frame[y * w + x_new : y * w + x_new + size] = bytes([HIGH]) * size
        return bytes(frame)

    def _run(self) -> None:
        start = time.monotonic()
        n = 0
        while self.running:
            n += 1
            delay = start + n / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = self._stamp(int(time.time() * 1000) & 0xFFFFFFFF, n)
            if self.appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(data)) != Gst.FlowReturn.OK:
                self.running = False


class SharedFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc, unused-ignore]
    """A shared media per path, whatever the query string (default keys include it)."""

    def do_gen_key(self, url: Any) -> str:
        return str(url.abspath)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", action="append", help="mount path (repeatable), default /cam")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=int, default=50)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s")
    parser.add_argument("--clock", action="store_true", help="stamp the capture time in frames")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.set_backlog(512)
    mounts = server.get_mount_points()
    paths = args.path or ["/cam"]
    width, height = (int(v) for v in args.size.split("x"))
    feeders: list[ClockFrames] = []

    def configure(_factory: Any, media: Any) -> None:
        appsrc = media.get_element().get_by_name("clocksrc")
        if appsrc is not None:
            feeders.append(ClockFrames(appsrc, width, height, args.fps))

    for path in paths:
        factory = SharedFactory()
        factory.set_launch(launch_line(args))
        factory.set_shared(True)
        factory.connect("media-configure", configure)
        mounts.add_factory(path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    for path in paths:
        print(f"READY rtsp://127.0.0.1:{args.port}{path}", flush=True)
    loop.run()
    for feeder in feeders:
        feeder.running = False
    sys.exit(0)


if __name__ == "__main__":
    main()
