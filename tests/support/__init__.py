"""Helpers shared by the test suite, importable as ``support.*`` (pytest's ``pythonpath``).

PostgreSQL, Redis, Node and Chromium are real on the machines this suite runs on. When one is
missing locally the tests that need it skip with the reason; under ``CI=true`` the same miss is
a failure, because CI promises every service and a skipped test there would hide a defect.
"""

from __future__ import annotations

import os

import pytest

#: True when the suite runs under CI, where every prerequisite must be present.
IN_CI = os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally; under ``CI=true`` a missing prerequisite fails the test instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run)", pytrace=False)
    pytest.skip(reason)
