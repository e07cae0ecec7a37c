"""Every documented key accepts what Flask's own config loaders produce.

``from_prefixed_env`` JSON-decodes values (a scene id arrives as an ``int``, ``true`` as ``True``,
``null`` as ``None``); ``from_file`` and ``from_object`` give natural types; ``.env`` files give
strings. The key list comes from docs/configuration.md, and the sample table must cover exactly
that list, so a new key cannot be added without being driven through the loaders here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.ext import SM2_PUBLIC_KEY

from flask_alicertify import AliCertify
from flask_alicertify.settings import Settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
SM2_KEY = SM2_PUBLIC_KEY

#: key -> [(the environment string, the Settings attribute, the expected value, other env keys)].
#: Each sample is a value as a person would write it in the environment.
SAMPLES: dict[str, list[tuple[str, str, Any, dict[str, str]]]] = {
    "ACCESS_KEY_ID": [("LTAI5tLoaderKey01", "access_key_id", "LTAI5tLoaderKey01", {})],
    "ACCESS_KEY_SECRET": [
        ("loader-secret", "access_key_secret", "loader-secret", {}),
        ("123456789012345678901234567890", "access_key_secret", "123456789012345678901234567890", {}),
    ],
    "SECURITY_TOKEN": [("CAIS-sts-token", "security_token", "CAIS-sts-token", {})],
    "SCENE_ID": [
        ("1000000006", "scene_id", "1000000006", {}),
        ('"1000000007"', "scene_id", "1000000007", {}),
    ],
    "API": [("saf", "api", "saf", {})],
    "PRODUCT_CODE": [("ID_PRO", "product_code", "ID_PRO", {})],
    "ENDPOINTS": [
        (
            '["a.example.com", "http://127.0.0.1:8080"]',
            "endpoints",
            ("a.example.com", "http://127.0.0.1:8080"),
            {},
        ),
        ("a.example.com, b.example.com", "endpoints", ("a.example.com", "b.example.com"), {}),
    ],
    "CONNECT_TIMEOUT": [("2", "connect_timeout", 2.0, {})],
    "READ_TIMEOUT": [("2.5", "read_timeout", 2.5, {})],
    "URL_PREFIX": [("/kyc", "url_prefix", "/kyc", {})],
    "STORAGE": [("redis", "storage", "redis", {"REDIS_URL": "redis://127.0.0.1:6379/0"})],
    "DATABASE_URL": [("sqlite:////tmp/loader.sqlite3", "database_url", "sqlite:////tmp/loader.sqlite3", {})],
    "SQLALCHEMY_BIND": [("records", "sqlalchemy_bind", "records", {})],
    "REDIS_URL": [("redis://127.0.0.1:6379/3", "redis_url", "redis://127.0.0.1:6379/3", {})],
    "CALLBACK_URL": [("https://api.example.com/cb", "callback_url", "https://api.example.com/cb", {})],
    "RETURN_URL": [("https://example.com/back", "return_url", "https://example.com/back", {})],
    "RETURN_URL_HOSTS": [
        ("example.com, m.example.com", "return_url_hosts", frozenset({"example.com", "m.example.com"}), {}),
        ('["example.com"]', "return_url_hosts", frozenset({"example.com"}), {}),
    ],
    "MAX_BODY_SIZE": [("4096", "max_body_size", 4096, {})],
    "LANGUAGE": [("en", "language", "en", {})],
    "ALLOW_ANONYMOUS": [("true", "allow_anonymous", True, {}), ("1", "allow_anonymous", True, {})],
    "MAX_ATTEMPTS_PER_DAY": [
        ("3", "max_attempts_per_day", 3, {}),
        ("null", "max_attempts_per_day", None, {}),
    ],
    "DESCRIBE_MIN_INTERVAL": [("0.5", "describe_min_interval", 0.5, {})],
    "UNCLAIMED_DESCRIBE_AFTER": [("0", "unclaimed_describe_after", 0.0, {})],
    "EXPIRE_GRACE": [("60", "expire_grace", 60.0, {})],
    "PII_KEY": [
        ("1234567890123456789", "pii_key", b"1234567890123456789", {}),
        ("a-random-pii-key-of-some-length", "pii_key", b"a-random-pii-key-of-some-length", {}),
    ],
    "ENCRYPT_TYPE": [("SM2", "encrypt_type", "SM2", {})],
    "SM2_PUBLIC_KEY": [(SM2_KEY, "sm2_public_key", SM2_KEY, {})],
    "DELETE_AT_ALIBABA": [("true", "delete_at_alibaba", True, {})],
    "RETENTION": [("180d", "retention", 180 * 86400.0, {}), ("3600", "retention", 3600.0, {})],
    "UPSTREAM_QPS": [("20", "upstream_qps", 20.0, {}), ("null", "upstream_qps", None, {})],
    "UPSTREAM_WAIT": [("0.25", "upstream_wait", 0.25, {})],
    "RATE_LIMIT_URL": [("redis://127.0.0.1:6379/1", "rate_limit_url", "redis://127.0.0.1:6379/1", {})],
    "OPENAPI": [("false", "openapi", False, {}), ("0", "openapi", False, {})],
    "SANDBOX": [
        ("true", "sandbox", True, {}),
        ("http://127.0.0.1:8900", "sandbox_url", "http://127.0.0.1:8900", {}),
    ],
}


def documented_keys() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"^```\{confval\}\s+ALICERTIFY_(\S+)\s*$", text, flags=re.MULTILINE)


def test_the_samples_cover_every_documented_key() -> None:
    documented = set(documented_keys())
    assert documented, "no keys found on the configuration page"
    assert set(SAMPLES) == documented, {
        "documented without a sample": documented - set(SAMPLES),
        "sampled but undocumented": set(SAMPLES) - documented,
    }


CASES = [
    pytest.param(key, raw, attr, expected, extra, id=f"{key}={raw}")
    for key, samples in SAMPLES.items()
    for raw, attr, expected, extra in samples
]


@pytest.mark.parametrize(("key", "raw", "attr", "expected", "extra"), CASES)
def test_every_key_through_from_prefixed_env(
    monkeypatch: pytest.MonkeyPatch, key: str, raw: str, attr: str, expected: Any, extra: dict[str, str]
) -> None:
    env = {"SCENE_ID": "1000000006", **extra, key: raw}
    if key == "SANDBOX":
        del env["SCENE_ID"]  # the sandbox needs none
    for name, value in env.items():
        monkeypatch.setenv(f"FLASK_ALICERTIFY_{name}", value)
    app = Flask(__name__)
    app.config.from_prefixed_env()
    assert app.config[f"ALICERTIFY_{key}"] is not None or raw == "null"
    settings = Settings.from_mapping(app.config, testing=True, secret_key="loader-test", instance_path="/i")
    assert getattr(settings, attr) == expected


def test_from_prefixed_env_really_decodes_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise of the table above: Flask hands over ints, bools and None, not strings."""
    monkeypatch.setenv("FLASK_ALICERTIFY_SCENE_ID", "1000000006")
    monkeypatch.setenv("FLASK_ALICERTIFY_OPENAPI", "false")
    monkeypatch.setenv("FLASK_ALICERTIFY_UPSTREAM_QPS", "null")
    app = Flask(__name__)
    app.config.from_prefixed_env()
    assert app.config["ALICERTIFY_SCENE_ID"] == 1000000006
    assert app.config["ALICERTIFY_OPENAPI"] is False
    assert app.config["ALICERTIFY_UPSTREAM_QPS"] is None


