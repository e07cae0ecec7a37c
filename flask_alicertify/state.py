"""What one extension instance keeps per app, and the one way to look it up.

Everything app-specific lives in ``app.extensions[EXTENSION_KEY][name]`` as a :class:`State`, so
one :class:`~flask_alicertify.AliCertify` object can serve several apps and several instances
(different ``name``) can share one app. The views, the CLI and the extension all find it with
:func:`get_state`; nothing here imports the extension module, so they need not either.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask import current_app

from .cloud.base import Gateway
from .errors import Unauthenticated
from .service import CertifyService
from .settings import Settings
from .storage.base import Storage

#: The ``app.extensions`` key under which every instance's :class:`State` is stored, by name.
EXTENSION_KEY = "alicertify"

#: Returns the current user's id (any value; it is stored as ``str``), or None when nobody is signed in.
UserLoader = Callable[[], Any]
#: Returns ``(cert_name, cert_no)`` for a user id, or None to use the client's values.
IdentityLoader = Callable[[Any], "tuple[str, str] | None"]


@dataclass
class Hooks:
    """The loaders an application registers on an extension object.

    Owned by the :class:`~flask_alicertify.AliCertify` object and shared (not copied) with each
    app's :class:`State`, so a loader decorated after ``init_app`` is still the one used.
    """

    user_loader: UserLoader | None = None
    identity_loader: IdentityLoader | None = None


@dataclass
class State:
    """What one extension instance keeps for one app (``app.extensions["alicertify"][name]``)."""

    #: The :class:`~flask_alicertify.AliCertify` object (typed loosely: this module is below it).
    extension: Any
    hooks: Hooks
    settings: Settings
    storage: Storage
    gateway: Gateway
    service: CertifyService
    finalizer: weakref.finalize[Any, Any]
    #: The in-process fake Alibaba Cloud when ``{prefix}SANDBOX`` is on, else None.
    sandbox_cloud: Any = None
    #: Given the certify id and the URL the gateway returned, the URL the client gets (the
    #: sandbox page on this server); None means the gateway's URL unchanged.
    certify_url: Callable[[str, str], str] | None = None

    @property
    def sandbox(self) -> Any:
        """The sandbox's fake cloud, or None (the older name of :attr:`sandbox_cloud`)."""
        return self.sandbox_cloud

    def user_id(self) -> str | None:
        """The current caller's id (401 when the loader says nobody and anonymous is off)."""
        return require_user(self.hooks.user_loader, self.settings.allow_anonymous)

    def profile(self, user_id: str | None) -> tuple[str, str] | None:
        """``(cert_name, cert_no)`` from the app's identity loader, or None."""
        loader = self.hooks.identity_loader
        if loader is None or user_id is None:
            return None
        value = loader(user_id)
        if value is None:
            return None
        if (
            not isinstance(value, (tuple, list))
            or len(value) != 2
            or not all(isinstance(v, str) for v in value)
        ):
            raise TypeError("identity_loader must return (cert_name, cert_no) as two strings, or None")
        return value[0], value[1]


def get_state(name: str, app: Flask | None = None) -> State:
    """The :class:`State` of the instance called ``name`` on ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    try:
        found: State = target.extensions[EXTENSION_KEY][name]
    except KeyError:
        raise RuntimeError(f"AliCertify {name!r} is not initialised on this app") from None
    return found


def require_user(loader: Callable[[], Any] | None, allow_anonymous: bool) -> str | None:
    """The caller's user id from ``loader``: None is anonymous (if allowed) or 401."""
    if loader is None:
        return None
    user = loader()
    if user is None or user == "":
        if allow_anonymous:
            return None
        raise Unauthenticated()
    return str(user)
