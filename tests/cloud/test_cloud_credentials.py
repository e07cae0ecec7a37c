"""Where the access key comes from, and that STS tokens are sent and signed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from flask_alicertify.cloud import credentials as creds_module
from flask_alicertify.cloud import signer
from flask_alicertify.cloud.credentials import ChainCredentials
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.credentials import resolve_credentials
from flask_alicertify.cloud.errors import CredentialsMissing
from flask_alicertify.cloud.transport import RpcClient

ENV = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_explicit_values_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI_ENV")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
    provider = resolve_credentials("LTAI_EXPLICIT", "explicit-secret")
    got = provider.get()
    assert (got.access_key_id, got.access_key_secret, got.security_token) == (
        "LTAI_EXPLICIT",
        "explicit-secret",
        None,
    )


def test_env_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI_ENV")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIS-env-token")
    got = resolve_credentials().get()
    assert (got.access_key_id, got.access_key_secret, got.security_token) == (
        "LTAI_ENV",
        "env-secret",
        "CAIS-env-token",
    )


def test_half_a_key_pair_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsMissing, match="secret"):
        resolve_credentials("LTAI_ONLY_ID")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI_ENV")
    with pytest.raises(CredentialsMissing, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        resolve_credentials()


def test_nothing_configured_and_no_chain_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(creds_module, "chain_available", lambda: False)
    with pytest.raises(CredentialsMissing) as info:
        resolve_credentials()
    message = str(info.value)
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in message and "flask-alicertify[sdk]" in message


def test_falls_back_to_the_chain_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(creds_module, "chain_available", lambda: True)
    provider = resolve_credentials()
    assert isinstance(provider, ChainCredentials)
    assert provider._client is None  # nothing built yet: no APScheduler thread, no IMDS probe


def test_chain_failure_becomes_credentials_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def get_credential(self) -> Any:
            raise RuntimeError("unable to load credentials from any of the providers in the chain")

    provider = ChainCredentials()
    provider._client = Broken()
    with pytest.raises(CredentialsMissing, match="unable to load credentials"):
        provider.get()


def test_chain_values_are_passed_through() -> None:
    class Model:
        access_key_id = "STS.chain"
        access_key_secret = "chain-secret"
        security_token = "CAIS-chain"
        provider_name = "default/env"

    class Chain:
        def get_credential(self) -> Model:
            return Model()

    provider = ChainCredentials()
    provider._client = Chain()
    got = provider.get()
    assert (got.access_key_id, got.security_token, got.provider_name) == (
        "STS.chain",
        "CAIS-chain",
        "default/env",
    )


def test_importing_credentials_does_not_import_the_chain() -> None:
    code = (
        "import sys, flask_alicertify.cloud.credentials, flask_alicertify.cloud.gateways; "
        "print('alibabacloud_credentials' in sys.modules, 'alibabacloud_cloudauth20190307' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_static_credentials_repr_hides_secrets() -> None:
    text = repr(StaticCredentials("LTAI_X", "super-secret", "CAIS-token"))
    assert "super-secret" not in text and "CAIS-token" not in text and "LTAI_X" in text


def _capture(provider: Any) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Code": "200", "RequestId": "r"})

    with RpcClient(
        ["cloudauth.cn-shanghai.aliyuncs.com"], provider, transport=httpx.MockTransport(handler)
    ) as t:
        t.call("DescribeFaceVerify", "2019-03-07", query={"CertifyId": "c", "SceneId": "1"})
    return seen[0]


def test_sts_headers_are_present_and_signed() -> None:
    request = _capture(StaticCredentials("STS.NAbc", "sts-secret", "CAIS-token+/="))
    assert request.headers["x-acs-accesskey-id"] == "STS.NAbc"
    assert request.headers["x-acs-security-token"] == "CAIS-token+/="
    _, key_id, signed, sig = signer.parse_authorization(request.headers["authorization"])
    assert key_id == "STS.NAbc"
    assert "x-acs-security-token" in signed and "x-acs-accesskey-id" in signed
    # and the signature really covers the token: recompute from the wire
    headers = {name: request.headers[name] for name in signed}
    to_sign, _ = signer.string_to_sign(
        "POST", "/", dict(request.url.params), headers, request.headers["x-acs-content-sha256"]
    )
    assert signer.signature("sts-secret", to_sign) == sig
    headers["x-acs-security-token"] = "CAIS-other"
    tampered, _ = signer.string_to_sign(
        "POST", "/", dict(request.url.params), headers, request.headers["x-acs-content-sha256"]
    )
    assert signer.signature("sts-secret", tampered) != sig


def test_plain_key_sends_no_sts_headers() -> None:
    request = _capture(StaticCredentials("LTAI_PLAIN", "plain-secret"))
    assert "x-acs-security-token" not in request.headers
    assert "x-acs-accesskey-id" not in request.headers


def test_real_chain_reads_an_ini_profile(tmp_path: Any) -> None:
    """The real alibabacloud-credentials chain, in a subprocess: it reads env at import, starts threads."""
    pytest.importorskip("alibabacloud_credentials")
    ini = tmp_path / "credentials.ini"
    ini.write_text("[default]\ntype = access_key\naccess_key_id = LTAI_INI\naccess_key_secret = ini-secret\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ALIBABA_CLOUD_CREDENTIALS_FILE": str(ini),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
    }
    code = (
        "from flask_alicertify.cloud.credentials import resolve_credentials, ChainCredentials\n"
        "p = resolve_credentials(); assert isinstance(p, ChainCredentials)\n"
        "c = p.get(); print(c.access_key_id, c.access_key_secret, c.provider_name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    key_id, secret, provider_name = out.stdout.split()
    assert (key_id, secret) == ("LTAI_INI", "ini-secret")
    assert "profile" in provider_name
