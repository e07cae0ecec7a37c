"""docs/configuration.md documents exactly the ``ALICERTIFY_*`` keys the settings code knows.

The settings module has no list of its keys, so two independent readings of the code are compared
with the page:

* the keys :meth:`Settings.from_mapping` actually *reads*, recorded by handing it a mapping that
  notes every lookup (this is what decides behaviour, so it is the primary check);
* the fields of the :class:`Settings` dataclass mapped to ``ALICERTIFY_<FIELD>``, minus the
  fields that are derived rather than configured (a new field must either get a key and a docs
  entry, or be added to ``DERIVED_FIELDS`` here on purpose).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flask_alicertify.settings as settings_module

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
PREFIX = "ALICERTIFY_"
#: Settings fields that no config key sets directly.
DERIVED_FIELDS = frozenset({"prefix", "database_url_is_default", "sandbox_url"})


def documented_keys() -> list[str]:
    """Keys declared with the ``confval`` directive on the configuration page, in page order."""
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"^```\{confval\}\s+(\S+)\s*$", text, flags=re.MULTILINE)


class RecordingConfig(Mapping[str, Any]):
    """A config that answers from ``values`` and remembers every key anyone asked for."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.values.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def keys_read_by_settings() -> set[str]:
    config = RecordingConfig({f"{PREFIX}SANDBOX": True})
    settings_module.Settings.from_mapping(
        config, prefix=PREFIX, instance_path="/nonexistent/instance", testing=True, secret_key="docs-test"
    )
    return {key for key in config.asked if key.startswith(PREFIX)}


def test_the_page_declares_keys_once() -> None:
    keys = documented_keys()
    assert keys, f"no ```{{confval}} blocks found in {PAGE}"
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"documented more than once: {duplicates}"
    assert all(k.startswith(PREFIX) for k in keys), keys


def test_documented_keys_are_the_keys_settings_reads() -> None:
    documented = set(documented_keys())
    read = keys_read_by_settings()
    assert documented == read, (
        f"undocumented keys (add them to {PAGE.name}): {sorted(read - documented)}; "
        f"documented keys the code never reads (remove or fix them): {sorted(documented - read)}"
    )


def test_documented_keys_match_the_settings_fields() -> None:
    fields = {f.name for f in dataclasses.fields(settings_module.Settings)} - DERIVED_FIELDS
    from_fields = {PREFIX + name.upper() for name in fields}
    documented = set(documented_keys())
    assert documented == from_fields, (
        f"Settings fields without a documented key: {sorted(from_fields - documented)}; "
        f"documented keys without a Settings field: {sorted(documented - from_fields)}"
    )


def test_documented_defaults_match_the_code() -> None:
    """Spot-check the defaults the page states in code form against a default Settings."""
    text = PAGE.read_text(encoding="utf-8")
    entries = dict(
        re.findall(r"^```\{confval\}\s+(\S+)\s*\n(?::type:.*\n)?:default:\s*(.*)$", text, re.MULTILINE)
    )
    settings = settings_module.Settings.from_mapping(
        {f"{PREFIX}SANDBOX": True}, prefix=PREFIX, instance_path="/i", testing=False, secret_key="s"
    )
    for key, default in entries.items():
        literal = re.fullmatch(r"`([^`]+)`", default.strip())
        if literal is None:
            continue  # prose defaults ("derived from SECRET_KEY") are reviewed by eye
        value = getattr(settings, key[len(PREFIX) :].lower())
        if key == f"{PREFIX}SANDBOX":
            continue  # this check turns it on
        text_value = literal.group(1)
        if "<" in text_value:
            continue  # a template such as sqlite:///<instance_path>/...
        if isinstance(value, str):
            assert text_value == f'"{value}"', f"{key}: documented {text_value}, code {value!r}"
        elif isinstance(value, bool) or value is None:
            assert text_value == repr(value), f"{key}: documented {text_value}, code {value!r}"
        elif isinstance(value, (int, float)):
            assert float(text_value) == float(value), f"{key}: documented {text_value}, code {value!r}"
        elif isinstance(value, (frozenset, tuple)) and not value:
            assert text_value == "[]", f"{key}: documented {text_value}, code {value!r}"