def test_the_issue_example_starts_an_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FLASK_ALICERTIFY_SCENE_ID=1000000006`` once raised 'must be a string, got int' in init_app."""
    monkeypatch.setenv("FLASK_ALICERTIFY_SCENE_ID", "1000000006")
    monkeypatch.setenv("FLASK_ALICERTIFY_PII_KEY", "12345678901234567890")
    monkeypatch.setenv("FLASK_ALICERTIFY_ACCESS_KEY_ID", "LTAI5tLoaderKey01")
    monkeypatch.setenv("FLASK_ALICERTIFY_ACCESS_KEY_SECRET", "loader-secret")
    monkeypatch.setenv("FLASK_ALICERTIFY_ALLOW_ANONYMOUS", "true")
    monkeypatch.setenv("FLASK_TESTING", "true")
    app = Flask(__name__)
    app.config.from_prefixed_env()
    ext = AliCertify(app)
    try:
        settings = ext.state(app).settings
        assert (settings.scene_id, settings.pii_key) == ("1000000006", b"12345678901234567890")
    finally:
        ext.close(app)


def _natural_config() -> dict[str, Any]:
    return {
        "ALICERTIFY_SCENE_ID": 1000000006,
        "ALICERTIFY_ENDPOINTS": ["a.example.com", "b.example.com"],
        "ALICERTIFY_CONNECT_TIMEOUT": 2,
        "ALICERTIFY_READ_TIMEOUT": 2.5,
        "ALICERTIFY_MAX_ATTEMPTS_PER_DAY": 3,
        "ALICERTIFY_OPENAPI": False,
        "ALICERTIFY_PII_KEY": "a-random-pii-key-of-some-length",
        "ALICERTIFY_RETENTION": "180d",
        "ALICERTIFY_UPSTREAM_QPS": False,
        "ALICERTIFY_RETURN_URL_HOSTS": ["example.com"],
    }


def _check_natural(settings: Settings) -> None:
    assert settings.scene_id == "1000000006"
    assert settings.endpoints == ("a.example.com", "b.example.com")
    assert (settings.connect_timeout, settings.read_timeout) == (2.0, 2.5)
    assert settings.max_attempts_per_day == 3
    assert settings.openapi is False
    assert settings.retention == 180 * 86400.0
    assert settings.upstream_qps is None  # TOML has no null: false switches the guard off
    assert settings.return_url_hosts == frozenset({"example.com"})


def test_from_file_toml_and_json(tmp_path: Path) -> None:
    natural = _natural_config()
    toml_lines = [f"{key} = {json.dumps(value)}" for key, value in natural.items()]
    (tmp_path / "config.toml").write_text("\n".join(toml_lines) + "\n", encoding="utf-8")
    (tmp_path / "config.json").write_text(json.dumps(natural), encoding="utf-8")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    for name, loader in (("config.toml", tomllib.load), ("config.json", json.load)):
        app = Flask(__name__)
        text = name.endswith(".json")
        assert app.config.from_file(str(tmp_path / name), load=loader, text=text)
        _check_natural(Settings.from_mapping(app.config, testing=True, secret_key="k"))


def test_from_object_and_from_pyfile(tmp_path: Path) -> None:
    natural = _natural_config()
    source = "\n".join(f"{key} = {value!r}" for key, value in natural.items())
    (tmp_path / "settings.py").write_text(source + "\n", encoding="utf-8")
    app = Flask(__name__)
    assert app.config.from_pyfile(str(tmp_path / "settings.py"))
    _check_natural(Settings.from_mapping(app.config, testing=True, secret_key="k"))

    class Config:
        pass

    for key, value in natural.items():
        setattr(Config, key, value)
    other = Flask(__name__)
    other.config.from_object(Config)
    _check_natural(Settings.from_mapping(other.config, testing=True, secret_key="k"))


def test_dotenv_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``.env`` file as ``flask run`` loads it: plain strings read straight from os.environ."""
    dotenv = pytest.importorskip("dotenv")
    (tmp_path / ".env").write_text(
        "ALICERTIFY_SCENE_ID=1000000006\nALICERTIFY_OPENAPI=off\nALICERTIFY_UPSTREAM_QPS=none\n"
        "ALICERTIFY_RETURN_URL_HOSTS=example.com, m.example.com\nALICERTIFY_RETENTION=12h\n",
        encoding="utf-8",
    )
    values = dotenv.dotenv_values(tmp_path / ".env")
    settings = Settings.from_mapping(values, testing=True, secret_key="k")
    assert settings.scene_id == "1000000006"
    assert settings.openapi is False
    assert settings.upstream_qps is None
    assert settings.return_url_hosts == frozenset({"example.com", "m.example.com"})
    assert settings.retention == 12 * 3600.0


