"""``load_storage``: what ``ALICERTIFY_STORAGE`` may say, and the errors when it is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flask_alicertify.errors import ConfigurationError
from flask_alicertify.storage import MemoryStorage
from flask_alicertify.storage import Storage
from flask_alicertify.storage import load_storage
from flask_alicertify.storage.loader import StorageConfigError
from flask_alicertify.storage.loader import builtin_name
from flask_alicertify.storage.loader import configured_storage
from flask_alicertify.storage.loader import storage_from_config


class CustomStorage(MemoryStorage):
    def __init__(self, label: str = "") -> None:
        super().__init__()
        self.label = label


def test_builtin_names() -> None:
    assert type(load_storage("memory")) is MemoryStorage
    assert type(load_storage(" Memory ")) is MemoryStorage


def test_sqlalchemy_by_name(tmp_path: Path) -> None:
    from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

    storage = load_storage("sqlalchemy", url=f"sqlite:///{tmp_path / 'db.sqlite3'}", table_name="t")
    try:
        assert isinstance(storage, SQLAlchemyStorage)
        assert storage.table.name == "t"
    finally:
        storage.close()


@pytest.mark.parametrize("option", ["url", "url_or_client"])
def test_redis_by_name(option: str) -> None:
    from flask_alicertify.storage.redis import RedisStorage

    # Building the client does not connect, so this needs no server.
    storage = load_storage("redis", **{option: "redis://127.0.0.1:6379/5"}, prefix="p:")
    try:
        assert isinstance(storage, RedisStorage)
        assert storage.prefix == "p:"
        assert storage.client.connection_pool.connection_kwargs["db"] == 5
    finally:
        storage.close()


@pytest.mark.parametrize("path", [f"{__name__}:CustomStorage", f"{__name__}.CustomStorage"])
def test_import_paths(path: str) -> None:
    storage = load_storage(path, label="x")
    assert isinstance(storage, CustomStorage) and storage.label == "x"


def test_instance_class_and_factory() -> None:
    instance = CustomStorage()
    assert load_storage(instance) is instance
    assert isinstance(load_storage(CustomStorage), CustomStorage)
    assert isinstance(load_storage(lambda: CustomStorage("f")), CustomStorage)
    with pytest.raises(StorageConfigError, match="options cannot be applied"):
        load_storage(instance, url="x")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", 'unknown storage .*"memory", "sqlalchemy", "redis"'),
        ("no_such_module_xyz:Thing", "cannot import storage module 'no_such_module_xyz'"),
        (f"{__name__}:Missing", "has no attribute 'Missing'"),
        (f"{__name__}:test_builtin_names", r"lacks the Storage method\(s\) create, get, "),
        (42, "invalid storage 42"),
    ],
)
def test_errors_name_the_choices(spec: Any, message: str) -> None:
    with pytest.raises(StorageConfigError, match=message):
        load_storage(spec)


def test_storage_config_error_is_a_value_error() -> None:
    assert issubclass(StorageConfigError, ValueError)


def test_loaded_storage_satisfies_protocol() -> None:
    assert isinstance(load_storage("memory"), Storage)


def test_optional_backends_are_imported_lazily() -> None:
    """Without sqlalchemy and redis importable the package still imports; the Redis backend says
    which extra installs it (SQLAlchemy is a dependency of the package, so it has no extra)."""
    code = """
import sys
sys.modules["sqlalchemy"] = None
sys.modules["redis"] = None
import flask_alicertify.storage as s
from flask_alicertify.errors import ConfigurationError
from flask_alicertify.storage.loader import StorageConfigError
from flask_alicertify.storage.loader import builtin_name
from flask_alicertify.storage.loader import configured_storage
from flask_alicertify.storage.loader import storage_from_config
assert s.MemoryStorage
for name, extra in (("sqlalchemy", None), ("redis", "redis")):
    try:
        s.load_storage(name, url="x")
    except StorageConfigError as e:
        assert f"storage {name!r} is not available" in str(e), e
        assert ("flask-alicertify[" in str(e)) == (extra is not None), e
        if extra:
            assert f"flask-alicertify[{extra}]" in str(e), e
    else:
        raise AssertionError(name)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_builtin_names_are_recognised_in_one_place() -> None:
    assert [builtin_name(s) for s in ("memory", " Redis", "SQLAlchemy ", "REDIS")] == [
        "memory",
        "redis",
        "sqlalchemy",
        "redis",
    ]
    assert builtin_name("package.module:Class") is None
    assert builtin_name(MemoryStorage()) is None


