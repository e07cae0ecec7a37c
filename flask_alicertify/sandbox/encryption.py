"""SM2 on the fake's side: its test key pair, and reading an encrypted ``CertName``/``CertNo``.

With ``EncryptType=SM2`` (cloudauth) or ``"encryptType": "SM2"`` (SAF ``ServiceParameters``),
Alibaba expects both values as Base64 of ``0x04 ‖ C1(x‖y) ‖ C2 ‖ C3`` made with its public key,
and answers anything it cannot decrypt with Code 501 系统错误 and nothing more. The fake does
the same with its own key pair: it decrypts with :func:`flask_alicertify.cloud.sm2.decrypt`
(the project's one SM2 implementation), then checks the plaintext like a clear value, so an
app's tests prove that its ciphertext is what Alibaba would accept.

The sandbox's key pair is fixed and public, like its access key: it protects nothing, it only
lets a test (or an app in sandbox mode) encrypt to a key the fake can decrypt with.
"""

from __future__ import annotations

from .api_common import Refusal

#: The sandbox's SM2 private key (hex scalar on sm2p256v1). Public on purpose: a test key.
SANDBOX_SM2_PRIVATE_KEY = "bf793baaab16879a62d789881a1ba5f98ce612307ddeefdfa0bdeb26f68f32f0"
#: Its public key, uncompressed (``04 ‖ x ‖ y``), what ``ALICERTIFY_SM2_PUBLIC_KEY`` takes.
SANDBOX_SM2_PUBLIC_KEY = (
    "0453503f8e28e3d7498a19a15563c02fb886f821c81ecd2c4d0f14d9a1a669c459"
    "e45525dde741fb81d55385097b9941ba47fea95ad8900a3ff71f3fd878305c65"
)

#: Why a ciphertext was refused (the call's ``detail``; Alibaba itself says only 系统错误).
NOT_DECRYPTABLE = (
    "{field} is not SM2 ciphertext for this key: Base64 of 0x04 || C1(x||y) || C2 || C3 is expected"
)


def is_sm2(encrypt_type: str | None) -> bool:
    return encrypt_type is not None and encrypt_type.upper() == "SM2"


def decrypt_field(private_key: str | None, field: str, value: str) -> str | Refusal:
    """The plaintext of one encrypted parameter, or the Code 501 refusal Alibaba would give."""
    if private_key is None:
        return Refusal("501", f"{field}: this fake has no SM2 key pair")
    from ..cloud import sm2  # imported on the first encrypted request only

    try:
        plain = sm2.decrypt(private_key, value)
    except Exception:  # noqa: BLE001 - every way a ciphertext can be wrong is the same 501 to Alibaba
        return Refusal("501", NOT_DECRYPTABLE.format(field=field))
    if isinstance(plain, (bytes, bytearray)):
        try:
            return bytes(plain).decode("utf-8")
        except UnicodeDecodeError:
            return Refusal("501", NOT_DECRYPTABLE.format(field=field))
    return str(plain)


def decrypt_identity(
    private_key: str | None, encrypt_type: str | None, names: tuple[str, str], values: tuple[str, str]
) -> tuple[str, str] | Refusal:
    """``(cert_name, cert_no)`` in clear: decrypted when ``encrypt_type`` is SM2, else as given.

    ``names`` are the wire names of the two parameters (``CertName``/``CertNo`` or
    ``certName``/``certNo``), for the refusal's detail.
    """
    if not is_sm2(encrypt_type):
        return values
    out: list[str] = []
    for field, value in zip(names, values, strict=True):
        plain = decrypt_field(private_key, field, value)
        if isinstance(plain, Refusal):
            return plain
        out.append(plain)
    return out[0], out[1]
