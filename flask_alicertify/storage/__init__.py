"""Storage backends for verification records (see :mod:`.base` for the protocol).

The SQLAlchemy and Redis backends are imported on first access: Redis is an optional extra,
and an app on the memory backend or its own storage loads neither driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from .base import Cursor
from .base import RecordExists
from .base import SchemaManagedByMigrations
from .base import Storage
from .loader import load_storage
from .memory import MemoryStorage

if TYPE_CHECKING:
    from .redis import RedisStorage
    from .sqlalchemy import SQLAlchemyStorage

__all__ = [
    "Cursor",
    "MemoryStorage",
    "RecordExists",
    "RedisStorage",
    "SQLAlchemyStorage",
    "SchemaManagedByMigrations",
    "Storage",
    "load_storage",
]


def __getattr__(name: str) -> Any:
    if name == "SQLAlchemyStorage":
        from .sqlalchemy import SQLAlchemyStorage

        return SQLAlchemyStorage
    if name == "RedisStorage":
        from .redis import RedisStorage

        return RedisStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
