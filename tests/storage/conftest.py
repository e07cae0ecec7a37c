"""Storage fixtures: ``backend``/``storage`` parametrised over every backend (see the helper module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.storage import BACKENDS
from support.storage import Backend
from support.storage import open_test_backend

from flask_alicertify.storage import Storage


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_test_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def storage(backend: Backend) -> Storage:
    return backend.storage
