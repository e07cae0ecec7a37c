"""SM2 public-key encryption (GB/T 32918.4-2016) of CertName and CertNo, in the layout Alibaba accepts.

With ``EncryptType=SM2`` Alibaba wants each of CertName and CertNo replaced by::

    Base64( 0x04 ‖ x1 ‖ y1 ‖ C2 ‖ C3 )

* ``(x1, y1) = [k]G``: the ephemeral point, 32 bytes each, big-endian, behind the 0x04 octet of an
  uncompressed point (the layout BouncyCastle's ``SM2Engine`` writes in its default C1C2C3 mode);
* ``C2 = M xor KDF(x2 ‖ y2, len(M))`` where ``(x2, y2) = [k]P`` for Alibaba's public key P and
  ``M`` is the UTF-8 text; KDF is the standard's SM3 counter KDF;
* ``C3 = SM3(x2 ‖ M ‖ y2)``, 32 bytes, *after* C2: the order of GB/T 32918.4 (C1C2C3), not the
  C1C3C2 of GM/T 0009 that ``gmalg`` writes by default (and ``gmssl``'s ``CryptSM2`` with
  ``mode=1``; its default ``mode=0`` is C1C2C3 but leaves out the 0x04 octet);
* standard Base64 with padding.

The key is Alibaba's documented one ("参数加密说明",
https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/description-of-parameter-encryption)
unless configured. ``k`` comes from :func:`secrets.randbelow` (the OS CSPRNG), in ``[1, n-1]``.

Why our own code: of the maintained libraries, ``gmssl`` draws ``k`` with ``random.choice`` (a
Mersenne Twister, predictable from its outputs, so ciphertexts could be decrypted by whoever
predicts it); ``gmalg`` (``secrets.randbits``, correct) takes 52 ms per encryption in pure Python,
i.e. ~100 ms of GIL-held CPU per Init; ``snowland-smx`` 6 ms, with no point decompression and a
``None`` result on the (negligible) all-zero KDF case. Both our scalar multiplications have a
fixed base (G, and the one configured public key), so a precomputed 4-bit comb per base makes one
encryption cost well under 2 ms, and the module needs nothing beyond the standard library. The
known-answer test is the standard's own example (GB/T 32918.4 Appendix A, with its fixed ``k``).

Limits, stated plainly: Python integers are not constant-time, so a process that shares a CPU
with an attacker able to time it finely leaks information about ``k``; the clear values and ``k``
cannot be wiped from memory in Python. Both are the usual limits of pure-Python cryptography and
weaker than what the transport (TLS) already faces.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets
from dataclasses import dataclass
from dataclasses import field

from .sm3 import sm3

__all__ = [
    "SM2P256V1",
    "Curve",
    "PublicKey",
    "SM2Error",
    "decrypt",
    "decrypt_bytes",
    "encrypt",
    "encrypt_bytes",
    "generate_keypair",
    "public_key",
]

Affine = tuple[int, int]
Jacobian = tuple[int, int, int]
_INF: Jacobian = (1, 1, 0)


class SM2Error(ValueError):
    """A key or ciphertext that is not valid SM2. Messages never contain key or plaintext bytes."""


@dataclass(frozen=True)
class Curve:
    """A short Weierstrass curve ``y² = x³ + ax + b`` over GF(p) with a base point of prime order n."""

    name: str
    p: int
    a: int
    b: int
    n: int
    gx: int
    gy: int
    size: int = field(default=32)

    def on_curve(self, point: Affine) -> bool:
        x, y = point
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + self.a * x + self.b)) % p == 0


#: The SM2 recommended curve (GB/T 32918.5-2017), the one Alibaba's key lives on.
SM2P256V1 = Curve(
    name="sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)


# -- curve arithmetic (Jacobian coordinates) ------------------------------------------------------


def _double(c: Curve, pt: Jacobian) -> Jacobian:
    x, y, z = pt
    p = c.p
    if z == 0 or y == 0:
        return _INF
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    m = (3 * x * x + c.a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    return x3, y3, 2 * y * z % p


def _add_affine(c: Curve, pt: Jacobian, q: Affine) -> Jacobian:
    """``pt + q`` for a Jacobian ``pt`` and an affine ``q`` (never the point at infinity)."""
    x1, y1, z1 = pt
    if z1 == 0:
        return q[0], q[1], 1
    p = c.p
    z1z1 = z1 * z1 % p
    h = (q[0] * z1z1 - x1) % p
    r = (q[1] * z1 * z1z1 - y1) % p
    if h == 0:
        return _double(c, pt) if r == 0 else _INF
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    return x3, y3, z1 * h % p


def _affine(c: Curve, pt: Jacobian) -> Affine | None:
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, c.p)
    zi2 = zi * zi % c.p
    return x * zi2 % c.p, y * zi2 * zi % c.p


def _multiply(c: Curve, k: int, q: Affine) -> Affine | None:
    """``[k]q`` by double-and-add: for the one variable base, the ciphertext's C1 (decryption)."""
    acc = _INF
    for bit in bin(k)[2:]:
        acc = _double(c, acc)
        if bit == "1":
            acc = _add_affine(c, acc, q)
    return _affine(c, acc)


