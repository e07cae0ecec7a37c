"""The guard on its own: every source of real credentials it looks at, and what it says.

tests/extension/test_ext_sandbox.py runs the same refusals through ``AliCertify.init_app``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flask_alicertify.errors import ConfigurationError
from flask_alicertify.sandbox import guard


def settings(**values: Any) -> Any:
    fields = {"access_key_id": None, "access_key_secret": None, "security_token": None, "scene_id": None}
    fields.update(values)
    return SimpleNamespace(key=lambda name: "ALICERTIFY_" + name, **fields)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def env(home: Path, **variables: str) -> dict[str, str]:
    return {"HOME": str(home), **variables}


def test_nothing_reachable_passes(home: Path) -> None:
    assert guard.find_real_credentials(settings(), env(home)) is None
    guard.check(settings(), env(home))


@pytest.mark.parametrize(
    ("field", "key"),
    [
        ("access_key_id", "ALICERTIFY_ACCESS_KEY_ID"),
        ("access_key_secret", "ALICERTIFY_ACCESS_KEY_SECRET"),
        ("security_token", "ALICERTIFY_SECURITY_TOKEN"),
        ("scene_id", "ALICERTIFY_SCENE_ID"),
    ],
)
def test_the_instances_own_settings(home: Path, field: str, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        guard.check(settings(**{field: "value-that-is-never-shown"}), env(home))
    assert info.value.key == "ALICERTIFY_SANDBOX"
    assert key in str(info.value)
    assert "value-that-is-never-shown" not in str(info.value)


@pytest.mark.parametrize("variable", guard.CREDENTIAL_VARIABLES)
def test_each_environment_variable(home: Path, variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        guard.check(settings(), env(home, **{variable: "LTAI5tSecretValue"}))
    assert variable in str(info.value) and "LTAI5tSecretValue" not in str(info.value)
    assert guard.find_real_credentials(settings(), env(home, **{variable: "   "})) is None


@pytest.mark.parametrize(
    "relative", [".alibabacloud/credentials.ini", ".alibabacloud/credentials", ".aliyun/config.json"]
)
def test_each_profile_file_in_home(home: Path, relative: str) -> None:
    path = home / relative
    path.parent.mkdir(parents=True)
    path.write_text("[default]\ntype = access_key\naccess_key_id = LTAI5tX\naccess_key_secret = s\n")
    found = guard.find_real_credentials(settings(), env(home))
    assert found is not None and str(path) in found


def test_the_credentials_file_variable(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("creds") / "my.ini"
    variables = env(home, ALIBABA_CLOUD_CREDENTIALS_FILE=str(elsewhere))
    assert guard.find_real_credentials(settings(), variables) is None  # named, but not there
    elsewhere.write_text("[default]\n")
    found = guard.find_real_credentials(settings(), variables)
    assert found is not None and "ALIBABA_CLOUD_CREDENTIALS_FILE" in found and str(elsewhere) in found


def test_the_cli_profile_is_not_reachable_when_the_chain_is_told_to_skip_it(home: Path) -> None:
    (home / ".aliyun").mkdir()
    (home / ".aliyun" / "config.json").write_text("{}")
    assert guard.find_real_credentials(settings(), env(home)) is not None
    skip = env(home, ALIBABA_CLOUD_CLI_PROFILE_DISABLED="true")
    assert guard.find_real_credentials(settings(), skip) is None


#: Variables of the chain that tune it but name no credential by themselves.
NOT_CREDENTIALS = {
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_ROLE_SESSION_NAME",
    "ALIBABA_CLOUD_IMDSV1_DISABLED",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
    "ALIBABA_CLOUD_STS_REGION",
    "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
    "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",  # a file: checked as one (it must exist)
}


def test_every_variable_the_installed_chain_reads_is_checked() -> None:
    """A new credentials variable in a later alibabacloud-credentials release fails this test."""
    auth_util = pytest.importorskip("alibabacloud_credentials.utils.auth_util")
    read = set(re.findall(r"ALIBABA_CLOUD_[A-Z0-9_]+", Path(auth_util.__file__).read_text()))
    assert read >= {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_CREDENTIALS_FILE"}
    assert read - NOT_CREDENTIALS <= set(guard.CREDENTIAL_VARIABLES)
