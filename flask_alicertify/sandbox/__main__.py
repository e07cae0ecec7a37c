"""``python -m flask_alicertify.sandbox``: the shared sandbox server (one fake, many clients).

Serves the fake Alibaba Cloud over HTTP so that every worker, host and CLI process of an app in
sandbox mode (``ALICERTIFY_SANDBOX = "http://HOST:PORT"``) sees the same sessions: both APIs,
the certify page and a control API (see :mod:`.shared`). The first line on stdout is
``sandbox listening on http://HOST:PORT`` (flushed), the second ``control token: …``; ``--port 0``
picks a free port. SIGINT and SIGTERM stop it cleanly (exit status 0). It never logs requests:
their query strings may carry ID numbers.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from . import server
from .fake import FakeCloud
from .limits import ALIBABA_QPS
from .plugin import SANDBOX_ACCESS_KEY_ID
from .plugin import SANDBOX_ACCESS_KEY_SECRET
from .shared import SharedSandbox

CONTROL_TOKEN_VARIABLE = "ALICERTIFY_SANDBOX_CONTROL_TOKEN"


def _qps(values: Sequence[str]) -> dict[str, float] | None:
    limits: dict[str, float] = {}
    for value in values:
        if value == "alibaba":
            limits.update(ALIBABA_QPS)
            continue
        action, sep, number = value.partition("=")
        try:
            limit = float(number)
        except ValueError:
            limit = -1.0
        if not sep or not action or limit <= 0:
            raise argparse.ArgumentTypeError(f"--qps takes ACTION=N or 'alibaba', got {value!r}")
        limits[action] = limit
    return limits or None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flask_alicertify.sandbox",
        description="The shared sandbox server: a fake Alibaba Cloud for every process of a sandbox app.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8900, help="port to bind; 0 picks a free one (default 8900)")
    p.add_argument(
        "--public-url",
        help="the URL clients reach this server at, for certifyUrl (default http://HOST:PORT)",
    )
    p.add_argument(
        "--control-token",
        default=os.environ.get(CONTROL_TOKEN_VARIABLE),
        help=f"bearer token of the /_sandbox/ control API (default ${CONTROL_TOKEN_VARIABLE}, else random)",
    )
    p.add_argument(
        "--qps",
        action="append",
        default=[],
        metavar="ACTION=N",
        help="answer Throttling beyond N calls of ACTION a second (repeatable; 'alibaba': Alibaba's limits)",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds every API call takes (default 0)")
    p.add_argument("--language", choices=("zh", "en"), default="zh", help="language of error messages")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        qps = _qps(args.qps)
    except argparse.ArgumentTypeError as e:
        parser().error(str(e))
    if args.latency < 0:
        parser().error("--latency must be >= 0")
    token = args.control_token or secrets.token_urlsafe(24)
    cloud = FakeCloud(
        SANDBOX_ACCESS_KEY_ID,
        SANDBOX_ACCESS_KEY_SECRET,
        https_callbacks_only=False,
        qps=qps,
        latency=args.latency,
    )
    router = SharedSandbox(cloud, control_token=token, language=args.language)
    try:
        running = server.Running(router, args.host, args.port)
    except OSError as e:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    public = (args.public_url or running.url).rstrip("/")
    cloud.certify_url = public + "/sandbox/certify/{certify_id}"
    running.begin()

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"sandbox listening on {running.url}", flush=True)
    print(f"control token: {token}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
    print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
