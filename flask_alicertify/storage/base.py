"""The storage hook: what the state machine needs from a backend, and nothing more.

One primitive carries all the concurrency guarantees: :meth:`Storage.update` is an atomic
compare-and-set on the record's status. Sixteen workers racing to move a record from
``pending`` to ``passed`` all call it with ``expect={pending, ...}``; exactly one gets the new
record back, the others get None, and only the winner fires the signal. A second one,
:meth:`Storage.claim_describe`, is the describe budget: of any number of requests that want to
ask Alibaba about one record within an interval, exactly one gets the claim.

The listing methods page with a cursor, ``(sort key, id)`` of the last record seen, instead of
an offset: jobs change the records they list (a settled record leaves :meth:`Storage.stale`),
which would make an offset skip records, and a record they skip (too young, another
instance's) must not stall them.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from ..errors import SchemaManagedByMigrations
from ..records import Record
from ..records import Status

__all__ = [
    "STORAGE_METHODS",
    "Cursor",
    "RecordExists",
    "SchemaManagedByMigrations",
    "Storage",
    "missing_methods",
]


#: Where a listing page ended: the sort key (``updated_at`` or ``created_at``) and the id of
#: the last record on it. The next page starts strictly after it.
Cursor = tuple[datetime, str]


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
        in ``expect`` (someone else moved it first). ``updated_at`` is set by the caller. Only
        the named fields are written: a purge (which names the identity fields) and a
        transition (which names the status fields) landing together both survive.
        """

    def claim_describe(
        self,
        record_id: str | None = None,
        *,
        now: datetime,
        not_since: datetime,
        certify_id: str | None = None,
        match: Mapping[str, Any] | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Record | None:
        """Atomically claim the right to describe the record now.

        The record is found by ``record_id``, or by ``certify_id`` when that is given instead.
        If it is non-terminal, holds every value in ``match`` (field name to value; None means
        unset) and was last described at or before ``not_since`` (or never), set
        ``last_described_at = now``, add one to ``describe_count``, write ``changes`` (any
        fields but those four) and return the new record; otherwise (missing, terminal, not
        matching, or described since) return None and write nothing. Of any number of
        concurrent callers with the same ``not_since``, at most one gets a record.
        ``updated_at`` is left alone unless ``changes`` names it: a claim is not a change of state.

        Why ``match`` and ``changes``: a result post checks ownership and stores the client's
        claim in the same step as the claim, one statement where it used to take three.
        """

    def latest_for_user(
        self,
        user_id: str,
        *,
        instance: str,
        status: Status | str | None = None,
        include_sandbox: bool = True,
    ) -> Record | None:
        """The user's newest record (by ``created_at``, then id) made by ``instance``.

        ``status`` keeps only records in that status; ``include_sandbox=False`` leaves out
        records with ``sandbox`` set.
        """

    def stale(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        """Non-terminal records not updated since ``updated_before``, by ``(updated_at, id)``.

        At most ``limit`` records, strictly after ``after``; a page shorter than ``limit`` is
        the last one. (The same holds for every listing method.)
        """

    def undelivered(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        """Terminal records whose outcome signal is not delivered (``delivered_at`` None), by
        ``(updated_at, id)``."""

    def undeleted(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        """Terminal records with a certify id whose result is not yet deleted at Alibaba
        (``deleted_at`` None), by ``(updated_at, id)``."""

    def unpurged(
        self, *, created_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        """Records of any status created before ``created_before`` and not yet purged
        (``purged_at`` None), by ``(created_at, id)``."""

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        """How many records ``user_id`` created since ``since`` (the attempt limit)."""

    def close(self) -> None:
        """Release connections. Called when the app is torn down."""


#: The methods a storage must have, in the order the protocol lists them.
STORAGE_METHODS: tuple[str, ...] = (
    "create",
    "get",
    "get_by_certify_id",
    "update",
    "claim_describe",
    "latest_for_user",
    "stale",
    "undelivered",
    "undeleted",
    "unpurged",
    "count_inits",
    "close",
)


def missing_methods(obj: object) -> list[str]:
    """The :data:`STORAGE_METHODS` that ``obj`` lacks (or has as something not callable)."""
    return [name for name in STORAGE_METHODS if not callable(getattr(obj, name, None))]
