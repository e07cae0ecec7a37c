"""A Redis backend: records as hashes, made atomic with server-side Lua scripts.

Layout under ``prefix`` (default ``alicertify:``):

- ``record:<id>`` a hash per record, every value a string (datetimes ISO-8601 UTC with
  microseconds, booleans ``"1"``/``"0"``, JSON fields as JSON); a None field is simply absent.
  Private ``_uts``/``_cts`` fields keep ``updated_at``/``created_at`` as index scores so
  scripts can re-index without parsing dates.
- ``certify:<certify_id>`` the record id for an Alibaba certify id.
- sorted sets ``stale``, ``undelivered``, ``undeleted``, ``unpurged`` and ``user:<user_id>``:
  the indexes behind the listings, :meth:`RedisStorage.count_inits` and
  :meth:`RedisStorage.latest_for_user` (:mod:`.redis_scripts` defines them).

Each write is one script, so Redis runs it without interleaving: that is what makes
:meth:`RedisStorage.update` and :meth:`RedisStorage.claim_describe` atomic across processes and
hosts, and keeps every index in step with its record. The scripts touch keys they compute from
the prefix, so this backend supports a single Redis server (with or without
replicas/Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import redis

from ..records import NON_TERMINAL
from ..records import RECORD_FIELDS
from ..records import Record
from ..records import Status
from . import redis_scripts
from ._common import FIELD_TYPES
from ._common import claim_arguments
from ._common import normalise_changes
from ._common import normalise_record
from ._common import page_cursor
from ._common import statuses
from ._common import utc
from .base import Cursor
from .base import RecordExists

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _score(value: datetime, name: str = "datetime") -> str:
    """An index score: integer microseconds since the epoch (exact, so cursors compare equal)."""
    return str((utc(value, name) - _EPOCH) // _MICROSECOND)


def _iso(value: datetime, name: str = "datetime") -> str:
    return utc(value, name).isoformat(timespec="microseconds")


def _encode(field: str, value: Any) -> str:
    kind = FIELD_TYPES[field].kind
    if kind == "datetime":
        return _iso(value, field)
    if kind == "status":
        return Status(value).value
    if kind == "bool":
        return "1" if value else "0"
    if kind == "json":
        return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if kind == "int":
        return str(int(value))
    return str(value)


def _decode_value(field: str, text: str) -> Any:
    kind = FIELD_TYPES[field].kind
    if kind == "datetime":
        return utc(datetime.fromisoformat(text), field)
    if kind == "status":
        return Status(text)
    if kind == "bool":
        return text == "1"
    if kind == "json":
        return json.loads(text)
    if kind == "int":
        return int(text)
    return text


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _decode(raw: Mapping[Any, Any]) -> Record:
    data = {_text(k): _text(v) for k, v in raw.items()}
    return Record(**{f: _decode_value(f, data[f]) for f in RECORD_FIELDS if f in data})


def _decode_flat(flat: Sequence[Any]) -> Record:
    return _decode(dict(zip(flat[::2], flat[1::2], strict=True)))


class RedisStorage:
    """Records in Redis.

    :param url_or_client: a ``redis://`` URL, or a configured :class:`redis.Redis` (which
        :meth:`close` then leaves open, since its owner may still use it).
    :param prefix: namespace for every key, so several apps (or extension instances) can share
        a database.
    """

    def __init__(self, url_or_client: str | redis.Redis[Any] | Any, *, prefix: str = "alicertify:") -> None:
        if isinstance(url_or_client, str):
            self.client: redis.Redis[Any] = redis.Redis.from_url(url_or_client, decode_responses=True)
            self._owns_client = True
        else:
            self.client = url_or_client
            self._owns_client = False
        self.prefix = prefix
        register = self.client.register_script
        self._create_script = register(redis_scripts.CREATE)
        self._update_script = register(redis_scripts.UPDATE)
        self._claim_script = register(redis_scripts.CLAIM_DESCRIBE)
        self._page_script = register(redis_scripts.PAGE)
        self._latest_script = register(redis_scripts.LATEST_FOR_USER)

    def __repr__(self) -> str:
        return f"<RedisStorage prefix={self.prefix!r}>"

    def _record_key(self, record_id: str) -> str:
        return f"{self.prefix}record:{record_id}"

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    def create(self, record: Record) -> None:
        record = normalise_record(record)
        pairs = ["_uts", _score(record.updated_at), "_cts", _score(record.created_at)]
        for field in RECORD_FIELDS:
            value = getattr(record, field)
            if value is not None:
                pairs += [field, _encode(field, value)]
        result = self._create_script(
            keys=[self._record_key(record.id)], args=[self.prefix, record.id, *pairs]
        )
        if int(result) == 0:
            raise RecordExists(f"record {record.id!r} already exists")
        if int(result) == -1:
            raise RecordExists("another record already has this certify id")

    def get(self, record_id: str) -> Record | None:
        raw = self.client.hgetall(self._record_key(record_id))
        return _decode(raw) if raw else None

    def _record_id_for(self, certify_id: str) -> str | None:
        found = self.client.get(f"{self.prefix}certify:{certify_id}")
        return None if found is None else _text(found)

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        record_id = self._record_id_for(certify_id)
        if record_id is None:
            return None
        record = self.get(record_id)
        return record if record is not None and record.certify_id == certify_id else None

    def update(self, record_id: str, *, expect: Collection[Status], **changes: Any) -> Record | None:
        wanted = sorted(s.value for s in statuses(expect))
        checked = normalise_changes(changes)
        if not wanted:
            return None
        sets: list[str] = []
        dels: list[str] = []
        for field, value in checked.items():
            if value is None:
                dels.append(field)
            else:
                sets += [field, _encode(field, value)]
        if "updated_at" in checked:
            sets += ["_uts", _score(checked["updated_at"])]
        if "created_at" in checked:
            sets += ["_cts", _score(checked["created_at"])]
        result = self._update_script(
            keys=[self._record_key(record_id)],
            args=[
                self.prefix,
                record_id,
                str(len(wanted)),
                *wanted,
                str(len(sets) // 2),
                *sets,
                str(len(dels)),
                *dels,
            ],
        )
        if result is None:
            return None
        if isinstance(result, (str, bytes)):
            raise RecordExists("another record already has this certify id")
        return _decode_flat(list(result))

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
        """One script checks and claims; ``changes`` follow in a second compare-and-set (an
        outcome stored in between wins, as it would over a later :meth:`update`)."""
        wanted, checked = claim_arguments(record_id, certify_id, match, changes)
        if certify_id is not None:
            wanted["certify_id"] = certify_id
            record_id = self._record_id_for(certify_id)
        if record_id is None:
            return None
        pairs: list[str] = []
        for name, value in sorted(wanted.items()):
            pairs += [name, "-" if value is None else "=" + _encode(name, value)]
        result = self._claim_script(
            keys=[self._record_key(record_id)],
            args=[_iso(now, "now"), _iso(not_since, "not_since"), str(len(pairs) // 2), *pairs],
        )
        if result is None:
            return None
        claimed = _decode_flat(list(result))
        if not checked:
            return claimed
        return self.update(record_id, expect=NON_TERMINAL, **checked) or claimed

    def latest_for_user(
        self,
        user_id: str,
        *,
        instance: str,
        status: Status | str | None = None,
        include_sandbox: bool = True,
    ) -> Record | None:
        wanted = "" if status is None else Status(status).value
        result = self._latest_script(
            keys=[self._user_key(user_id)],
            args=[self.prefix, instance, wanted, "1" if include_sandbox else "0"],
        )
        return None if result is None else _decode_flat(list(result))

    def _page(self, index: str, before: datetime, limit: int, after: Cursor | None) -> list[Record]:
        cursor = page_cursor(after)
        cutoff = _score(before, "before")
        if limit <= 0:
            return []
        after_score, after_id = ("", "") if cursor is None else (_score(cursor[0]), cursor[1])
        result = self._page_script(
            keys=[self.prefix + index], args=[self.prefix, cutoff, after_score, after_id, str(limit)]
        )
        return [_decode_flat(list(flat)) for flat in result if flat]

    def stale(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("stale", updated_before, limit, after)

    def undelivered(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("undelivered", updated_before, limit, after)

    def undeleted(
        self, *, updated_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("undeleted", updated_before, limit, after)

    def unpurged(
        self, *, created_before: datetime, limit: int = 100, after: Cursor | None = None
    ) -> Sequence[Record]:
        return self._page("unpurged", created_before, limit, after)

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        return int(self.client.zcount(self._user_key(user_id), _score(since, "since"), "+inf"))

    def close(self) -> None:
        """Close the connection pool, unless the client was handed to us."""
        if self._owns_client:
            self.client.close()
