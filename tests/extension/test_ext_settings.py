"""``Settings.from_mapping``: every key of docs/configuration.md, its default, and errors naming the key."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from typing import Any

import pytest

from flask_alicertify.cloud.base import DEFAULT_CLOUDAUTH_ENDPOINTS
from flask_alicertify.cloud.base import DEFAULT_SAF_ENDPOINTS
from flask_alicertify.errors import ConfigurationError
from flask_alicertify.settings import PII_KEY_LABEL
from flask_alicertify.settings import Settings


def load(config: dict[str, Any] | None = None, **kw: Any) -> Settings:
    base: dict[str, Any] = {"ALICERTIFY_SCENE_ID": "1000000006"}
    base.update(config or {})
    kw.setdefault("secret_key", "s3cret")
    kw.setdefault("testing", True)
    return Settings.from_mapping(base, **kw)


def error_for(config: dict[str, Any], **kw: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        load(config, **kw)
    return info.value


def test_defaults(tmp_path: Any) -> None:
    s = load(instance_path=str(tmp_path), testing=False)
    assert (s.access_key_id, s.access_key_secret, s.security_token) == (None, None, None)
    assert s.scene_id == "1000000006"
    assert s.api == "cloudauth"
    assert s.product_code == "ID_PRO"
    assert s.endpoints == DEFAULT_CLOUDAUTH_ENDPOINTS
    assert (s.connect_timeout, s.read_timeout) == (5.0, 10.0)
    assert s.url_prefix == "/alicertify"
    assert s.storage == "sqlalchemy"
    assert s.database_url == "sqlite:///" + os.path.join(str(tmp_path), "alicertify.sqlite3")
    assert s.database_url_is_default
    assert s.redis_url is None
    assert (s.callback_url, s.return_url, s.return_url_hosts) == (None, None, frozenset())
    assert s.max_attempts_per_day == 5
    assert s.describe_min_interval == 2.0
    assert s.pii_key == hmac.new(b"s3cret", PII_KEY_LABEL, hashlib.sha256).digest()
    assert s.sandbox is False
    assert s.allow_anonymous is False
    assert s.max_body_size == 16 * 1024
    assert s.language == "zh"
    assert s.expire_after == 30 * 60 + 300


def test_storage_defaults_to_memory_when_testing() -> None:
    assert load(testing=True).storage == "memory"
    assert (
        load({"ALICERTIFY_STORAGE": "redis", "ALICERTIFY_REDIS_URL": "redis://x"}, testing=True).storage
        == "redis"
    )


def test_scene_id_is_required() -> None:
    e = error_for({"ALICERTIFY_SCENE_ID": None})
    assert str(e) == "ALICERTIFY_SCENE_ID is required (the scene id from the Alibaba Cloud console)"
    assert e.key == "ALICERTIFY_SCENE_ID"
    assert error_for({"ALICERTIFY_SCENE_ID": "  "}).key == "ALICERTIFY_SCENE_ID"


def test_errors_use_the_instance_prefix() -> None:
    with pytest.raises(ConfigurationError, match=r"^KYC_SCENE_ID is required") as info:
        Settings.from_mapping({"ALICERTIFY_SCENE_ID": "1"}, prefix="KYC_", secret_key="k")
    assert info.value.key == "KYC_SCENE_ID"


def test_endpoints_accept_list_or_comma_string() -> None:
    assert load({"ALICERTIFY_ENDPOINTS": ["a.example.com", "http://127.0.0.1:8080"]}).endpoints == (
        "a.example.com",
        "http://127.0.0.1:8080",
    )
    assert load({"ALICERTIFY_ENDPOINTS": " a.example.com , b.example.com "}).endpoints == (
        "a.example.com",
        "b.example.com",
    )
    assert load({"ALICERTIFY_API": "saf"}).endpoints == DEFAULT_SAF_ENDPOINTS
    assert load({"ALICERTIFY_API": "SDK"}).api == "sdk"


def test_strings_from_the_environment_are_parsed() -> None:
    s = load(
        {
            "ALICERTIFY_ALLOW_ANONYMOUS": "true",
            "ALICERTIFY_MAX_ATTEMPTS_PER_DAY": "3",
            "ALICERTIFY_DESCRIBE_MIN_INTERVAL": "0.5",
            "ALICERTIFY_CONNECT_TIMEOUT": "2",
            "ALICERTIFY_RETURN_URL_HOSTS": "Example.com, www.aliyun.com",
            "ALICERTIFY_SANDBOX": "off",
        }
    )
    assert s.allow_anonymous is True
    assert s.max_attempts_per_day == 3
    assert s.describe_min_interval == 0.5
    assert s.connect_timeout == 2.0
    assert s.return_url_hosts == frozenset({"example.com", "www.aliyun.com"})
    assert s.sandbox is False


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("API", "rest", "must be one of"),
        ("CONNECT_TIMEOUT", "abc", "must be a number"),
        ("CONNECT_TIMEOUT", 0, "greater than 0"),
        ("READ_TIMEOUT", -1, "greater than 0"),
        ("READ_TIMEOUT", float("nan"), "must be a number"),
        ("DESCRIBE_MIN_INTERVAL", -1, "at least 0"),
        ("MAX_ATTEMPTS_PER_DAY", 0, "at least 1"),
        ("MAX_ATTEMPTS_PER_DAY", "many", "whole number"),
        ("MAX_ATTEMPTS_PER_DAY", 2.5, "whole number"),
        ("ALLOW_ANONYMOUS", "maybe", "True or False"),
        ("SANDBOX", 2, "True or False"),
        ("ENDPOINTS", [], "at least one endpoint"),
        ("ENDPOINTS", 5, "list or a comma-separated string"),
        ("ENDPOINTS", ["ftp://x"], "host names or http(s) URLs"),
        ("ENDPOINTS", ["a.com/path"], "host names or http(s) URLs"),
        ("CALLBACK_URL", "http://app.example.com/cb", "https://"),
        ("CALLBACK_URL", "/alicertify/callback", "https://"),
        ("RETURN_URL", "not a url", "https://"),
        ("RETURN_URL_HOSTS", ["https://example.com"], "bare host names"),
        ("RETURN_URL_HOSTS", ["example.com:443"], "bare host names"),
        ("URL_PREFIX", "alicertify", "start with '/'"),
        ("URL_PREFIX", 5, "must be a string"),
        ("SCENE_ID", 1000000006, "must be a string"),
        ("PII_KEY", "short", "at least 16 bytes"),
        ("PII_KEY", 12345, "string or bytes"),
        ("LANGUAGE", "fr", "must be one of"),
        ("MAX_BODY_SIZE", 10, "at least 256"),
        ("EXPIRE_GRACE", -5, "at least 0"),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any, fragment: str) -> None:
    e = error_for({f"ALICERTIFY_{key}": value})
    assert e.key == f"ALICERTIFY_{key}"
    assert str(e).startswith(f"ALICERTIFY_{key} ")
    assert fragment in str(e)


def test_storage_needs_its_url() -> None:
    e = error_for({"ALICERTIFY_STORAGE": "redis"})
    assert e.key == "ALICERTIFY_REDIS_URL"
    e = error_for({"ALICERTIFY_STORAGE": "sqlalchemy"}, instance_path=None)
    assert e.key == "ALICERTIFY_DATABASE_URL"


@pytest.mark.parametrize(
    ("spec", "key"), [("Redis", "ALICERTIFY_REDIS_URL"), (" SQLAlchemy ", "ALICERTIFY_DATABASE_URL")]
)
def test_storage_names_are_case_insensitive(spec: str, key: str) -> None:
    assert error_for({"ALICERTIFY_STORAGE": spec}, instance_path=None).key == key
    urls = {"ALICERTIFY_REDIS_URL": "redis://x", "ALICERTIFY_DATABASE_URL": "sqlite://"}
    assert load({"ALICERTIFY_STORAGE": spec, **urls}).storage == spec.strip().lower()


def test_other_storage_specs_are_kept() -> None:
    assert load({"ALICERTIFY_STORAGE": " package.module:Class "}).storage == "package.module:Class"
    instance = object()
    assert load({"ALICERTIFY_STORAGE": instance}).storage is instance


def test_pii_key_needs_secret_key_or_explicit_key() -> None:
    e = error_for({}, secret_key=None)
    assert e.key == "ALICERTIFY_PII_KEY"
    assert "SECRET_KEY" in str(e)
    explicit = load({"ALICERTIFY_PII_KEY": "0123456789abcdef-pii"}, secret_key=None)
    assert explicit.pii_key == b"0123456789abcdef-pii"
    derived = load(secret_key=b"another")
    assert derived.pii_key not in (b"another", load().pii_key)


def test_sandbox_needs_no_scene_but_refuses_real_credentials() -> None:
    s = Settings.from_mapping({"ALICERTIFY_SANDBOX": True}, secret_key="k", testing=True)
    assert s.sandbox and s.scene_id is None
    e = error_for({"ALICERTIFY_SANDBOX": True, "ALICERTIFY_ACCESS_KEY_ID": "LTAI5tReal"})
    assert e.key == "ALICERTIFY_SANDBOX"
    # Sandbox demos may call back over plain http.
    assert load(
        {"ALICERTIFY_SANDBOX": True, "ALICERTIFY_CALLBACK_URL": "http://127.0.0.1:5000/cb"}
    ).callback_url


def test_max_attempts_none_disables_the_limit() -> None:
    assert load({"ALICERTIFY_MAX_ATTEMPTS_PER_DAY": None}).max_attempts_per_day is None


def test_settings_are_frozen_and_hide_secrets() -> None:
    s = load({"ALICERTIFY_ACCESS_KEY_ID": "LTAI5tId", "ALICERTIFY_ACCESS_KEY_SECRET": "very-secret-value"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.api = "saf"  # type: ignore[misc]
    assert "very-secret-value" not in repr(s)
    assert repr(s.pii_key) not in repr(s)
