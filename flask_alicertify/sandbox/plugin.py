"""How the Flask layer plugs the sandbox in: :func:`configure` answers a :class:`SandboxSetup`.

``ALICERTIFY_SANDBOX`` has two forms, and this is the one place that knows both:

* ``True``: the fake Alibaba Cloud lives in this process (:class:`~.fake.FakeCloud` behind an
  httpx transport), its certify page is a blueprint of this app, and a multi-process server is
  refused per request (:func:`~.blueprint.refuse_multiprocess`) because each worker would hold a
  fake of its own.
* a URL: the shared sandbox server (``python -m flask_alicertify.sandbox``) is the cloud. The
  gateway calls it over HTTP with the sandbox's fixed key pair, and ``certifyUrl`` is its page,
  as Alibaba's page is Alibaba's; every worker, host and CLI process sees the same sessions.

Either way :func:`configure` first runs the guard (:mod:`.guard`): no sandbox where real
credentials are reachable. The extension calls it from ``init_app`` (the web process and the
CLI process alike) and imports this module only then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..cloud.base import CredentialsProvider
from ..cloud.credentials import StaticCredentials
from ..errors import ConfigurationError
from . import guard
from .encryption import SANDBOX_SM2_PUBLIC_KEY
from .fake import DEFAULT_ACCESS_KEY_ID
from .fake import DEFAULT_ACCESS_KEY_SECRET
from .fake import FakeCloud

if TYPE_CHECKING:
    from flask import Blueprint
    from flask import Flask

#: The sandbox's fixed key pair: what every sandbox gateway signs with and every sandbox fake
#: (in-process or shared) checks. Public on purpose; it opens nothing but a fake.
SANDBOX_ACCESS_KEY_ID = DEFAULT_ACCESS_KEY_ID
SANDBOX_ACCESS_KEY_SECRET = DEFAULT_ACCESS_KEY_SECRET
#: The scene id sandbox gateways send (the fake accepts any; the sandbox needs none configured).
SANDBOX_SCENE_ID = "1000000000"


@dataclass(frozen=True)
class SandboxSetup:
    """What the extension needs to run one instance in sandbox mode.

    Build the gateway from ``credentials``, ``endpoints``, ``scene_id`` (and ``sm2_public_key``
    when SM2 is on) with ``transport``; register ``blueprint`` (when set) and
    ``before_request`` on the main blueprint (when set); give clients
    ``certify_url(certify_id, gateway_url)`` instead of the gateway's URL (when set).
    """

    #: True for the shared server (``{prefix}SANDBOX`` is a URL), False for the in-process fake.
    shared: bool
    #: The shared server's URL, or None in-process.
    url: str | None
    credentials: CredentialsProvider
    endpoints: tuple[str, ...]
    scene_id: str
    #: The fake's SM2 public key: Init encrypts to it when ``{prefix}ENCRYPT_TYPE`` is SM2.
    sm2_public_key: str
    #: In-process: the fake as an httpx transport. None: real HTTP to ``endpoints``.
    transport: httpx.BaseTransport | None = None
    #: In-process: the page on this server. None: the URL the fake issued, unchanged.
    certify_url: Callable[[str, str], str] | None = None
    #: In-process: the certify page's routes, to register next to the main blueprint.
    blueprint: Blueprint | None = None
    #: In-process: the page's OpenAPI operations (a path contributor of the main document).
    openapi_paths: Any = None
    #: In-process: refuses a multi-process server; register on the main blueprint.
    before_request: Callable[[], None] | None = None
    #: In-process: the fake itself (tests and the state read it). None for the shared server.
    cloud: FakeCloud | None = None


def shared_endpoint(url: str, key: str) -> str:
    """The shared server's base URL as an endpoint (``http(s)://host:port``, no path)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(key, f"must be True or the sandbox server's http(s) URL, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(key, f"must be the sandbox server's base URL, without a path, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def configure(app: Flask, settings: Any, *, name: str) -> SandboxSetup:
    """The sandbox of the instance ``name`` on ``app``, for ``settings`` with sandbox mode on.

    :raises ConfigurationError: on ``{prefix}SANDBOX`` when real credentials are reachable from
        any source, or ``{prefix}SCENE_ID`` is set (:func:`.guard.check`).
    """
    guard.check(settings)
    credentials = StaticCredentials(SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET)
    url = getattr(settings, "sandbox_url", None)
    if url:
        endpoint = shared_endpoint(url, settings.key("SANDBOX"))
        return SandboxSetup(
            shared=True,
            url=endpoint,
            credentials=credentials,
            endpoints=(endpoint,),
            scene_id=SANDBOX_SCENE_ID,
            sm2_public_key=SANDBOX_SM2_PUBLIC_KEY,
        )

    from .blueprint import local_certify_url
    from .blueprint import make_sandbox_blueprint
    from .blueprint import openapi_paths
    from .blueprint import refuse_multiprocess

    # A local demo's callback is plain http, which Alibaba (and so the strict fake) refuses.
    cloud = FakeCloud(SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET, https_callbacks_only=False)
    return SandboxSetup(
        shared=False,
        url=None,
        credentials=credentials,
        endpoints=tuple(settings.endpoints),
        scene_id=SANDBOX_SCENE_ID,
        sm2_public_key=SANDBOX_SM2_PUBLIC_KEY,
        transport=cloud.transport(),
        certify_url=local_certify_url(name, cloud),
        blueprint=make_sandbox_blueprint(name, settings.url_prefix, cloud=cloud, language=settings.language),
        openapi_paths=openapi_paths,
        before_request=refuse_multiprocess,
        cloud=cloud,
    )
