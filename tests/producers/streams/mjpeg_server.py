"""An HTTP MJPEG camera for the tests: ``multipart/x-mixed-replace`` JPEG frames, as IP cameras
and ``mjpg-streamer`` serve them.

``python mjpeg_server.py --port 8080 --fps 10`` serves ``http://127.0.0.1:PORT/cam.mjpg`` on
loopback, prints ``ready`` once it listens, and runs until it is killed. Each frame is a real
JPEG (OpenCV) with its number drawn on it.
"""

from __future__ import annotations

import argparse
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "ssframe"


def frame(n: int, width: int, height: int) -> bytes:
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = (40 + n * 7 % 200, 90, 160)
    cv2.putText(img, str(n), (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return buf.tobytes()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    args = ap.parse_args()
    period = 1.0 / args.fps

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/cam.mjpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            n, next_at = 0, time.monotonic()
            try:
                while True:
                    jpeg = frame(n, args.width, args.height)
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
                    self.wfile.flush()
                    n += 1
                    next_at += period
                    time.sleep(max(0.0, next_at - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, *args: object) -> None:
            """Quiet: one line per frame would drown the test's output."""

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
