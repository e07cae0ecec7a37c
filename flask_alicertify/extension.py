"""The Flask extension object: settings, storage, gateway, blueprint and CLI for one app.

No state lives on the :class:`AliCertify` object except the loaders an application registers;
everything app-specific is in ``app.extensions["alicertify"][name]`` (a :class:`State`), so one
extension object can serve several apps, and several extension objects (different ``name`` and
``config_prefix``, hence different URL prefixes and records) can live in one app.

Closing: Flask has no "app shut down" hook (``teardown_appcontext`` runs after every request), so
the gateway's HTTP connection pool and the storage's connections are closed by a
:func:`weakref.finalize` on the app: when the app object is garbage-collected, or at interpreter
exit, whichever comes first. Call :meth:`AliCertify.close` to close them earlier (tests, or an
app factory that rebuilds apps). Only what the extension built itself is closed; a storage or
gateway passed to :meth:`~AliCertify.init_app` belongs to the caller.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from flask import Flask
from flask.cli import NoAppException

from . import request_log
from .cli import make_cli
from .cloud.base import Gateway
from .cloud.base import GatewayConfig
from .errors import ConfigurationError
from .errors import CredentialsMissing
from .errors import ServiceError
from .errors import Unauthenticated
from .errors import VerificationRequired
from .records import Record
from .records import Status
from .records import user_id_text
from .responses import choose_language
from .responses import error_response
from .service import CertifyService
from .service import Clock
from .service import utcnow
from .settings import Settings
from .state import EXTENSION_KEY as EXTENSION_KEY
from .state import Hooks
from .state import IdentityLoader as IdentityLoader
from .state import State as State
from .state import UserId
from .state import UserLoader as UserLoader
from .state import get_state
from .state import require_user as require_user
from .storage.base import Storage
from .storage.loader import builtin_name
from .storage.loader import storage_from_config
from .views import make_blueprint

logger = logging.getLogger("flask_alicertify")

F = TypeVar("F", bound=Callable[..., Any])


class StartupError(ConfigurationError, NoAppException):
    """The :class:`~flask_alicertify.errors.ConfigurationError` that ``init_app`` raises.

    Also a Flask CLI ``NoAppException``, so ``flask --help`` and every ``flask`` command print
    the one line naming the key to fix instead of a traceback. Catch ``ConfigurationError``.
    """

    def __init__(self, key: str, problem: str) -> None:
        # Click's constructor sets what the CLI prints; ConfigurationError's own attributes by hand.
        NoAppException.__init__(self, f"{key} {problem}")
        self.key = key
        self.problem = problem


class AliCertify:
    """Alibaba Cloud ID verification for a Flask app (see docs/quickstart.md and docs/flow.md).

    :param app: an app to initialise right away (or call :meth:`init_app` later).
    :param name: the instance name: blueprint name, ``app.extensions["alicertify"]`` key, CLI
        group name, and what keeps its records apart (table ``{name}_records``, Redis prefix
        ``{name}:``). Give each instance in one app its own.
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
        """Register the function that says who is calling.

        It returns a user id (``str`` or ``int``), None for nobody, or a user object shaped like
        Flask-Login's (``is_authenticated`` and ``get_id()``; ``lambda: current_user`` works).
        Records are bound to that id; another user's record answers 403, and nobody answers 401
        (unless ``ALLOW_ANONYMOUS`` is on). Anything else is a :class:`TypeError` naming the
        loader. Register it before :meth:`init_app`; without one, an app with Flask-Login's
        ``LoginManager`` uses Flask-Login's current user.
        """
        self.hooks.user_loader = f
        return f

    def identity_loader(self, f: F) -> F:
        """Register ``(user_id) -> (cert_name, cert_no) | None``: the identity to verify.

        ``user_id`` is exactly what the user loader produced (an ``int`` stays an ``int``). When it
        returns a pair, the client's certName/certNo are ignored if absent or masked
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

        In sandbox mode (without a ``gateway``), the sandbox plug-in supplies the gateway's
        endpoints and credentials, and in-process the certify page's blueprint; that is the only
        time the sandbox package is imported. A configuration problem raises
        :class:`~flask_alicertify.errors.ConfigurationError` and leaves nothing behind on the
        app or on disk.

        :param storage: use this storage instead of ``{prefix}STORAGE`` (tests, custom setups).
        :param gateway: use this gateway instead of building one (tests against a fake cloud).
        :param clock: the service's clock (aware UTC datetimes); tests inject a fake one.
        """
        try:
            self._init_app(app, storage, gateway, clock)
        except StartupError:
            raise
        except ConfigurationError as e:
            raise StartupError(e.key, e.problem) from e

    def _init_app(
        self, app: Flask, storage: Storage | None, gateway: Gateway | None, clock: Clock | None
    ) -> None:
        settings = self.load_settings(app)
        default_user_loader = self._default_user_loader(app, settings)
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
        setup: Any = None
        try:
            if gateway is None:
                if settings.sandbox:
                    from .sandbox.plugin import configure

                    setup = configure(app, settings, name=self.name)
                gateway = self.make_gateway(app, settings, sandbox=setup)
                owned.append(gateway)
            if storage is None:
                storage = self.make_storage(app, settings)
                owned.append(storage)
        except BaseException:
            _close_all(tuple(owned), self.name)
            raise

        if settings.sandbox:
            logger.warning(
                "flask-alicertify %r is in SANDBOX mode: verifications are simulated by a fake "
                "Alibaba Cloud and prove nothing about anyone. Never enable this in production.",
                self.name,
            )
        service = CertifyService(
            settings,
            storage,
            gateway,
            clock=clock or utcnow,
            sender=weakref.ref(app),
            extension=self,
            instance=self.name,
        )
        if setup is not None and setup.blueprint is not None:
            app.register_blueprint(setup.blueprint)
        blueprint = make_blueprint(
            self.name,
            settings.url_prefix,
            openapi=settings.openapi,
            openapi_paths=getattr(setup, "openapi_paths", None),
            language=settings.language,
            before_request=getattr(setup, "before_request", None),
        )
        app.register_blueprint(blueprint)
        app.cli.add_command(make_cli(self.name))
        request_log.install()
        finalizer = weakref.finalize(app, _close_all, tuple(owned), self.name)
        registry[self.name] = State(
            extension=self,
            hooks=self.hooks,
            settings=settings,
            storage=storage,
            gateway=gateway,
            service=service,
            finalizer=finalizer,
            sandbox_cloud=getattr(setup, "cloud", None),
            certify_url=getattr(setup, "certify_url", None),
            default_user_loader=default_user_loader,
        )

    def _default_user_loader(self, app: Flask, settings: Settings) -> UserLoader | None:
        """Flask-Login's current user when the app registered no loader and has a LoginManager."""
        if self.hooks.user_loader is not None:
            return None
        if getattr(app, "login_manager", None) is not None:
            logger.debug(
                "AliCertify %r: no user_loader registered; using Flask-Login's current_user", self.name
            )
            return _flask_login_current_user
        if settings.allow_anonymous:
            return None
        raise ConfigurationError(
            settings.key("ALLOW_ANONYMOUS"),
            "is off and no user loader is registered: decorate a function with "
            f"@{self.name}.user_loader (or pass user_loader=) before init_app, initialise "
            "Flask-Login's LoginManager on the app before AliCertify, or set "
            f"{settings.key('ALLOW_ANONYMOUS')} = True to let anyone start verifications",
        )

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
        """The storage ``{prefix}STORAGE`` names, keeping this instance's records apart.

        The default (``"sqlalchemy"`` without ``{prefix}DATABASE_URL``) is the app's own
        Flask-SQLAlchemy database when the app has one, else the SQLite file in the instance
        folder, which is created only when first used.
        """
        uses_app_database = settings.database_url_is_default or (
            settings.database_url is None and "sqlalchemy" in app.extensions
        )
        if builtin_name(settings.storage) == "sqlalchemy" and uses_app_database:
            from .app_database import default_storage

            return default_storage(app, settings, instance=self.name)
        return storage_from_config(
            settings.storage,
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            key=settings.key,
            instance=self.name,
        )

    def make_gateway(self, app: Flask, settings: Settings, *, sandbox: Any = None) -> Gateway:
        """The gateway for ``{prefix}API``; with a sandbox setup, one that talks to the sandbox.

        The single place a gateway is built: override it to wrap or replace the gateway.
        """
        from .cloud.credentials import resolve_credentials
        from .cloud.gateways import make_gateway

        if sandbox is not None:
            credentials: Any = sandbox.credentials
            endpoints, scene_id = tuple(sandbox.endpoints), sandbox.scene_id
            sm2_public_key, transport = sandbox.sm2_public_key, sandbox.transport
        else:
            try:
                credentials = resolve_credentials(
                    settings.access_key_id, settings.access_key_secret, settings.security_token
                )
            except CredentialsMissing as e:
                raise ConfigurationError(settings.key("ACCESS_KEY_ID"), f"is not usable: {e}") from e
            endpoints, scene_id = tuple(settings.endpoints), settings.scene_id or ""
            sm2_public_key, transport = settings.sm2_public_key, None
        # The quota guard's counters are shared through Redis when there is one to share.
        rate_limit_url = settings.rate_limit_url
        if rate_limit_url is None and builtin_name(settings.storage) == "redis":
            rate_limit_url = settings.redis_url
        config = GatewayConfig(
            scene_id=scene_id,
            credentials=credentials,
            endpoints=endpoints,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            product_code=settings.product_code,
            encrypt_type=settings.encrypt_type,
            sm2_public_key=sm2_public_key,
            upstream_qps=settings.upstream_qps,
            upstream_wait=settings.upstream_wait,
            rate_limit_url=rate_limit_url,
        )
        return make_gateway(settings.api, config, transport=transport)

    # -- "is this user verified?" -----------------------------------------------------------------

    def verification(self, user_id: UserId, *, app: Flask | None = None) -> Record | None:
        """The user's latest passed record, else their latest record, else None.

        ``user_id`` is a user id as the user loader produces it (``str`` or ``int``). Only this
        instance's records count, and sandbox records only while the app is in sandbox mode.
        """
        st = self.state(app)
        text, _ = user_id_text(user_id)
        find = functools.partial(
            st.storage.latest_for_user, text, instance=self.name, include_sandbox=st.settings.sandbox
        )
        return find(status=Status.PASSED) or find()

    def is_verified(self, user_id: UserId, *, app: Flask | None = None) -> bool:
        """Whether the user has a passed verification (see :meth:`verification`)."""
        record = self.verification(user_id, app=app)
        return record is not None and record.status == Status.PASSED

    def verified_required(self, view: F) -> F:
        """Decorate an app's own view: 401 JSON when nobody is signed in, 403 JSON
        ``verification_required`` for a signed-in user who has not passed verification."""

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            st = self.state()
            user_id = st.current_user_id()
            problem: ServiceError | None = None
            if user_id is None:
                problem = Unauthenticated()
            elif not self.is_verified(user_id):
                problem = VerificationRequired()
            if problem is not None:
                return error_response(problem, choose_language(st.settings.language))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    # -- access -----------------------------------------------------------------------------------

    def state(self, app: Flask | None = None) -> State:
        """This instance's :class:`State` for ``app`` (default: the current app)."""
        return get_state(self.name, app)

    def service(self, app: Flask | None = None) -> CertifyService:
        return self.state(app).service

    def close(self, app: Flask | None = None) -> None:
        """Close what the extension built for ``app`` now rather than when the app is collected."""
        self.state(app).finalizer()


def _flask_login_current_user() -> Any:
    """Flask-Login's ``current_user`` (imported only for apps that have a LoginManager)."""
    from flask_login import current_user  # type: ignore[import-untyped]

    return current_user


def _close_all(resources: tuple[Any, ...], name: str) -> None:
    # Must not reference the app: it runs when the app is being collected.
    for resource in resources:
        try:
            resource.close()
        except Exception:  # noqa: BLE001 - closing must not stop the next resource from closing
            logger.exception("AliCertify %r: closing %s failed", name, type(resource).__name__)
