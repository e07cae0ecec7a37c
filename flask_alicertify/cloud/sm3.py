"""SM3 (GB/T 32905-2016), the hash inside SM2 encryption.

``hashlib.new("sm3")`` is used when the Python's OpenSSL offers it (OpenSSL 1.1.1 and later
build it by default; some distributions remove it, and FIPS builds refuse it). Otherwise the
small pure-Python implementation below takes over, so SM2 never silently depends on how
OpenSSL was built. Both are checked against the standard's two examples and against each other
in the tests. SM2 hashes at most a few hundred bytes per Init, so the fallback's speed (about
20 µs per 64-byte block) does not matter.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Protocol

__all__ = ["HAVE_OPENSSL_SM3", "sm3", "sm3_pure"]

_MASK = 0xFFFFFFFF
_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600, 0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)


def _rotl(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & _MASK


_T = tuple(_rotl(0x79CC4519 if j < 16 else 0x7A879D8A, j) for j in range(64))


def _p0(x: int) -> int:
    return x ^ _rotl(x, 9) ^ _rotl(x, 17)


def _p1(x: int) -> int:
    return x ^ _rotl(x, 15) ^ _rotl(x, 23)


def _compress(v: list[int], block: bytes) -> list[int]:
    w = list(struct.unpack(">16I", block))
    for j in range(16, 68):
        w.append(_p1(w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)) ^ _rotl(w[j - 13], 7) ^ w[j - 6])
    w1 = [w[j] ^ w[j + 4] for j in range(64)]
    a, b, c, d, e, f, g, h = v
    for j in range(64):
        a12 = _rotl(a, 12)
        ss1 = _rotl((a12 + e + _T[j]) & _MASK, 7)
        ss2 = ss1 ^ a12
        if j < 16:
            ff = a ^ b ^ c
            gg = e ^ f ^ g
        else:
            ff = (a & b) | (a & c) | (b & c)
            gg = (e & f) | (~e & g)
        tt1 = (ff + d + ss2 + w1[j]) & _MASK
        tt2 = (gg + h + ss1 + w[j]) & _MASK
        d, c, b, a = c, _rotl(b, 9), a, tt1
        h, g, f, e = g, _rotl(f, 19), e, _p0(tt2)
    return [x ^ y for x, y in zip((a, b, c, d, e, f, g, h), v, strict=True)]


def sm3_pure(data: bytes) -> bytes:
    """SM3 digest of ``data`` in pure Python (the fallback; also the tests' second opinion)."""
    length = len(data) * 8
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack(">Q", length)
    v = list(_IV)
    for offset in range(0, len(padded), 64):
        v = _compress(v, padded[offset : offset + 64])
    return struct.pack(">8I", *v)


class _Hash(Protocol):
    def digest(self) -> bytes: ...


def _openssl_sm3_works() -> bool:
    try:
        probe: _Hash = hashlib.new("sm3", b"abc")
    except (ValueError, TypeError):  # unsupported hash type / disabled in FIPS mode
        return False
    return probe.digest() == sm3_pure(b"abc")


#: True when OpenSSL provides SM3 (and agrees with the standard's example).
HAVE_OPENSSL_SM3 = _openssl_sm3_works()


def sm3(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``: OpenSSL's when available, else :func:`sm3_pure`."""
    if HAVE_OPENSSL_SM3:
        return hashlib.new("sm3", data).digest()
    return sm3_pure(data)
