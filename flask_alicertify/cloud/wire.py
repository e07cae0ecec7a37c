"""The wire encoder: the one place where a clear name or ID number becomes text for Alibaba.

Everything upstream of it (the service, the gateways' parameter dicts, the RPC client's frames)
holds CertName and CertNo as :class:`~flask_alicertify.identity.Sensitive`, whose ``repr`` and
``str`` are masked, so an error tracker that records frame locals finds no clear value. The
encoder reveals them while it builds the request and, when SM2 is on, encrypts them first
(:mod:`.sm2`), so with SM2 the clear values never leave this function at all.

SAF sends its parameters as one JSON string (``ServiceParameters``); :class:`JsonParam` keeps that
mapping un-encoded (and masked) until the encoder serialises it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ..identity import Sensitive
from . import sm2

__all__ = ["JsonParam", "WireEncoder", "sensitive"]


def sensitive(value: str | Sensitive, kind: str) -> Sensitive:
    """``value`` as a :class:`Sensitive` (a plain ``str`` from a caller is wrapped, not trusted)."""
    return value if isinstance(value, Sensitive) else Sensitive(value, kind=kind)


class JsonParam:
    """A mapping sent as one compact JSON string, built only by :class:`WireEncoder`."""

    __slots__ = ("params",)

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def __repr__(self) -> str:
        return f"JsonParam({self.params!r})"


class WireEncoder:
    """Turns parameter values into the strings sent; ``sm2_key`` set means Sensitive values are encrypted."""

    def __init__(self, sm2_key: sm2.PublicKey | None = None) -> None:
        self.sm2_key = sm2_key

    @property
    def encrypting(self) -> bool:
        return self.sm2_key is not None

    def _sensitive(self, value: Sensitive) -> str:
        if self.sm2_key is None:
            return value.reveal()
        cipher = sm2.encrypt_bytes(self.sm2_key, value.reveal().encode("utf-8"))
        return base64.b64encode(cipher).decode("ascii")

    def value(self, value: Any) -> str:
        if isinstance(value, Sensitive):
            return self._sensitive(value)
        if isinstance(value, JsonParam):
            payload = {
                k: self._sensitive(v) if isinstance(v, Sensitive) else v
                for k, v in value.params.items()
                if v is not None
            }
            return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return str(value)

    def fields(self, mapping: Mapping[str, Any]) -> dict[str, str]:
        """Sorted ``name -> text``, None values dropped."""
        return {k: self.value(v) for k, v in sorted(mapping.items()) if v is not None}

    def __repr__(self) -> str:
        return f"WireEncoder(sm2={self.sm2_key!r})"
