"""A misbehaving upstream on a real loopback socket (not a MockTransport).

Faults that matter happen below httpx's API: a server that drips bytes slower than the read
timeout but never stops, a gzip header over garbage, a body of hundreds of megabytes. Only a real
socket shows whether the client's deadline and size cap hold, so each test starts one of these.

Every connection is handled on its own thread with a hard stop (``max_seconds``), and the server
answers one request per connection (``Connection: close``), so a test always ends by itself.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

Behaviour = Callable[["Conn"], None]


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


@dataclass
class Conn:
    sock: socket.socket
    request: Received
    stop_at: float
    sent: int = field(default=0)

    def send(self, data: bytes) -> bool:
        """Send ``data``; False once the client has gone (or the hard stop passed)."""
        if time.monotonic() > self.stop_at:
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def head(self, status: int = 200, headers: dict[str, str] | None = None) -> bool:
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append("Connection: close")
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def drip(self, data: bytes, every: float) -> None:
        """One byte of ``data`` every ``every`` seconds, repeating it until the client leaves."""
        while True:
            for i in range(len(data)):
                if not self.send(data[i : i + 1]):
                    return
                time.sleep(every)


def answer(
    body: bytes | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Behaviour:
    """A complete answer with Content-Length."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body

    def run(conn: Conn) -> None:
        conn.head(
            status, {"Content-Type": "application/json", "Content-Length": str(len(raw)), **(headers or {})}
        )
        conn.send(raw)

    return run


def drip_headers(every: float) -> Behaviour:
    """The status line and headers one byte at a time, forever."""
    return lambda conn: conn.drip(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 10_000, every)


def drip_body(every: float) -> Behaviour:
    def run(conn: Conn) -> None:
        conn.head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        conn.drip(b'{"Code": "200", "Pad": "' + b"x" * 50_000, every)

    return run


def huge(total: int, *, chunked: bool = True) -> Behaviour:
    """A JSON-looking body of ``total`` bytes, generated as it is sent (never held in memory)."""
    block = b" " * 65536

    def run(conn: Conn) -> None:
        headers = {"Content-Type": "application/json"}
        headers.update({"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)})
        if not conn.head(200, headers):
            return
        conn.send(b"5\r\n[1,2 \r\n" if chunked else b"[1,2 ")
        left = total - 5
        while left > 0:
            piece = block[: min(left, len(block))]
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            if not conn.send(data):
                return
            left -= len(piece)

    return run


def gzip_bomb(decoded: int) -> Behaviour:
    """A small gzip body that inflates to ``decoded`` bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b" " * 1_000_000) for _ in range(decoded // 1_000_000)]
    body = b"".join(parts) + compressor.flush()
    return answer(body, headers={"Content-Encoding": "gzip"})


def garbled_gzip() -> Behaviour:
    good = gzip.compress(json.dumps({"Code": "200", "RequestId": "R"}).encode())
    return answer(good[:10] + b"\xde\xad\xbe\xef" * 16, headers={"Content-Encoding": "gzip"})


def cut_mid_body() -> Behaviour:
    def run(conn: Conn) -> None:
        conn.head(200, {"Content-Type": "application/json", "Content-Length": "5000"})
        conn.send(b'{"Code": "200", ')

    return run


class Upstream:
    """``with Upstream(behaviour) as base_url:`` — every request gets ``behaviour``."""

    def __init__(self, behaviour: Behaviour, *, max_seconds: float = 30.0) -> None:
        self.behaviour = behaviour
        self.max_seconds = max_seconds
        self.received: list[Received] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self.port: int = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        accept = threading.Thread(target=self._accept, name="upstream-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(sock,), name="upstream-conn", daemon=True)
            worker.start()
            self._threads.append(worker)

    def _serve(self, sock: socket.socket) -> None:
        stop_at = time.monotonic() + self.max_seconds
        with sock:
            sock.settimeout(5)
            try:
                request = _read_request(sock)
            except (OSError, ValueError):
                return
            self.received.append(request)
            sock.settimeout(2)
            self.behaviour(Conn(sock, request, stop_at))


def _read_request(sock: socket.socket) -> Received:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("client closed before the headers ended")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Received(method, target, headers, body)


def serving(behaviour: Behaviour, **kw: Any) -> Iterator[Upstream]:
    """A generator for fixtures: the started server."""
    upstream = Upstream(behaviour, **kw)
    upstream.__enter__()
    try:
        yield upstream
    finally:
        upstream.__exit__()
