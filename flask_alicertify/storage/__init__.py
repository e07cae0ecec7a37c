"""Storage backends for verification records (see :mod:`.base` for the protocol).

SQLAlchemy and Redis are optional extras, so their backends are imported on first access:
``import flask_alicertify.storage`` works with neither installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from .base import RecordExists
from .base import Storage
from .loader import load_storage
from .memory import MemoryStorage

if TYPE_CHECKING:
    from .redis import RedisStorage
    from .sqlalchemy import SQLAlchemyStorage

__all__ = ["MemoryStorage", "RecordExists", "RedisStorage", "SQLAlchemyStorage", "Storage", "load_storage"]


def __getattr__(name: str) -> Any:
    if name == "SQLAlchemyStorage":
        from .sqlalchemy import SQLAlchemyStorage

        return SQLAlchemyStorage
    if name == "RedisStorage":
        from .redis import RedisStorage

        return RedisStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
