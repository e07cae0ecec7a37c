"""``Settings.from_mapping``: every key of docs/configuration.md, its default, and errors naming the key."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from typing import Any

import pytest
from support.ext import SM2_PUBLIC_KEY

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
    assert (s.sandbox_url, s.sqlalchemy_bind, s.encrypt_type) == (None, None, None)
    assert s.sm2_public_key == "02cd77e007bdc86eeaf9a479ba7a2c22bc0a517ccb3a6975c3f94b4ac93347dea6"
    assert (s.delete_at_alibaba, s.retention) == (False, None)
    assert (s.upstream_qps, s.upstream_wait, s.rate_limit_url) == (50.0, 1.0, None)


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
        ("SCENE_ID", "scene-1", "whole number"),
        ("SCENE_ID", -5, "whole number"),
        ("SCENE_ID", True, "whole number"),
        ("SCENE_ID", 1.5, "whole number"),
        ("SCENE_ID", 2**63, "whole number"),
        ("PII_KEY", "short", "at least 16 bytes"),
        ("PII_KEY", 12345, "at least 16 bytes"),
        ("PII_KEY", 1.5e20, "quote the value"),
        ("PII_KEY", ["k"] * 20, "string or bytes"),
        ("ACCESS_KEY_SECRET", 1.5, "quote the value"),
        ("SANDBOX", "ftp://sandbox", "sandbox server's http(s) URL"),
        ("SANDBOX", "http://", "sandbox server's http(s) URL"),
        ("ENCRYPT_TYPE", "AES", '"SM2"'),
        ("SM2_PUBLIC_KEY", "05" + "a" * 64, "hex SM2 public key"),
        ("SM2_PUBLIC_KEY", "02" + "a" * 60, "hex SM2 public key"),
        ("SM2_PUBLIC_KEY", "04" + "ab" * 64, "not a point on sm2p256v1"),
        ("RETENTION", "soon", "duration such as 180d"),
        ("RETENTION", -1, "positive duration"),
        ("RETENTION", "0d", "positive duration"),
        ("UPSTREAM_QPS", 0, "greater than 0"),
        ("UPSTREAM_QPS", "fast", "must be a number"),
        ("UPSTREAM_WAIT", -1, "at least 0"),
        ("RATE_LIMIT_URL", "localhost:6379", "redis://"),
        ("DELETE_AT_ALIBABA", "sometimes", "True or False"),
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


def test_secrets_are_never_repeated_in_errors() -> None:
    for key in ("ACCESS_KEY_SECRET", "SECURITY_TOKEN", "PII_KEY"):
        e = error_for({f"ALICERTIFY_{key}": 98765.4321})
        assert "98765" not in str(e)


def test_delete_at_alibaba_is_refused_with_saf() -> None:
    e = error_for({"ALICERTIFY_API": "saf", "ALICERTIFY_DELETE_AT_ALIBABA": True})
    assert e.key == "ALICERTIFY_DELETE_AT_ALIBABA"
    assert "SAF" in str(e) and "documents no deletion" in str(e)
    assert load({"ALICERTIFY_API": "cloudauth", "ALICERTIFY_DELETE_AT_ALIBABA": True}).delete_at_alibaba
    assert not load({"ALICERTIFY_API": "saf", "ALICERTIFY_DELETE_AT_ALIBABA": False}).delete_at_alibaba


def test_sandbox_is_a_flag_or_the_shared_server_url() -> None:
    flag = Settings.from_mapping({"ALICERTIFY_SANDBOX": "on"}, secret_key="k", testing=True)
    assert (flag.sandbox, flag.sandbox_url) == (True, None)
    shared = Settings.from_mapping(
        {"ALICERTIFY_SANDBOX": " http://127.0.0.1:8900/ "}, secret_key="k", testing=True
    )
    assert (shared.sandbox, shared.sandbox_url) == (True, "http://127.0.0.1:8900")
    off = load({"ALICERTIFY_SANDBOX": 0})
    assert (off.sandbox, off.sandbox_url) == (False, None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("180d", 180 * 86400.0),
        ("12h", 43200.0),
        ("90m", 5400.0),
        ("2w", 1209600.0),
        ("3600", 3600.0),
        (3600, 3600.0),
        (7.5, 7.5),
        (None, None),
        (False, None),
        ("off", None),
        ("", None),
    ],
)
def test_retention_takes_durations_and_seconds(value: Any, seconds: float | None) -> None:
    assert load({"ALICERTIFY_RETENTION": value}).retention == seconds


@pytest.mark.parametrize(
    ("value", "qps"), [(None, None), (False, None), ("None", None), ("off", None), (20, 20.0), ("12.5", 12.5)]
)
def test_upstream_qps_none_or_off_disables_the_guard(value: Any, qps: float | None) -> None:
    assert load({"ALICERTIFY_UPSTREAM_QPS": value}).upstream_qps == qps


def test_sm2_settings() -> None:
    key = SM2_PUBLIC_KEY.upper()
    s = load({"ALICERTIFY_ENCRYPT_TYPE": "sm2", "ALICERTIFY_SM2_PUBLIC_KEY": key})
    assert (s.encrypt_type, s.sm2_public_key) == ("SM2", key.lower())
    assert load({"ALICERTIFY_ENCRYPT_TYPE": None}).encrypt_type is None


def test_parse_duration_is_shared_with_the_cli() -> None:
    from datetime import timedelta

    from flask_alicertify.config_values import parse_duration

    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration(" 1.5h ") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("ten minutes")


def test_an_empty_string_means_unset() -> None:
    s = load(
        {"ALICERTIFY_OPENAPI": "", "ALICERTIFY_MAX_ATTEMPTS_PER_DAY": " ", "ALICERTIFY_UPSTREAM_WAIT": ""}
    )
    assert (s.openapi, s.max_attempts_per_day, s.upstream_wait) == (True, 5, 1.0)
    assert load({"ALICERTIFY_URL_PREFIX": ""}).url_prefix == ""  # the one exception: the root


def test_init_app_errors_are_configuration_errors_the_flask_cli_prints_as_one_line() -> None:
    from flask import Flask
    from flask.cli import NoAppException

    from flask_alicertify import AliCertify

    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", ALICERTIFY_SCENE_ID="not-digits", ALICERTIFY_ALLOW_ANONYMOUS=True)
    with pytest.raises(ConfigurationError) as info:
        AliCertify(app)
    assert isinstance(info.value, NoAppException)
    assert info.value.key == "ALICERTIFY_SCENE_ID"
    assert info.value.format_message() == str(info.value)
    assert str(info.value).startswith("ALICERTIFY_SCENE_ID must be a whole number")
