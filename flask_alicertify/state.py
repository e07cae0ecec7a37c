"""What one extension instance keeps per app, and the one way to look it up.

Everything app-specific lives in ``app.extensions[EXTENSION_KEY][name]`` as a :class:`State`, so
one :class:`~flask_alicertify.AliCertify` object can serve several apps and several instances
(different ``name``) can share one app. The views, the CLI and the extension all find it with
:func:`get_state`; nothing here imports the extension module, so they need not either.

Who is calling is decided here too (:func:`resolve_user`): a user loader may return a user id
(``str`` or ``int``), None, or a user object shaped like Flask-Login's (``is_authenticated`` and
``get_id()``, the ``current_user`` proxy included). Anything else is a bug in the loader and a
:class:`TypeError` naming it: turning an arbitrary object into ``str(value)`` once made
``'<AnonymousUserMixin object at …>'`` a user id that anyone shared.
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
from .identity import Sensitive
from .service import CertifyService
from .settings import Settings
from .storage.base import Storage

#: The ``app.extensions`` key under which every instance's :class:`State` is stored, by name.
EXTENSION_KEY = "alicertify"

#: Returns the current user: a user id (``str``/``int``), None, or a Flask-Login-shaped user.
UserLoader = Callable[[], Any]
#: Returns ``(cert_name, cert_no)`` (``str`` or :class:`~flask_alicertify.identity.Sensitive`) for
#: a user id, or None to use the client's values.
IdentityLoader = Callable[[Any], Any]
#: A user id as the user loader produced it.
UserId = str | int


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
    #: The in-process fake Alibaba Cloud when ``{prefix}SANDBOX`` is True, else None.
    sandbox_cloud: Any = None
    #: Given the certify id and the URL the gateway returned, the URL the client gets (the
    #: sandbox page on this server); None means the gateway's URL unchanged.
    certify_url: Callable[[str, str], str] | None = None
    #: The loader used when the app registered none: Flask-Login's current user, when the app
    #: has a ``LoginManager`` (see :meth:`~flask_alicertify.AliCertify.init_app`).
    default_user_loader: UserLoader | None = None

    @property
    def sandbox(self) -> Any:
        """The sandbox's fake cloud, or None (the older name of :attr:`sandbox_cloud`)."""
        return self.sandbox_cloud

    @property
    def user_loader(self) -> UserLoader | None:
        return self.hooks.user_loader or self.default_user_loader

    def current_user_id(self) -> UserId | None:
        """The signed-in user's id as the loader produced it, or None when nobody is signed in."""
        loader = self.user_loader
        return None if loader is None else resolve_user(loader(), loader)

    def user_id(self) -> UserId | None:
        """The current caller's id (401 when nobody is signed in and anonymous use is off)."""
        if self.user_loader is None:
            return None
        user = self.current_user_id()
        if user is None and not self.settings.allow_anonymous:
            raise Unauthenticated()
        return user

    def profile(self, user_id: UserId | None) -> tuple[Sensitive, Sensitive] | None:
        """``(cert_name, cert_no)`` from the app's identity loader as :class:`Sensitive`, or None.

        The loader gets ``user_id`` exactly as the user loader produced it (an ``int`` primary key
        stays an ``int``), so its lookup finds the user.
        """
        loader = self.hooks.identity_loader
        if loader is None or user_id is None:
            return None
        value = loader(user_id)
        if value is None:
            return None
        if (
            not isinstance(value, (tuple, list))
            or len(value) != 2
            or not all(isinstance(v, (str, Sensitive)) for v in value)
        ):
            raise TypeError(
                f"the identity loader {_name(loader)} must return (cert_name, cert_no) as two strings, "
                f"or None; it returned {type(value).__name__}"
            )
        return Sensitive(value[0], kind="cert_name"), Sensitive(value[1], kind="cert_no")


def get_state(name: str, app: Flask | None = None) -> State:
    """The :class:`State` of the instance called ``name`` on ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    try:
        found: State = target.extensions[EXTENSION_KEY][name]
    except KeyError:
        raise RuntimeError(f"AliCertify {name!r} is not initialised on this app") from None
    return found


def resolve_user(value: Any, loader: Any = None) -> UserId | None:
    """The user id a user loader's ``value`` stands for, or None for nobody.

    A ``str`` or ``int`` is the id (an empty string is nobody). A Flask-Login-shaped user (with
    ``is_authenticated`` and ``get_id()``; the ``current_user`` proxy forwards both) is nobody
    unless authenticated, else ``get_id()``. Anything else raises :class:`TypeError` naming
    ``loader``: it is a bug to fix in the app, never something to turn into text.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"the user loader {_name(loader)} returned a bool; return a user id or None")
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return value
    get_id = getattr(value, "get_id", None)
    try:
        authenticated = value.is_authenticated
    except AttributeError:
        authenticated = None
    if authenticated is None or not callable(get_id):
        raise TypeError(
            f"the user loader {_name(loader)} returned {type(value).__name__}: return a user id "
            "(str or int), None, or a user object with is_authenticated and get_id() (Flask-Login's)"
        )
    if not authenticated:
        return None
    user_id = get_id()
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
        raise TypeError(
            f"the user loader {_name(loader)} returned an authenticated user whose get_id() gave "
            f"{type(user_id).__name__}; it must give the user id as a str or an int"
        )
    return user_id


def require_user(loader: Callable[[], Any] | None, allow_anonymous: bool) -> UserId | None:
    """The caller's user id from ``loader``: None is anonymous (if allowed) or 401."""
    if loader is None:
        return None
    user = resolve_user(loader(), loader)
    if user is None and not allow_anonymous:
        raise Unauthenticated()
    return user


def _name(loader: Any) -> str:
    """``module.qualname`` of a loader, for error messages that point at the code to fix."""
    if loader is None:
        return "(none)"
    qualname = getattr(loader, "__qualname__", None) or type(loader).__qualname__
    module = getattr(loader, "__module__", None)
    return f"{module}.{qualname}" if module else qualname
