"""The kit's options: their defaults (written once, here), and how the levels merge.

Options come from three places, farthest first, each overriding the one before key by key:

1. the defaults of :class:`Options`;
2. the ``alicertify_options`` fixture, a dict (``{}`` unless a ``conftest.py`` overrides it):
   the suite-wide or directory-wide form, because pytest ignores ``pytestmark`` in a conftest;
3. ``@pytest.mark.alicertify(...)`` markers on the module, the class and the test, the closest
   winning.

Only :mod:`pytest` is imported here: the plugin module imports this one at start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["DEFAULTS", "MARKER_DOC", "REMOVED", "Options", "merge_options"]


@dataclass(frozen=True)
class Options:
    """How the ``alicertify_cloud`` fixture builds its fake cloud."""

    #: The scene id the fake expects (and ``app_config`` sets).
    scene_id: str = "1000000006"
    #: Fail the test when a scripted outcome or fault was never used, or a request was rejected.
    strict: bool = True
    #: The key pair the fake checks V3 signatures against (and ``app_config`` sets).
    access_key_id: str = "LTAI5tKitAccessKeyId00001"
    access_key_secret: str = "alicertify-kit-secret"
    #: An int makes certify ids and request ids deterministic.
    seed: int | None = None


DEFAULTS = Options()

#: Options that existed once, and what to do instead.
REMOVED: Mapping[str, str] = {
    "api": (
        "the fake answers cloudauth and SAF at once, and which one your app calls is the app's own"
        " ALICERTIFY_API setting (alicertify_cloud.app_config no longer sets it): put"
        " ALICERTIFY_API='saf' in the app's config instead"
    ),
}

MARKER_DOC = (
    "alicertify(*, "
    + ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(Options))
    + "): configure the alicertify_cloud fixture for a test, a class or a module;"
    " suite-wide, override the alicertify_options fixture in conftest.py."
)


def _check(values: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(Options)}
    for name in sorted(set(values) & set(REMOVED)):
        pytest.fail(f"{where}: the {name}= option was removed: {REMOVED[name]}.", pytrace=False)
    unknown = sorted(set(values) - known)
    if unknown:
        pytest.fail(
            f"{where} got unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            pytrace=False,
        )


def merge_options(suite: Mapping[str, Any] | None, markers: Iterable[pytest.Mark]) -> Options:
    """The options for one test: ``suite`` (the fixture's dict), then ``markers`` closest first."""
    if suite is None:
        suite = {}
    if not isinstance(suite, Mapping):
        pytest.fail(
            f"the alicertify_options fixture must return a dict, got {type(suite).__name__}", pytrace=False
        )
    _check(suite, "the alicertify_options fixture")
    merged: dict[str, Any] = {}
    for marker in markers:  # closest first: a key already set by a closer marker stays
        if marker.args:
            pytest.fail("@pytest.mark.alicertify takes keyword arguments only", pytrace=False)
        _check(marker.kwargs, "@pytest.mark.alicertify")
        merged = {**marker.kwargs, **merged}
    return dataclasses.replace(DEFAULTS, **{**suite, **merged})
