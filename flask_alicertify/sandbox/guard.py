"""The guard: sandbox mode refuses to start where real Alibaba Cloud credentials are reachable.

Sandbox mode simulates verifications and proves nothing about anyone, so an app that turns it on
by mistake in production would mark users verified who never were. The one reliable sign of
production is a real access key: if any source the gateway (or Alibaba's credentials chain,
``alibabacloud_credentials``) would read holds one, this is not a sandbox. The guard looks at
every such source and names the first it finds, rather than warning in a log nobody reads:

* the instance's own ``{prefix}ACCESS_KEY_ID`` / ``_SECRET`` / ``_SECURITY_TOKEN``;
* the environment variables the chain and :mod:`flask_alicertify.cloud.credentials` read:
  access key, STS token, RAM role / OIDC (``ALIBABA_CLOUD_ROLE_ARN``, ``_OIDC_PROVIDER_ARN``,
  ``_OIDC_TOKEN_FILE``), a credentials URI, an ECS RAM role name;
* the chain's files: ``ALIBABA_CLOUD_CREDENTIALS_FILE`` or ``~/.alibabacloud/credentials.ini``
  (and the older ``~/.alibabacloud/credentials``), and the Alibaba Cloud CLI's
  ``~/.aliyun/config.json`` unless ``ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true`` turns that off;
* ``{prefix}SCENE_ID``: the sandbox needs none, so a scene id means the app is set up for Alibaba.

Not probed: an ECS instance's metadata service, whose role credentials the chain can fetch with no
configuration at all. Probing it would cost a network round trip at every start; the sandbox's
gateway never asks the chain, so nothing can reach Alibaba with them from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

#: Environment variables that hold credentials, or point the chain at some.
CREDENTIAL_VARIABLES: tuple[str, ...] = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_CREDENTIALS_URI",
    "ALIBABA_CLOUD_ECS_METADATA",
)
CREDENTIALS_FILE_VARIABLE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
CLI_PROFILE_DISABLED_VARIABLE = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"

#: The instance's own settings that mean "this app talks to Alibaba".
SETTING_NAMES: tuple[str, ...] = ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SECURITY_TOKEN", "SCENE_ID")


def home(environ: Mapping[str, str]) -> Path:
    """The home folder the chain reads its files from (``HOME``, as ``alibabacloud_credentials``)."""
    return Path(environ.get("HOME") or environ.get("HOMEPATH") or os.path.expanduser("~"))


def credential_files(environ: Mapping[str, str]) -> list[tuple[Path, str]]:
    """Each file the chain would read credentials from, with what makes it read it."""
    found: list[tuple[Path, str]] = []
    explicit = environ.get(CREDENTIALS_FILE_VARIABLE, "").strip()
    if explicit:
        found.append((Path(explicit).expanduser(), CREDENTIALS_FILE_VARIABLE))
    base = home(environ)
    found.append((base / ".alibabacloud" / "credentials.ini", "the credentials chain's profile file"))
    found.append((base / ".alibabacloud" / "credentials", "the credentials chain's profile file"))
    if environ.get(CLI_PROFILE_DISABLED_VARIABLE, "").strip().lower() != "true":
        found.append((base / ".aliyun" / "config.json", "the Alibaba Cloud CLI profile"))
    return found


def find_real_credentials(settings: Any, environ: Mapping[str, str] | None = None) -> str | None:
    """What makes this look like production, in words (no secret values), or None.

    ``settings`` is the instance's :class:`~flask_alicertify.settings.Settings` (read by
    attribute: ``access_key_id``, ``access_key_secret``, ``security_token``, ``scene_id``).
    """
    env = os.environ if environ is None else environ
    for name in SETTING_NAMES:
        if getattr(settings, name.lower(), None):
            key = settings.key(name)
            if name == "SCENE_ID":
                return f"{key} is set (the sandbox needs no scene id; a scene id is for Alibaba)"
            return f"{key} is set"
    for variable in CREDENTIAL_VARIABLES:
        if env.get(variable, "").strip():
            return f"the environment variable {variable} is set"
    for path, why in credential_files(env):
        if path.is_file():
            return f"{path} exists ({why})"
    return None


def check(settings: Any, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigurationError` on ``{prefix}SANDBOX`` when real credentials are reachable."""
    found = find_real_credentials(settings, environ)
    if found is None:
        return
    raise ConfigurationError(
        settings.key("SANDBOX"),
        f"is on, but {found}: real Alibaba Cloud credentials are reachable, so this looks like "
        "production. Sandbox verifications prove nothing about anyone; turn the sandbox off here, "
        "or run it where no credentials are configured",
    )
