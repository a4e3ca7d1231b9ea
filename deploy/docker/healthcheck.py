#!/usr/bin/env python3
"""Container health check: exit 0 when the service's ``/healthz`` answers 200, else 1.

Usage: ``streamsense-healthcheck [URL]``. Without a URL it asks
``http://127.0.0.1:$STREAMSENSE_METRICS_PORT/healthz`` (every long-running service serves
``/healthz`` and ``/metrics`` there); the gateway's compose service passes its own URL.
Standard library only, so it costs one short-lived interpreter and no imports of the app.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        url = argv[1]
    else:
        port = os.environ.get("STREAMSENSE_METRICS_PORT", "9100")
        url = f"http://127.0.0.1:{port}/healthz"
    if not url.startswith(("http://", "https://")):
        print(f"unhealthy: not an http(s) URL: {url}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:  # noqa: S310 - scheme checked above
            status = resp.status
    except urllib.error.HTTPError as exc:  # 503 from /healthz lands here
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
