"""Fixtures of the extension tests; the helpers live in ``support.ext``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.ext import Harness
from support.ext import harness


@pytest.fixture
def h() -> Iterator[Harness]:
    """An app with AliCertify on MemoryStorage and the fake cloud; ``X-User`` is the user."""
    with harness() as built:
        yield built
