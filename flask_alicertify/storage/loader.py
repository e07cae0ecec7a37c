"""Turn the ``ALICERTIFY_STORAGE`` setting into a storage object.

The setting may name a built-in backend, point at a class or factory by import path, or be a
ready-made instance; a wrong value must fail at ``init_app`` time with a message that lists
what is accepted, not at the first request.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Storage

BUILTIN: dict[str, str] = {
    "memory": "flask_alicertify.storage.memory:MemoryStorage",
    "sqlalchemy": "flask_alicertify.storage.sqlalchemy:SQLAlchemyStorage",
    "redis": "flask_alicertify.storage.redis:RedisStorage",
}

_EXTRAS = {"sqlalchemy": "sqlalchemy", "redis": "redis"}

CHOICES = (
    '"memory", "sqlalchemy", "redis", an import path such as "package.module:Class" or '
    '"package.module.Class", or a storage instance'
)


class StorageConfigError(ValueError):
    """``ALICERTIFY_STORAGE`` (or its options) does not describe a usable storage."""


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
        name = spec.strip()
        if name.lower() in BUILTIN:
            key = name.lower()
            try:
                factory = _import(BUILTIN[key])
            except StorageConfigError as e:
                extra = _EXTRAS.get(key)
                hint = f' (install the "flask-alicertify[{extra}]" extra)' if extra else ""
                raise StorageConfigError(f"storage {key!r} is not available{hint}: {e}") from e
            if key == "redis" and "url" in options:
                # Every URL-based backend takes ``url=``; RedisStorage calls it ``url_or_client``.
                options = dict(options)
                options["url_or_client"] = options.pop("url")
        elif "." in name or ":" in name:
            factory = _import(name)
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
    raise StorageConfigError(f"invalid storage {spec!r}; expected {CHOICES}")


def _instantiate(factory: Any, spec: Any, options: dict[str, Any]) -> Storage:
    if isinstance(factory, Storage) and not isinstance(factory, type):
        if options:
            raise StorageConfigError(f"options cannot be applied to the storage instance {spec!r}")
        return factory
    if not callable(factory):
        raise StorageConfigError(f"storage {spec!r} is neither a class, a factory nor a storage instance")
    storage = factory(**options)
    if not isinstance(storage, Storage):
        raise StorageConfigError(
            f"storage {spec!r} produced {type(storage).__name__}, which lacks the Storage methods "
            "(create, get, get_by_certify_id, update, stale, count_inits, close)"
        )
    return storage
