"""A Redis backend: records as hashes, made atomic with server-side Lua scripts.

Layout under ``prefix`` (default ``alicertify:``):

- ``record:<id>`` a hash per record, every value a string (datetimes ISO-8601 UTC, booleans
  ``"1"``/``"0"``, ``extra`` as JSON); a None field is simply absent. A private ``_uts`` field
  keeps ``updated_at`` as a score so scripts can re-index without parsing dates.
- ``certify:<certify_id>`` the record id for an Alibaba certify id.
- ``stale`` a sorted set of non-terminal record ids scored by ``updated_at``.
- ``inits:<user_id>`` a sorted set of the user's record ids scored by ``created_at``; entries
  older than ``inits_retention`` are trimmed and the key expires when the user goes quiet.

Each write is one script, so Redis runs it without interleaving: that is what makes
:meth:`RedisStorage.update` a compare-and-set across processes and hosts. The scripts touch
keys they compute from the prefix, so this backend supports a single Redis server (with or
without replicas/Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any

import redis

from ..records import RECORD_FIELDS
from ..records import TERMINAL
from ..records import Record
from ..records import Status
from ._common import DATETIME_FIELDS
from ._common import normalise_changes
from ._common import normalise_record
from ._common import statuses
from ._common import utc
from .base import RecordExists

_CREATE = """
-- KEYS[1] record hash, KEYS[2] stale zset
-- ARGV: prefix, id, certify_id or "", user_id or "", terminal "1"/"0", updated score, created score,
--       trim-before score, user-key ttl seconds, then field/value pairs
local prefix, id, certify_id, user_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if certify_id ~= '' and redis.call('EXISTS', prefix .. 'certify:' .. certify_id) == 1 then return -1 end
local fields = {}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], '_uts', ARGV[6], unpack(fields))
if certify_id ~= '' then redis.call('SET', prefix .. 'certify:' .. certify_id, id) end
if ARGV[5] == '0' then redis.call('ZADD', KEYS[2], ARGV[6], id) end
if user_id ~= '' then
  local ukey = prefix .. 'inits:' .. user_id
  redis.call('ZADD', ukey, ARGV[7], id)
  redis.call('ZREMRANGEBYSCORE', ukey, '-inf', '(' .. ARGV[8])
  redis.call('EXPIRE', ukey, ARGV[9])
end
return 1
"""

_UPDATE = """
-- KEYS[1] record hash, KEYS[2] stale zset
-- ARGV: prefix, id, n_expect, expect..., n_set, (field, value)..., n_del, field...,
--       new updated score or "", terminal-after "1"/"0"/"" (unchanged status)
local prefix, id = ARGV[1], ARGV[2]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
local i = 3
local n = tonumber(ARGV[i]); i = i + 1
local ok = false
for j = i, i + n - 1 do if ARGV[j] == status then ok = true end end
if not ok then return false end
i = i + n
local nset = tonumber(ARGV[i]); i = i + 1
local sets = {}
local new_certify = nil
for j = i, i + 2 * nset - 1, 2 do
  sets[#sets + 1] = ARGV[j]; sets[#sets + 1] = ARGV[j + 1]
  if ARGV[j] == 'certify_id' then new_certify = ARGV[j + 1] end
end
i = i + 2 * nset
local ndel = tonumber(ARGV[i]); i = i + 1
local dels = {}
local drop_certify = false
for j = i, i + ndel - 1 do
  dels[#dels + 1] = ARGV[j]
  if ARGV[j] == 'certify_id' then drop_certify = true end
end
i = i + ndel
local uts, terminal = ARGV[i], ARGV[i + 1]
local old_certify = redis.call('HGET', KEYS[1], 'certify_id')
if new_certify and new_certify ~= old_certify then
  local owner = redis.call('GET', prefix .. 'certify:' .. new_certify)
  if owner and owner ~= id then return 'certify_exists' end
end
if #sets > 0 then redis.call('HSET', KEYS[1], unpack(sets)) end
if #dels > 0 then redis.call('HDEL', KEYS[1], unpack(dels)) end
if old_certify and (drop_certify or (new_certify and new_certify ~= old_certify)) then
  redis.call('DEL', prefix .. 'certify:' .. old_certify)
end
if new_certify then redis.call('SET', prefix .. 'certify:' .. new_certify, id) end
if uts ~= '' then redis.call('HSET', KEYS[1], '_uts', uts) end
if terminal == '1' then
  redis.call('ZREM', KEYS[2], id)
elseif terminal == '0' or (uts ~= '' and redis.call('ZSCORE', KEYS[2], id)) then
  redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], '_uts'), id)
