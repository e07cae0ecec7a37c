"""One total deadline per attempt, and answers read with a size cap.

Why httpx's timeouts are not enough: they bound each *operation* (one connect, one socket read),
not the request. An upstream that drips a byte every 1.9 s never trips a 2 s read timeout and can
hold a worker for as long as it likes, in the status line and headers as well as in the body.
And ``response.content`` buffers whatever arrives: a 200 MB answer costs 200 MB (twice that once
decoded), and a small gzip bomb far more.

So, per attempt:

* :func:`attempt_deadline` sets a monotonic deadline in a context variable, and the network backend
  that :func:`arm` installs under httpx gives every connect, TLS handshake, read and write of the
  thread that set it ``min(its own timeout, time left)``; past the deadline it raises httpcore's
  own timeout, which httpx turns into :class:`httpx.TimeoutException` as usual. The deadline
  therefore holds in the headers phase too, where our code has no say until httpx returns;
* :func:`read_capped` streams the body (``client.send(..., stream=True)``), decodes gzip/deflate
  itself with a bounded ``max_length``, and stops at the cap, closing the connection rather than
  draining it. It also checks the deadline between chunks, which is all the protection an
  in-process transport (the fake cloud's, tests') needs.

:func:`arm` reaches one level into httpx's and httpcore's internals (``HTTPTransport._pool`` and
``ConnectionPool._network_backend``), because neither library exposes a per-request deadline or
lets ``httpx.Client`` take a network backend; building the client the ordinary way keeps every
default (environment proxies, pytest-httpx interception). If those attributes ever move,
:func:`arm` returns False and the between-chunks check still applies; a test measures the
socket-level deadline against a dripping loopback server so a change cannot go unnoticed.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
import zlib
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx

__all__ = ["MAX_ANSWER_BYTES", "AnswerTooLarge", "BadEncoding", "arm", "attempt_deadline", "read_capped"]

#: Alibaba's answers are a few KiB; anything past this is not an answer we can use.
MAX_ANSWER_BYTES = 1024 * 1024

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("alicertify_deadline", default=None)


class AnswerTooLarge(Exception):
    """The answer (raw or decoded) exceeded the cap."""


class BadEncoding(Exception):
    """The body claims an encoding it does not have (garbled gzip), or one we did not ask for."""


@contextlib.contextmanager
def attempt_deadline(seconds: float) -> Iterator[float]:
    """Every network operation of this thread in the block ends by ``now + seconds``."""
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, exc: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise exc("the attempt's total deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def arm(client: httpx.Client) -> bool:
    """Install the deadline backend under every httpx transport of ``client`` (see the module doc).

    Returns False when the client's transports are not httpx's own (a custom transport, or a
    future httpx that moved the attributes), leaving them as they are.
    """
    transports: list[Any] = [getattr(client, "_transport", None)]
    transports += list(getattr(client, "_mounts", {}).values())
    armed = False
    for transport in transports:
        pool = getattr(transport, "_pool", None) if isinstance(transport, httpx.HTTPTransport) else None
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            if not isinstance(backend, _DeadlineBackend):
                pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            armed = True
    return armed


def _decoder(content_encoding: str) -> Any:
    """A zlib decompressor for the body's encoding, or None for identity."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    # We send no Accept-Encoding: anything else (br, zstd, "gzip, gzip") is not an answer to us.
    raise BadEncoding(f"unexpected content-encoding {encoding[:40]!r}")


def read_capped(response: httpx.Response, cap: int = MAX_ANSWER_BYTES) -> bytes:
    """The decoded body of a streamed ``response``, never holding more than ``cap`` (+ one chunk).

    Raises :class:`AnswerTooLarge`, :class:`BadEncoding`, or httpx's own errors (timeouts, a
    connection closed mid-body). The caller closes the response.
    """
    length = response.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > cap:
        raise AnswerTooLarge(f"Content-Length {int(length)} exceeds {cap} bytes")
    decoder = _decoder(response.headers.get("content-encoding", ""))
    if response.is_stream_consumed:  # an in-process transport that read it already
        chunks: Iterable[bytes] = [response.content]
    else:
        chunks = response.iter_raw()
    out = bytearray()
    raw_total = 0
    for chunk in chunks:
        raw_total += len(chunk)
        if raw_total > cap and decoder is None:
            raise AnswerTooLarge(f"answer exceeds {cap} bytes")
        if decoder is None:
            out += chunk
        else:
            _inflate(decoder, chunk, out, cap)
        _bounded(None, httpx.ReadTimeout)  # in-process transports have no socket to bound
    if decoder is not None:
        try:
            out += decoder.flush()
        except zlib.error:
            raise BadEncoding("garbled compressed body") from None
        if not decoder.eof:
            raise BadEncoding("truncated compressed body")
        if decoder.unused_data:
            raise BadEncoding("data after the end of the compressed body")
        if len(out) > cap:
            raise AnswerTooLarge(f"decoded answer exceeds {cap} bytes")
    return bytes(out)


def _inflate(decoder: Any, chunk: bytes, out: bytearray, cap: int) -> None:
    data = chunk
    while data:
        if decoder.eof:
            raise BadEncoding("data after the end of the compressed body")
        try:
            piece = decoder.decompress(data, cap + 1 - len(out))
        except zlib.error:
            raise BadEncoding("garbled compressed body") from None
        out += piece
        if len(out) > cap:
            raise AnswerTooLarge(f"decoded answer exceeds {cap} bytes")
        data = decoder.unconsumed_tail
