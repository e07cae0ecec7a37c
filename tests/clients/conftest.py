"""Fixtures of the real-client tests; the helpers live in ``support.clients``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.clients import Backend
from support.clients import serve_demo_backend


@pytest.fixture(scope="session")
def demo_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """examples/backend in sandbox mode on a free loopback port, shared by Node and Chromium tests."""
    with serve_demo_backend(tmp_path_factory.mktemp("demo-instance")) as backend:
        yield backend
