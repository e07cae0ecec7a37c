"""Alibaba Cloud ID verification (实人认证) for Flask apps behind an Alipay mini-program.

The public API: :class:`AliCertify`, the five signals (``from flask_alicertify import
certify_passed``, as Flask and Flask-Login export theirs; :mod:`.signals` has them too),
:mod:`.errors`, :class:`Record`, :class:`Status`, :class:`ClientStatus` and :mod:`.storage`
(as ``storages``).

``AliCertify`` is imported on first access, so the framework-free layers (``cloud``, ``storage``,
``service``, ``sandbox.fake``) can be imported without loading Flask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

from .records import ClientStatus
from .records import Record
from .records import Status
from .signals import certify_abandoned
from .signals import certify_expired
from .signals import certify_failed
from .signals import certify_initiated
from .signals import certify_passed

if TYPE_CHECKING:
    from . import errors
    from . import signals
    from . import storage as storages
    from .extension import AliCertify

__all__ = [
    "AliCertify",
    "ClientStatus",
    "Record",
    "Status",
    "certify_abandoned",
    "certify_expired",
    "certify_failed",
    "certify_initiated",
    "certify_passed",
    "errors",
    "signals",
    "storages",
]

_LAZY = {
    "AliCertify": (".extension", "AliCertify"),
    "errors": (".errors", None),
    "signals": (".signals", None),
    "storages": (".storage", None),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
