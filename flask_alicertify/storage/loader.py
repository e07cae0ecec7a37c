"""Turn the ``ALICERTIFY_STORAGE`` setting into a storage object: the one place that reads it.

The setting may name a built-in backend (``"memory"``, ``"sqlalchemy"``, ``"redis"``, in any
case and with surrounding spaces), point at a class or factory by import path, or be a
ready-made instance. A wrong value, or a built-in backend without the URL it needs, must fail at
``init_app`` time with a message that names the key to fix, not at the first request:
:func:`configured_storage` checks (``Settings.from_mapping`` calls it) and
:func:`storage_from_config` builds.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..errors import StorageConfigError
from .base import STORAGE_METHODS
from .base import Storage
from .base import missing_methods

__all__ = [
    "BUILTIN",
    "CHOICES",
    "StorageConfigError",
    "builtin_name",
    "configured_storage",
    "load_storage",
    "prefix_for",
    "storage_from_config",
    "table_name_for",
]


@dataclass(frozen=True)
class _Backend:
    target: str
    #: The package extra that installs the backend's driver.
    extra: str | None = None
    #: The setting (without prefix) whose URL the backend is built from, and why it may be missing.
    url_key: str | None = None
    url_hint: str = ""


_BACKENDS: dict[str, _Backend] = {
    "memory": _Backend("flask_alicertify.storage.memory:MemoryStorage"),
    # SQLAlchemy is a dependency of the package itself: the production default needs no extra.
    "sqlalchemy": _Backend(
        "flask_alicertify.storage.sqlalchemy:SQLAlchemyStorage",
        url_key="DATABASE_URL",
        url_hint=" and the app has no instance path",
    ),
    "redis": _Backend("flask_alicertify.storage.redis:RedisStorage", extra="redis", url_key="REDIS_URL"),
}

#: Built-in backend names and the ``module:Class`` each loads.
BUILTIN: dict[str, str] = {name: backend.target for name, backend in _BACKENDS.items()}

CHOICES = (
    '"memory", "sqlalchemy", "redis", an import path such as "package.module:Class" or '
    '"package.module.Class", or a storage instance'
)


def table_name_for(instance: str) -> str:
    """The SQL table an extension instance keeps its records in: ``alicertify_records`` for the
    default instance, ``kyc_records`` for ``AliCertify(name="kyc")``."""
    return f"{instance}_records"


def prefix_for(instance: str) -> str:
    """The Redis key prefix of an extension instance: ``alicertify:`` for the default one."""
    return f"{instance}:"


def _default_key(name: str) -> str:
    return "ALICERTIFY_" + name


def builtin_name(spec: object) -> str | None:
    """The built-in backend ``spec`` names (case-insensitive, spaces stripped), or None."""
    if isinstance(spec, str) and spec.strip().lower() in _BACKENDS:
        return spec.strip().lower()
    return None


def configured_storage(
    spec: Any,
    *,
    database_url: str | None,
    redis_url: str | None,
    key: Callable[[str], str] = _default_key,
) -> Any:
    """``spec`` normalised (a built-in name in lower case, other strings stripped), once checked
    to have the URL it needs; raises :class:`ConfigurationError` naming the missing key.

    ``key`` turns a setting name into the instance's full config key (``Settings.key``).
    """
    name = builtin_name(spec)
    if name is None:
        return spec.strip() if isinstance(spec, str) else spec
    backend = _BACKENDS[name]
    urls = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    if backend.url_key is not None and urls[backend.url_key] is None:
        raise ConfigurationError(
            key(backend.url_key), f'is required when {key("STORAGE")} is "{name}"{backend.url_hint}'
        )
    return name


def storage_from_config(
    spec: Any,
    *,
    database_url: str | None,
    redis_url: str | None,
    key: Callable[[str], str] = _default_key,
    make_dirs: str | None = None,
    instance: str = "alicertify",
) -> Storage:
    """The storage the ``{prefix}STORAGE`` setting describes, built with the settings' URLs.

    :param make_dirs: a folder to create first when the backend is ``"sqlalchemy"`` (the app's
        instance folder, which holds the default SQLite file).
    :param instance: the extension instance's name: a built-in backend keeps its records apart
        from other instances' (:func:`table_name_for`, :func:`prefix_for`).
    :raises ConfigurationError: naming the key to fix.
    """
    spec = configured_storage(spec, database_url=database_url, redis_url=redis_url, key=key)
    name = builtin_name(spec)
    try:
        if name == "sqlalchemy":
            if make_dirs:
                os.makedirs(make_dirs, exist_ok=True)
            return load_storage(name, url=database_url, table_name=table_name_for(instance))
        if name == "redis":
            return load_storage(name, url=redis_url, prefix=prefix_for(instance))
        return load_storage(spec)
    except StorageConfigError as e:
        raise ConfigurationError(key("STORAGE"), f"is not usable: {e}") from e


def _import(path: str) -> Any:
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise StorageConfigError(f"invalid storage {path!r}; expected {CHOICES}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise StorageConfigError(f"cannot import storage module {module_name!r}: {e}") from e
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise StorageConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def load_storage(spec: str | Storage | type | Any, **options: Any) -> Storage:
    """A :class:`Storage` from a built-in name, an import path, a class/factory, or an instance.

    ``options`` are passed to the backend's constructor (``url=`` works for both ``"sqlalchemy"``
    and ``"redis"``); they are refused for an instance, which is already configured.
    """
    if isinstance(spec, str):
        name = builtin_name(spec)
        if name is not None:
            backend = _BACKENDS[name]
            try:
                factory = _import(backend.target)
            except StorageConfigError as e:
                hint = f' (install the "flask-alicertify[{backend.extra}]" extra)' if backend.extra else ""
                raise StorageConfigError(f"storage {name!r} is not available{hint}: {e}") from e
            if name == "redis" and "url" in options:
                # Every URL-based backend takes ``url=``; RedisStorage calls it ``url_or_client``.
                options = dict(options)
                options["url_or_client"] = options.pop("url")
        elif "." in spec or ":" in spec:
            factory = _import(spec.strip())
        else:
            raise StorageConfigError(f"unknown storage {spec!r}; expected {CHOICES}")
        return _instantiate(factory, spec, options)
    if isinstance(spec, type):
        return _instantiate(spec, spec, options)
    if isinstance(spec, Storage):
        if options:
            raise StorageConfigError("options cannot be applied to a storage instance")
        return spec
    if callable(spec):
        return _instantiate(spec, spec, options)
    if any(hasattr(spec, name) for name in STORAGE_METHODS):
        raise StorageConfigError(_lacks(f"storage {spec!r}", spec))
    raise StorageConfigError(f"invalid storage {spec!r}; expected {CHOICES}")


def _lacks(what: str, storage: Any) -> str:
    """Why ``storage`` is no storage, naming each missing method (a custom storage written for
    an older release lacks the newer ones, and "not a Storage" alone would not say which)."""
    missing = missing_methods(storage)
    return (
        f"{what}, which lacks the Storage method(s) {', '.join(missing)} (a storage needs "
        f"{', '.join(STORAGE_METHODS)}; see the storage docs, 'Writing your own')"
    )


def _instantiate(factory: Any, spec: Any, options: dict[str, Any]) -> Storage:
    if isinstance(factory, Storage) and not isinstance(factory, type):
        if options:
            raise StorageConfigError(f"options cannot be applied to the storage instance {spec!r}")
        return factory
    if not callable(factory):
        raise StorageConfigError(f"storage {spec!r} is neither a class, a factory nor a storage instance")
    storage = factory(**options)
    if not isinstance(storage, Storage) or missing_methods(storage):
        raise StorageConfigError(_lacks(f"storage {spec!r} produced {type(storage).__name__}", storage))
    return storage
