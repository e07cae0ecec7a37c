"""The Flask extension object: settings, storage, gateway, blueprint and CLI for one app.

No state lives on the :class:`AliCertify` object except the loaders an application registers;
everything app-specific is in ``app.extensions["alicertify"][name]`` (a :class:`State`), so one
extension object can serve several apps, and several extension objects (different ``name`` and
``config_prefix``, hence different URL prefixes and stores) can live in one app.

Closing: Flask has no "app shut down" hook (``teardown_appcontext`` runs after every request), so
the gateway's HTTP connection pool and the storage's connections are closed by a
:func:`weakref.finalize` on the app: when the app object is garbage-collected, or at interpreter
exit, whichever comes first. Call :meth:`AliCertify.close` to close them earlier (tests, or an
app factory that rebuilds apps). Only what the extension built itself is closed; a storage or
gateway passed to :meth:`~AliCertify.init_app` belongs to the caller.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from flask import Flask
from flask import url_for

from .cli import make_cli
from .cloud.base import Gateway
from .cloud.base import GatewayConfig
from .errors import ConfigurationError
from .errors import CredentialsMissing
from .openapi import PathContributor
from .service import CertifyService
from .service import Clock
from .service import utcnow
from .settings import Settings
from .state import EXTENSION_KEY as EXTENSION_KEY
from .state import Hooks
from .state import IdentityLoader as IdentityLoader
from .state import State as State
from .state import UserLoader as UserLoader
from .state import get_state
from .state import require_user as require_user
from .storage.base import Storage
from .storage.loader import storage_from_config
from .views import make_blueprint

logger = logging.getLogger("flask_alicertify")

F = TypeVar("F", bound=Callable[..., Any])


class AliCertify:
    """Alibaba Cloud ID verification for a Flask app (see docs/quickstart.md and docs/flow.md).

    :param app: an app to initialise right away (or call :meth:`init_app` later).
    :param name: the instance name: blueprint name, ``app.extensions["alicertify"]`` key and
        CLI group name. Give each instance in one app its own.
    :param config_prefix: the prefix of this instance's config keys (``ALICERTIFY_`` by default).
    :param user_loader: same as decorating a function with :meth:`user_loader`; handy with the
        ``AliCertify(app)`` form, where :meth:`init_app` runs before any decorator can.
    :param identity_loader: same as decorating with :meth:`identity_loader`.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        name: str = "alicertify",
        config_prefix: str = "ALICERTIFY_",
        user_loader: UserLoader | None = None,
        identity_loader: IdentityLoader | None = None,
    ) -> None:
        if not name or "." in name:
            raise ValueError(f"name must be a non-empty blueprint name without dots, got {name!r}")
        self.name = name
        self.config_prefix = config_prefix
        #: The loaders, shared with every app's :class:`State` (so late registration still works).
        self.hooks = Hooks(user_loader=user_loader, identity_loader=identity_loader)
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"<AliCertify {self.name!r} prefix={self.config_prefix!r}>"

    # -- hooks ------------------------------------------------------------------------------------

    def user_loader(self, f: F) -> F:
        """Register the function that says who is calling: ``() -> user id | None``.

        Records are bound to that id; another user's record answers 403, and None answers 401
        (unless ``ALLOW_ANONYMOUS`` is on). Register it before :meth:`init_app`.
        """
        self.hooks.user_loader = f
        return f

    def identity_loader(self, f: F) -> F:
        """Register ``(user_id) -> (cert_name, cert_no) | None``: the identity to verify.

        When it returns a pair, the client's certName/certNo are ignored if absent or masked
        placeholders (``1******************9``), and must match otherwise (400 identity_mismatch).
        """
        self.hooks.identity_loader = f
        return f

    # -- setup ------------------------------------------------------------------------------------

    def init_app(
        self,
        app: Flask,
        *,
        storage: Storage | None = None,
        gateway: Gateway | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Read the settings, build storage and gateway, register the blueprint and CLI.

        In sandbox mode (without a ``gateway``), the gateway talks to an in-process fake cloud
        and the sandbox's certify page is registered as a second blueprint; that is the only
        time the sandbox package is imported.

        :param storage: use this storage instead of ``{prefix}STORAGE`` (tests, custom setups).
        :param gateway: use this gateway instead of building one (tests against a fake cloud).
        :param clock: the service's clock (aware UTC datetimes); tests inject a fake one.
        """
        settings = self.load_settings(app)
        if self.hooks.user_loader is None and not settings.allow_anonymous:
            raise ConfigurationError(
                settings.key("ALLOW_ANONYMOUS"),
                "is off and no user loader is registered: decorate a function with "
                f"@{self.name}.user_loader (or pass user_loader=) before init_app, or set "
                f"{settings.key('ALLOW_ANONYMOUS')} = True to let anyone start verifications",
            )
        registry: dict[str, State] = app.extensions.setdefault(EXTENSION_KEY, {})
        if self.name in registry:
            raise RuntimeError(
                f"an AliCertify instance named {self.name!r} is already registered on this app; "
                "give each instance its own name="
            )
        for other in registry.values():
            if other.settings.url_prefix == settings.url_prefix:
                raise ConfigurationError(
                    settings.key("URL_PREFIX"),
                    f"is {settings.url_prefix!r}, which the {other.extension.name!r} instance already uses",
                )

        owned: list[Any] = []
        sandbox = None
        try:
            if storage is None:
                storage = self.make_storage(app, settings)
                owned.append(storage)
            if gateway is None:
                if settings.sandbox:
                    sandbox = self.make_sandbox_cloud()
                gateway = self.make_gateway(app, settings, sandbox=sandbox)
                owned.append(gateway)
        except BaseException:
            _close_all(tuple(owned), self.name)
            raise

        service = CertifyService(settings, storage, gateway, clock=clock or utcnow, sender=weakref.ref(app))
        openapi_paths: PathContributor | None = None
        certify_url: Callable[[str, str], str] | None = None
        if sandbox is not None:
            logger.warning(
                "flask-alicertify %r is in SANDBOX mode: verifications are simulated by a fake "
                "Alibaba Cloud and prove nothing about anyone. Never enable this in production.",
                self.name,
            )
            openapi_paths, certify_url = self._register_sandbox(app, settings, sandbox, storage)
        blueprint = make_blueprint(
            self.name,
            settings.url_prefix,
            openapi=settings.openapi,
            openapi_paths=openapi_paths,
            language=settings.language,
        )
        app.register_blueprint(blueprint)
        app.cli.add_command(make_cli(self.name))
        finalizer = weakref.finalize(app, _close_all, tuple(owned), self.name)
        registry[self.name] = State(
            extension=self,
            hooks=self.hooks,
            settings=settings,
            storage=storage,
            gateway=gateway,
            service=service,
            finalizer=finalizer,
            sandbox_cloud=sandbox,
            certify_url=certify_url,
        )

    def _register_sandbox(
        self, app: Flask, settings: Settings, cloud: Any, storage: Storage
    ) -> tuple[PathContributor, Callable[[str, str], str]]:
        """Register the sandbox's certify page; answer its OpenAPI part and the certify URL rule.

        The fake cloud cannot know this server's address, so the URL a client gets is the
        sandbox page on this server instead of the one the fake returned.
        """
        from .sandbox.blueprint import make_sandbox_blueprint
        from .sandbox.blueprint import openapi_paths

        name = self.name
        app.register_blueprint(
            make_sandbox_blueprint(
                name,
                settings.url_prefix,
                cloud=cloud,
                find_record=storage.get_by_certify_id,
                result_url=lambda: url_for(f"{name}.result"),
                language=settings.language,
            )
        )

        def certify_url(certify_id: str, gateway_url: str) -> str:
            return url_for(f"{name}_sandbox.page", certify_id=certify_id, _external=True)

        return openapi_paths, certify_url

    def load_settings(self, app: Flask) -> Settings:
        """This instance's :class:`Settings` from ``app.config`` (override to add sources)."""
        return Settings.from_mapping(
            app.config,
            prefix=self.config_prefix,
            instance_path=app.instance_path,
            testing=app.testing,
            secret_key=app.config.get("SECRET_KEY"),
        )

    def make_storage(self, app: Flask, settings: Settings) -> Storage:
        """The storage ``{prefix}STORAGE`` names; the default SQLite file's folder is created."""
        return storage_from_config(
            settings.storage,
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            key=settings.key,
            make_dirs=app.instance_path if settings.database_url_is_default else None,
        )

    def make_gateway(self, app: Flask, settings: Settings, *, sandbox: Any = None) -> Gateway:
        """The gateway for ``{prefix}API``; with a sandbox cloud, one that talks to it in-process.

        The single place a gateway is built: override it to wrap or replace the gateway.
        """
        from .cloud.credentials import StaticCredentials
        from .cloud.credentials import resolve_credentials
        from .cloud.gateways import make_gateway

        transport = None
        endpoints: Sequence[str] = settings.endpoints
        if sandbox is not None:
            credentials: Any = StaticCredentials(sandbox.access_key_id, sandbox.access_key_secret)
            transport = sandbox.transport()
        else:
            try:
                credentials = resolve_credentials(
                    settings.access_key_id, settings.access_key_secret, settings.security_token
                )
            except CredentialsMissing as e:
                raise ConfigurationError(settings.key("ACCESS_KEY_ID"), f"is not usable: {e}") from e
        config = GatewayConfig(
            scene_id=settings.scene_id or "1000000000",
            credentials=credentials,
            endpoints=tuple(endpoints),
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            product_code=settings.product_code,
        )
        return make_gateway(settings.api, config, transport=transport)

    def make_sandbox_cloud(self) -> Any:
        """The in-process fake Alibaba Cloud that sandbox mode serves from (no network)."""
        from .sandbox.fake import FakeCloud

        # The sandbox may run on plain http locally, so its callback URL need not be https.
        return FakeCloud(https_callbacks_only=False)

    # -- access -----------------------------------------------------------------------------------

    def state(self, app: Flask | None = None) -> State:
        """This instance's :class:`State` for ``app`` (default: the current app)."""
        return get_state(self.name, app)

    def service(self, app: Flask | None = None) -> CertifyService:
        return self.state(app).service

    def close(self, app: Flask | None = None) -> None:
        """Close what the extension built for ``app`` now rather than when the app is collected."""
        self.state(app).finalizer()


def _close_all(resources: tuple[Any, ...], name: str) -> None:
    # Must not reference the app: it runs when the app is being collected.
    for resource in resources:
        try:
            resource.close()
        except Exception:  # noqa: BLE001 - closing must not stop the next resource from closing
            logger.exception("AliCertify %r: closing %s failed", name, type(resource).__name__)
