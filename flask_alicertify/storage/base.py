"""The storage hook: what the state machine needs from a backend, and nothing more.

One primitive carries all the concurrency guarantees: :meth:`Storage.update` is an atomic
compare-and-set on the record's status. Sixteen workers racing to move a record from
``pending`` to ``passed`` all call it with ``expect={pending, ...}``; exactly one gets the new
record back, the others get None, and only the winner fires the signal.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from ..records import Record
from ..records import Status


class RecordExists(Exception):
    """:meth:`Storage.create` was given an id that is already stored."""


@runtime_checkable
class Storage(Protocol):
    """A place to keep :class:`~flask_alicertify.records.Record` objects.

    All datetimes are timezone-aware UTC. Implementations must be safe to share between threads
    (and, for the persistent ones, between processes and hosts).
    """

    def create(self, record: Record) -> None:
        """Insert a new record; raise :class:`RecordExists` when its id is taken."""

    def get(self, record_id: str) -> Record | None:
        """The record with this id (our OuterOrderNo), or None."""

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        """The record Alibaba's certify id was issued for, or None."""

    def update(self, record_id: str, *, expect: Collection[Status], **changes: Any) -> Record | None:
        """Atomically apply ``changes`` if the stored status is in ``expect``.

        Returns the updated record, or None when the record is missing or its status was not
        in ``expect`` (someone else moved it first). ``updated_at`` is set by the caller.
        """

    def stale(self, *, updated_before: datetime, limit: int = 100) -> Sequence[Record]:
        """Non-terminal records not updated since ``updated_before``, oldest first."""

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        """How many records ``user_id`` created since ``since`` (the attempt limit)."""

    def close(self) -> None:
        """Release connections. Called when the app is torn down."""
