"""Storage fixtures: ``backend``/``storage`` parametrised over every backend (see the helper module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alicertify_storage_backends import BACKENDS
from alicertify_storage_backends import Backend
from alicertify_storage_backends import open_test_backend

from flask_alicertify.storage import Storage


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_test_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def storage(backend: Backend) -> Storage:
    return backend.storage
