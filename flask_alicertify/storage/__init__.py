"""Storage backends for verification records (see :mod:`.base` for the protocol)."""

from .base import RecordExists
from .base import Storage

__all__ = ["RecordExists", "Storage"]
