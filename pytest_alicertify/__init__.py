"""pytest plugin: simulate Alibaba Cloud ID verification end to end, with no account.

The plugin module (:mod:`pytest_alicertify.plugin`) is registered through the ``pytest11`` entry
point and imports nothing heavy: Flask, httpx and pytest-httpx are only imported when a test
asks for one of the fixtures, so installing the kit never slows down or breaks other suites.
"""

from __future__ import annotations

__all__ = ["CASES", "Case", "Expected", "FlowResult", "run_flow"]

from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from .cases import CASES as CASES
    from .cases import Case as Case
    from .cases import Expected as Expected
    from .flow import FlowResult as FlowResult
    from .flow import run_flow as run_flow


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import pytest_alicertify` free of Flask/httpx imports.
    if name in {"CASES", "Case", "Expected"}:
        from . import cases

        return getattr(cases, name)
    if name in {"FlowResult", "run_flow"}:
        from . import flow

        return getattr(flow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
