"""Real HTTP for the fake cloud: a WSGI adapter and a loopback HTTP/1.1 server.

The server is stdlib ``http.server`` rather than ``wsgiref`` because wsgiref speaks HTTP/1.0
only, and callers must be able to prove they reuse one connection (``connections_opened``).
It never logs: request lines carry CertNo/CertName in the query string.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from typing import Protocol

import httpx

from . import protocol

#: Headers a server owns; never copied from an httpx.Response onto the wire.
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


class ServedCloud(Protocol):
    """What the server needs from the cloud it serves (``FakeCloud`` is one).

    ``handle`` answers a request or raises ``httpx.ReadTimeout`` / ``httpx.ConnectError`` for an
    injected fault; ``timeout_seconds`` is how long a timeout stalls over real HTTP;
    ``connection_accepted`` is told about every TCP connection the server accepts.
    """

    timeout_seconds: float

    def handle(self, request: httpx.Request) -> httpx.Response: ...

    def connection_accepted(self) -> None: ...


def _timeout_response(request: httpx.Request) -> httpx.Response:
    """What a gateway answers when the service behind it stalls past its own deadline."""
    return protocol.gateway_error(
        504, "GatewayTimeout", "The request timed out (injected fault).", "", request.headers.get("host", "")
    )


# ---------------------------------------------------------------------------------------------
# WSGI


def request_from_environ(environ: dict[str, Any]) -> httpx.Request:
    """Rebuild the client's request (method, full URL with Host, headers, body) from a WSGI environ."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = path.encode("latin-1").decode("utf-8", "replace") or "/"
    query = environ.get("QUERY_STRING", "")
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower(), value))
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return httpx.Request(environ.get("REQUEST_METHOD", "GET"), url, headers=headers, content=body)


def wsgi_app(
    cloud: ServedCloud, environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Answer one WSGI request from ``cloud``.

    Injected timeouts stall ``timeout_seconds`` and answer 504; a WSGI app cannot drop its
    connection, so injected connect errors and downed endpoints answer 502 with an empty body.
    """
    request = request_from_environ(environ)
    try:
        response = cloud.handle(request)
    except httpx.ReadTimeout:
        time.sleep(cloud.timeout_seconds)
        response = _timeout_response(request)
    except httpx.ConnectError:
        response = httpx.Response(502, content=b"")
    body = response.read()
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
    headers.append(("Content-Length", str(len(body))))
    start_response(f"{response.status_code} {response.reason_phrase}", headers)
    return [body]


# ---------------------------------------------------------------------------------------------
# Loopback server


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # joined in server_close(), after their sockets were shut down
    block_on_close = True

    def __init__(self, address: tuple[str, int], cloud: ServedCloud) -> None:
        self.cloud = cloud
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() does a reverse DNS lookup (getfqdn); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        self.cloud.connection_accepted()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handler threads idling on keep-alive connections so they can be joined."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, every keep-alive answer would wait
    # for the client's delayed ACK (~40 ms on Linux loopback).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: the request line holds personal data (CertNo, CertName) in its query."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        target = self.path if self.path.startswith("/") else "/" + self.path
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
        if "Content-Length" not in self.headers and body:
            headers.append(("Content-Length", str(len(body))))
        request = httpx.Request(self.command, f"http://{host}{target}", headers=headers, content=body)
        try:
            response = self.server.cloud.handle(request)
        except httpx.ConnectError:
            # Simplest faithful stand-in for an unreachable host: drop the socket unanswered.
            self.close_connection = True
            return
        except httpx.ReadTimeout:
            if self.server.stopping.wait(self.server.cloud.timeout_seconds):
                self.close_connection = True
                return
            response = _timeout_response(request)
        self._write(response)

    def _write(self, response: httpx.Response) -> None:
        content = response.read()
        try:
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. its read timeout fired first)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


class Running:
    """A bound server: its URL, :meth:`begin` to accept requests, :meth:`stop` to end.

    Binding and serving are two steps so that a caller can learn the port (``--port 0``) and
    finish its set-up before the first request is answered.
    """

    def __init__(self, cloud: ServedCloud, host: str, port: int) -> None:
        server_class = _Server6 if ":" in host else _Server
        self.server = server_class((host, port), cloud)
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-alibaba-cloud",
            daemon=True,
        )

    def begin(self) -> Running:
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting, wake idle keep-alive handlers, close the socket, join the threads."""
        self.server.stopping.set()
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.drop_connections()
        self.server.server_close()
        if self._thread.ident is not None:
            self._thread.join()


class _Server6(_Server):
    address_family = socket.AF_INET6


def start(cloud: ServedCloud, host: str = "127.0.0.1", port: int = 0) -> Running:
    """Serve ``cloud`` on ``host:port`` (0: a free port) in background threads until ``stop()``."""
    return Running(cloud, host, port).begin()


@contextmanager
def serve(cloud: ServedCloud, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the fake on ``http://127.0.0.1:PORT`` in background threads until the block exits."""
    if host != "127.0.0.1":
        raise ValueError("the fake cloud binds to 127.0.0.1 only")
    running = start(cloud, host, port)
    try:
        yield running.url
    finally:
        running.stop()
