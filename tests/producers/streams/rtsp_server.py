"""A real RTSP camera for the tests: Debian's gst-rtsp-server through python3-gi.

Run with the system Python (``/usr/bin/python3``, where ``gi`` lives), not the project's venv:
``/usr/bin/python3 rtsp_server.py --port 8554 --fps 10``. It serves ``rtsp://127.0.0.1:PORT/cam``
(``videotestsrc`` -> I420 -> ``jpegenc`` -> ``rtpjpegpay``: RFC 2435 JPEG over RTP, which FFmpeg
reads) on loopback only, prints ``ready`` once it listens, and runs until it is killed.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--mount", default="/cam")
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    # is-live: frames come at the stated rate, like a camera; I420 is what jpegenc needs here
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},"
        f"height={args.height},framerate={args.fps}/1,format=I420 ! jpegenc quality=80 ! "
        "rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)  # one pipeline for every client, as a camera has
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