class _Comb:
    """``[k]Q`` for one fixed ``Q``: a table of ``j·16^i·Q`` (64 rows of 15 affine points).

    Building it costs ~10 ms once per base; a multiplication is then at most 64 additions and no
    doubling (~0.5 ms), against ~256 doublings and ~128 additions for double-and-add.
    """

    def __init__(self, curve: Curve, q: Affine) -> None:
        self.curve = curve
        self.rows: list[list[Affine]] = []
        base: Affine | None = q
        for _ in range((curve.n.bit_length() + 3) // 4):
            assert base is not None
            row = [base]
            acc: Jacobian = (base[0], base[1], 1)
            for _j in range(14):
                acc = _add_affine(curve, acc, base)
                point = _affine(curve, acc)
                assert point is not None  # j·16^i < n: never the point at infinity
                row.append(point)
            self.rows.append(row)
            acc = (base[0], base[1], 1)
            for _d in range(4):
                acc = _double(curve, acc)
            base = _affine(curve, acc)

    def multiply(self, k: int) -> Affine | None:
        acc = _INF
        curve = self.curve
        for row in self.rows:
            nibble = k & 15
            if nibble:
                acc = _add_affine(curve, acc, row[nibble - 1])
            k >>= 4
        return _affine(curve, acc)


@functools.lru_cache(maxsize=8)
def _generator_comb(curve: Curve) -> _Comb:
    return _Comb(curve, (curve.gx, curve.gy))


# -- keys -----------------------------------------------------------------------------------------


class PublicKey:
    """A validated SM2 public key; its comb table is built on first use and kept."""

    def __init__(self, point: Affine, curve: Curve = SM2P256V1) -> None:
        if not curve.on_curve(point):
            raise SM2Error(f"the public key is not a point on {curve.name}")
        self.point = point
        self.curve = curve

    @functools.cached_property
    def _comb(self) -> _Comb:
        return _Comb(self.curve, self.point)

    @classmethod
    def from_hex(cls, text: str, curve: Curve = SM2P256V1) -> PublicKey:
        """``02``/``03`` ‖ x (compressed), ``04`` ‖ x ‖ y (uncompressed), or x ‖ y (as gmssl prints it)."""
        size = curve.size
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise SM2Error("the public key is not hexadecimal") from None
        if len(raw) == 2 * size:
            raw = b"\x04" + raw
        if len(raw) == 1 + size and raw[0] in (2, 3):
            x = int.from_bytes(raw[1:], "big")
            return cls((x, _decompress_y(curve, x, raw[0] & 1)), curve)
        if len(raw) == 1 + 2 * size and raw[0] == 4:
            return cls(
                (int.from_bytes(raw[1 : 1 + size], "big"), int.from_bytes(raw[1 + size :], "big")), curve
            )
        raise SM2Error(
            f"the public key must be {2 + 2 * size} (compressed) or {2 + 4 * size} (uncompressed) hex digits"
        )

    def hex(self, *, compressed: bool = True) -> str:
        x, y = self.point
        size = self.curve.size
        if compressed:
            return (bytes([2 | (y & 1)]) + x.to_bytes(size, "big")).hex()
        return (b"\x04" + x.to_bytes(size, "big") + y.to_bytes(size, "big")).hex()

    def __repr__(self) -> str:
        return f"PublicKey({self.hex()!r}, curve={self.curve.name})"


def _decompress_y(curve: Curve, x: int, parity: int) -> int:
    p = curve.p
    if not 0 <= x < p or p % 4 != 3:
        raise SM2Error("the compressed public key cannot be decompressed on this curve")
    rhs = (x * x * x + curve.a * x + curve.b) % p
    y = pow(rhs, (p + 1) // 4, p)
    if y * y % p != rhs:
        raise SM2Error(f"the public key is not a point on {curve.name}")
    return y if y & 1 == parity else p - y


@functools.lru_cache(maxsize=16)
def public_key(text: str) -> PublicKey:
    """The parsed key for ``text`` on sm2p256v1, cached so its table is built once per process."""
    return PublicKey.from_hex(text)


def generate_keypair(curve: Curve = SM2P256V1) -> tuple[str, str]:
    """A fresh ``(private_key_hex, compressed_public_key_hex)``; d is drawn from ``[1, n-2]``."""
    d = secrets.randbelow(curve.n - 2) + 1
    point = _generator_comb(curve).multiply(d)
    assert point is not None
    return d.to_bytes(curve.size, "big").hex(), PublicKey(point, curve).hex()


# -- encryption -----------------------------------------------------------------------------------


def _kdf(z: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


def _xor(data: bytes, pad: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")


def _encrypt_with(key: PublicKey, message: bytes, k: int) -> bytes | None:
    """The C1C2C3 ciphertext for this ``k``, or None when the KDF output is all zeros."""
    curve, size = key.curve, key.curve.size
    c1 = _generator_comb(curve).multiply(k)
    shared = key._comb.multiply(k)
    if c1 is None or shared is None:  # impossible for k in [1, n-1] and a valid key (h = 1)
        return None
    x2, y2 = (v.to_bytes(size, "big") for v in shared)
    pad = _kdf(x2 + y2, len(message))
    if not any(pad):
        return None
    c3 = sm3(x2 + message + y2)
    return b"\x04" + c1[0].to_bytes(size, "big") + c1[1].to_bytes(size, "big") + _xor(message, pad) + c3


def encrypt_bytes(key: PublicKey, message: bytes) -> bytes:
    """``0x04 ‖ C1 ‖ C2 ‖ C3`` for ``message`` under ``key``, with a fresh CSPRNG ``k``."""
    if not message:
        raise SM2Error("SM2 cannot encrypt an empty message")
    while True:
        k = secrets.randbelow(key.curve.n - 1) + 1
        cipher = _encrypt_with(key, message, k)
        if cipher is not None:
            return cipher


def encrypt(public_key_hex: str, plaintext: str) -> str:
    """The Base64 ciphertext Alibaba accepts for ``plaintext`` (UTF-8) under ``public_key_hex``."""
    return base64.b64encode(encrypt_bytes(public_key(public_key_hex), plaintext.encode("utf-8"))).decode(
        "ascii"
    )


def decrypt_bytes(private_key: int, cipher: bytes, curve: Curve = SM2P256V1) -> bytes:
    """The message inside a ``0x04 ‖ C1 ‖ C2 ‖ C3`` ciphertext; SM2Error for any other layout."""
    size = curve.size
    if not 1 <= private_key < curve.n - 1:
        raise SM2Error("the private key is out of range")
    if len(cipher) < 1 + 2 * size + 1 + 32 or cipher[0] != 4:
        raise SM2Error("not an SM2 ciphertext in the 0x04 ‖ C1 ‖ C2 ‖ C3 layout")
    c1 = (int.from_bytes(cipher[1 : 1 + size], "big"), int.from_bytes(cipher[1 + size : 1 + 2 * size], "big"))
    if not curve.on_curve(c1):
        raise SM2Error("the ciphertext's C1 is not a point on the curve")
    shared = _multiply(curve, private_key, c1)
    if shared is None:
        raise SM2Error("the ciphertext's C1 is not usable")
    x2, y2 = (v.to_bytes(size, "big") for v in shared)
    c2, c3 = cipher[1 + 2 * size : -32], cipher[-32:]
    pad = _kdf(x2 + y2, len(c2))
    if not any(pad):
        raise SM2Error("the ciphertext is not usable (all-zero key stream)")
    message = _xor(c2, pad)
    if not hmac.compare_digest(sm3(x2 + message + y2), c3):
        raise SM2Error("the ciphertext's C3 does not match: wrong key, or not the C1C2C3 layout")
    return message


def decrypt(private_key_hex: str, ciphertext_b64: str) -> str:
    """The clear text of an :func:`encrypt` result (for the fake cloud and tests)."""
    try:
        d = int(private_key_hex.strip(), 16)
    except ValueError:
        raise SM2Error("the private key is not hexadecimal") from None
    try:
        cipher = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SM2Error("the ciphertext is not standard Base64") from None
    try:
        return decrypt_bytes(d, cipher).decode("utf-8")
    except UnicodeDecodeError:
        raise SM2Error("the decrypted message is not UTF-8") from None