end
return redis.call('HGETALL', KEYS[1])
"""


def _score(value: datetime) -> str:
    return repr(utc(value, "datetime").timestamp())


def _encode(field: str, value: Any) -> str:
    if field in DATETIME_FIELDS:
        return utc(value, field).isoformat(timespec="microseconds")
    if field == "status":
        return Status(value).value
    if field == "passed":
        return "1" if value else "0"
    if field == "extra":
        return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if field == "describe_count":
        return str(int(value))
    return str(value)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _decode(raw: Mapping[Any, Any]) -> Record:
    data = {_text(k): _text(v) for k, v in raw.items()}
    values: dict[str, Any] = {}
    for field in RECORD_FIELDS:
        if field not in data:
            continue
        text = data[field]
        if field in DATETIME_FIELDS:
            values[field] = utc(datetime.fromisoformat(text), field)
        elif field == "status":
            values[field] = Status(text)
        elif field == "passed":
            values[field] = text == "1"
        elif field == "extra":
            values[field] = json.loads(text)
        elif field == "describe_count":
            values[field] = int(text)
        else:
            values[field] = text
    return Record(**values)


class RedisStorage:
    """Records in Redis.

    :param url_or_client: a ``redis://`` URL, or a configured :class:`redis.Redis` (which
        :meth:`close` then leaves open, since its owner may still use it).
    :param prefix: namespace for every key, so several apps can share a database.
    :param inits_retention: how long per-user init timestamps are kept for :meth:`count_inits`;
        windows longer than this undercount.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis[Any] | Any,
        *,
        prefix: str = "alicertify:",
        inits_retention: timedelta = timedelta(days=7),
    ) -> None:
        if isinstance(url_or_client, str):
            self.client: redis.Redis[Any] = redis.Redis.from_url(url_or_client, decode_responses=True)
            self._owns_client = True
        else:
            self.client = url_or_client
            self._owns_client = False
        self.prefix = prefix
        self.inits_retention = inits_retention
        self._stale_key = prefix + "stale"
        self._create_script = self.client.register_script(_CREATE)
        self._update_script = self.client.register_script(_UPDATE)

    def __repr__(self) -> str:
        return f"<RedisStorage prefix={self.prefix!r}>"

    def _record_key(self, record_id: str) -> str:
        return f"{self.prefix}record:{record_id}"

    def create(self, record: Record) -> None:
        record = normalise_record(record)
        pairs: list[str] = []
        for field in RECORD_FIELDS:
            value = getattr(record, field)
            if value is not None:
                pairs += [field, _encode(field, value)]
        trim_before = record.created_at - self.inits_retention
        result = self._create_script(
            keys=[self._record_key(record.id), self._stale_key],
            args=[
                self.prefix,
                record.id,
                record.certify_id or "",
                record.user_id or "",
                "1" if record.terminal else "0",
                _score(record.updated_at),
                _score(record.created_at),
                _score(trim_before),
                str(max(1, int(self.inits_retention.total_seconds()))),
                *pairs,
            ],
        )
        if int(result) == 0:
            raise RecordExists(f"record {record.id!r} already exists")
        if int(result) == -1:
            raise RecordExists("another record already has this certify id")

    def get(self, record_id: str) -> Record | None:
        raw = self.client.hgetall(self._record_key(record_id))
        return _decode(raw) if raw else None

    def get_by_certify_id(self, certify_id: str) -> Record | None:
        record_id = self.client.get(f"{self.prefix}certify:{certify_id}")
        if record_id is None:
            return None
        record = self.get(_text(record_id))
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
        uts = _score(checked["updated_at"]) if "updated_at" in checked else ""
        terminal = "" if "status" not in checked else ("1" if checked["status"] in TERMINAL else "0")
        result = self._update_script(
            keys=[self._record_key(record_id), self._stale_key],
            args=[
                self.prefix,
                record_id,
                str(len(wanted)),
                *wanted,
                str(len(sets) // 2),
                *sets,
                str(len(dels)),
                *dels,
                uts,
                terminal,
            ],
        )
        if result is None:
            return None
        if isinstance(result, (str, bytes)):
            raise RecordExists("another record already has this certify id")
        flat = list(result)
        return _decode(dict(zip(flat[::2], flat[1::2], strict=True)))

    def stale(self, *, updated_before: datetime, limit: int = 100) -> Sequence[Record]:
        if limit <= 0:
            return []
        cutoff = utc(updated_before, "updated_before")
        ids = self.client.zrangebyscore(self._stale_key, "-inf", "(" + _score(cutoff), start=0, num=limit)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for record_id in ids:
            pipe.hgetall(self._record_key(_text(record_id)))
        found = [_decode(raw) for raw in pipe.execute() if raw]
        # A record may have moved on between the two round trips; the index is only a hint.
        found = [r for r in found if not r.terminal and r.updated_at < cutoff]
        found.sort(key=lambda r: (r.updated_at, r.id))
        return found

    def count_inits(self, user_id: str, *, since: datetime) -> int:
        return int(self.client.zcount(f"{self.prefix}inits:{user_id}", _score(since), "+inf"))

    def close(self) -> None:
        """Close the connection pool, unless the client was handed to us."""
        if self._owns_client:
            self.client.close()