FACTORY = textwrap.dedent(
    """
    from flask import Flask
    from flask_alicertify import AliCertify


    def create_app():
        app = Flask(__name__)
        app.config.from_prefixed_env()
        AliCertify(app, user_loader=lambda: None)
        return app
    """
)


def _flask_help(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "loader_app.py").write_text(FACTORY, encoding="utf-8")
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "flask", "--app", "loader_app:create_app", "--help"]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env={**base, **env}, timeout=60
    )


def test_flask_help_with_env_config_prints_no_traceback(tmp_path: Path) -> None:
    out = _flask_help(
        tmp_path,
        {
            "FLASK_SECRET_KEY": "loader-help",
            "FLASK_TESTING": "true",
            "FLASK_ALICERTIFY_SCENE_ID": "1000000006",
            "FLASK_ALICERTIFY_PII_KEY": "12345678901234567890",
            "FLASK_ALICERTIFY_ACCESS_KEY_ID": "LTAI5tLoaderKey01",
            "FLASK_ALICERTIFY_ACCESS_KEY_SECRET": "loader-secret",
        },
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "alicertify" in out.stdout


def test_flask_help_with_a_wrong_key_names_it_without_a_traceback(tmp_path: Path) -> None:
    out = _flask_help(
        tmp_path,
        {
            "FLASK_SECRET_KEY": "loader-help",
            "FLASK_TESTING": "true",
            "FLASK_ALICERTIFY_SCENE_ID": "scene-one",
        },
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert "ALICERTIFY_SCENE_ID must be a whole number" in out.stderr