@pytest.mark.parametrize(
    ("spec", "key"),
    [("Redis", "APP_REDIS_URL"), ("sqlalchemy", "APP_DATABASE_URL"), (" REDIS ", "APP_REDIS_URL")],
)
def test_a_builtin_backend_without_its_url_names_the_key(spec: str, key: str) -> None:
    for check in (configured_storage, storage_from_config):
        with pytest.raises(ConfigurationError) as info:
            check(spec, database_url=None, redis_url=None, key=lambda name: "APP_" + name)
        assert info.value.key == key
        assert "APP_STORAGE" in str(info.value)


def test_storage_from_config_builds_with_the_settings_urls(tmp_path: Path) -> None:
    from flask_alicertify.storage.redis import RedisStorage
    from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

    folder = tmp_path / "instance"
    url = f"sqlite:///{folder / 'db.sqlite3'}"
    storage = storage_from_config(" SQLAlchemy", database_url=url, redis_url=None, make_dirs=str(folder))
    try:
        assert isinstance(storage, SQLAlchemyStorage) and folder.is_dir()
    finally:
        storage.close()
    redis_storage = storage_from_config("Redis", database_url=None, redis_url="redis://127.0.0.1:6379/5")
    try:
        assert isinstance(redis_storage, RedisStorage)
        assert redis_storage.client.connection_pool.connection_kwargs["db"] == 5
    finally:
        redis_storage.close()
    assert type(storage_from_config("Memory", database_url=None, redis_url=None)) is MemoryStorage
    with pytest.raises(ConfigurationError) as info:
        storage_from_config("nope", database_url=None, redis_url=None)
    assert info.value.key == "ALICERTIFY_STORAGE"
    assert isinstance(info.value.__cause__, StorageConfigError)


def test_storage_config_error_lives_in_errors() -> None:
    from flask_alicertify import errors

    assert StorageConfigError is errors.StorageConfigError


class OldStorage:
    """A custom storage written against the first release's seven methods."""

    def create(self, record: Any) -> None: ...
    def get(self, record_id: str) -> None: ...
    def get_by_certify_id(self, certify_id: str) -> None: ...
    def update(self, record_id: str, *, expect: Any, **changes: Any) -> None: ...
    def stale(self, *, updated_before: Any, limit: int = 100) -> list[Any]: ...
    def count_inits(self, user_id: str, *, since: Any) -> int: ...
    def close(self) -> None: ...


NEW_METHODS = "claim_describe, latest_for_user, undelivered, undeleted, unpurged"


@pytest.mark.parametrize("spec", [OldStorage, OldStorage(), lambda: OldStorage(), f"{__name__}:OldStorage"])
def test_a_storage_lacking_methods_is_told_which(spec: Any) -> None:
    with pytest.raises(StorageConfigError) as info:
        load_storage(spec)
    message = str(info.value)
    assert f"lacks the Storage method(s) {NEW_METHODS} (" in message
    assert "Writing your own" in message


def test_a_storage_lacking_methods_fails_init_app_naming_the_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        storage_from_config(OldStorage(), database_url=None, redis_url=None)
    assert info.value.key == "ALICERTIFY_STORAGE"
    assert NEW_METHODS in str(info.value)


def test_storage_methods_list_the_protocol() -> None:
    from flask_alicertify.storage.base import STORAGE_METHODS

    declared = [name for name, value in vars(Storage).items() if not name.startswith("_") and callable(value)]
    assert list(STORAGE_METHODS) == declared


def test_builtin_storages_take_the_instance_name(tmp_path: Path) -> None:
    from flask_alicertify.storage.loader import prefix_for
    from flask_alicertify.storage.loader import table_name_for

    assert (table_name_for("alicertify"), prefix_for("alicertify")) == ("alicertify_records", "alicertify:")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for instance, table in ((None, "alicertify_records"), ("kyc", "kyc_records")):
        options = {} if instance is None else {"instance": instance}
        storage = storage_from_config("sqlalchemy", database_url=url, redis_url=None, **options)
        try:
            assert storage.table.name == table  # type: ignore[attr-defined]
        finally:
            storage.close()
    redis_storage = storage_from_config("redis", database_url=None, redis_url="redis://x:1/0", instance="kyc")
    try:
        assert redis_storage.prefix == "kyc:"  # type: ignore[attr-defined]
    finally:
        redis_storage.close()
    default_redis = storage_from_config("redis", database_url=None, redis_url="redis://x:1/0")
    try:
        assert default_redis.prefix == "alicertify:"  # type: ignore[attr-defined]
    finally:
        default_redis.close()
