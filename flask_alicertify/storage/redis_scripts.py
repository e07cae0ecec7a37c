"""The Lua scripts of the Redis backend: every write, and every read that must see one state.

Redis runs a script without interleaving another command, so a script that checks and writes
is a compare-and-set across processes and hosts. Every write script re-indexes the record with
one function, ``reindex``, which compares the record's index memberships before and after:
the definition of each index lives in ``memberships`` only, so an index can never be updated by
one write path and forgotten by another.

Indexes (sorted sets under the prefix; scores are integer microseconds since the epoch, exact
in a double until the year 2255, so a cursor's score compares equal to the stored one):

- ``stale``: non-terminal records by ``updated_at``;
- ``undelivered``: terminal records without ``delivered_at``, by ``updated_at``;
- ``undeleted``: terminal records with a certify id and no ``deleted_at``, by ``updated_at``;
- ``unpurged``: records without ``purged_at``, by ``created_at``;
- ``user:<user_id>``: the user's records by ``created_at`` (attempt counts, latest record).

Members with equal scores are ordered by id (Redis orders them bytewise), which gives the
``(sort key, id)`` order of the listings for free.
"""

from __future__ import annotations

from ..records import TERMINAL

_TERMINAL_TABLE = "{" + ", ".join(f"[{s.value!r}] = true" for s in sorted(TERMINAL)) + "}"

_PRELUDE = (
    """
local TERMINAL = """
    + _TERMINAL_TABLE
    + """
local function as_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function memberships(prefix, h)
  local m = {}
  if h['status'] == nil then return m end
  if TERMINAL[h['status']] then
    if h['delivered_at'] == nil then m[prefix .. 'undelivered'] = h['_uts'] end
    if h['certify_id'] ~= nil and h['deleted_at'] == nil then m[prefix .. 'undeleted'] = h['_uts'] end
  else
    m[prefix .. 'stale'] = h['_uts']
  end
  if h['purged_at'] == nil then m[prefix .. 'unpurged'] = h['_cts'] end
  if h['user_id'] ~= nil then m[prefix .. 'user:' .. h['user_id']] = h['_cts'] end
  return m
end
local function reindex(prefix, id, old, new)
  local before, after = memberships(prefix, old), memberships(prefix, new)
  for key, _ in pairs(before) do
    if after[key] == nil then redis.call('ZREM', key, id) end
  end
  for key, score in pairs(after) do
    if before[key] ~= score then redis.call('ZADD', key, score, id) end
  end
end
"""
)

#: KEYS[1] record hash. ARGV: prefix, id, then field/value pairs (``_uts``/``_cts`` included).
#: Returns 1, 0 (the id exists) or -1 (the certify id belongs to another record).
CREATE = (
    _PRELUDE
    + """
local prefix, id = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local new = as_table(fields)
local certify_id = new['certify_id']
if certify_id ~= nil and redis.call('EXISTS', prefix .. 'certify:' .. certify_id) == 1 then return -1 end
redis.call('HSET', KEYS[1], unpack(fields))
if certify_id ~= nil then redis.call('SET', prefix .. 'certify:' .. certify_id, id) end
reindex(prefix, id, {}, new)
return 1
"""
)

#: KEYS[1] record hash. ARGV: prefix, id, n_expect, expect..., n_set, (field, value)..., n_del,
#: field... Returns the new hash (flat), false (missing or CAS lost), or 'certify_exists'.
UPDATE = (
    _PRELUDE
    + """
local prefix, id = ARGV[1], ARGV[2]
local old = as_table(redis.call('HGETALL', KEYS[1]))
if old['status'] == nil then return false end
local i = 3
local n = tonumber(ARGV[i]); i = i + 1
local ok = false
for j = i, i + n - 1 do if ARGV[j] == old['status'] then ok = true end end
if not ok then return false end
i = i + n
local new = {}
for k, v in pairs(old) do new[k] = v end
local nset = tonumber(ARGV[i]); i = i + 1
local sets = {}
for j = i, i + 2 * nset - 1, 2 do
  sets[#sets + 1] = ARGV[j]; sets[#sets + 1] = ARGV[j + 1]
  new[ARGV[j]] = ARGV[j + 1]
end
i = i + 2 * nset
local ndel = tonumber(ARGV[i]); i = i + 1
local dels = {}
for j = i, i + ndel - 1 do dels[#dels + 1] = ARGV[j]; new[ARGV[j]] = nil end
local old_certify, new_certify = old['certify_id'], new['certify_id']
if new_certify ~= nil and new_certify ~= old_certify then
  local owner = redis.call('GET', prefix .. 'certify:' .. new_certify)
  if owner and owner ~= id then return 'certify_exists' end
end
if #sets > 0 then redis.call('HSET', KEYS[1], unpack(sets)) end
if #dels > 0 then redis.call('HDEL', KEYS[1], unpack(dels)) end
if old_certify ~= nil and old_certify ~= new_certify then
  redis.call('DEL', prefix .. 'certify:' .. old_certify)
end
if new_certify ~= nil and new_certify ~= old_certify then
  redis.call('SET', prefix .. 'certify:' .. new_certify, id)
end
reindex(prefix, id, old, new)
return redis.call('HGETALL', KEYS[1])
"""
)

#: KEYS[1] record hash. ARGV: now (ISO-8601 UTC, fixed width), not_since (same format), the
#: number of matched fields, then per field its name and ``=value`` (or ``-`` for unset).
#: The fixed-width ISO form (``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``) orders as text exactly as in
#: time, so the interval check needs no date parsing. Returns the new hash, or false.
CLAIM_DESCRIBE = (
    _PRELUDE
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or TERMINAL[status] then return false end
for i = 4, 3 + 2 * tonumber(ARGV[3]), 2 do
  local have, want = redis.call('HGET', KEYS[1], ARGV[i]), ARGV[i + 1]
  if want == '-' then
    if have then return false end
  elseif have ~= string.sub(want, 2) then
    return false
  end
end
local last = redis.call('HGET', KEYS[1], 'last_described_at')
if last and last > ARGV[2] then return false end
redis.call('HSET', KEYS[1], 'last_described_at', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'describe_count', 1)
return redis.call('HGETALL', KEYS[1])
"""
)

#: KEYS[1] an index. ARGV: prefix, before score (exclusive), after score or '', after id, limit.
#: Returns up to ``limit`` record hashes (flat) in (score, id) order, strictly after the cursor.
PAGE = """
local prefix, before, after_score, after_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit = tonumber(ARGV[5])
local low = '-inf'
if after_score ~= '' then low = after_score end
local out = {}
local offset = 0
while #out < limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], low, '(' .. before, 'WITHSCORES', 'LIMIT', offset, limit)
  if #batch == 0 then break end
  for j = 1, #batch, 2 do
    local member, score = batch[j], batch[j + 1]
    local later = after_score == '' or tonumber(score) > tonumber(after_score) or member > after_id
    if #out < limit and later then
      out[#out + 1] = redis.call('HGETALL', prefix .. 'record:' .. member)
    end
  end
  offset = offset + #batch / 2
end
return out
"""

#: KEYS[1] the user's index. ARGV: prefix, instance, status or '', include sandbox '1'/'0'.
#: Returns the newest matching record's hash (flat), or false.
LATEST_FOR_USER = """
local prefix, instance, status, sandbox = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local offset = 0
while true do
  local ids = redis.call('ZREVRANGE', KEYS[1], offset, offset + 31)
  if #ids == 0 then return false end
  for _, id in ipairs(ids) do
    local key = prefix .. 'record:' .. id
    local f = redis.call('HMGET', key, 'instance', 'status', 'sandbox')
    if f[1] == instance and (status == '' or f[2] == status) and (sandbox == '1' or f[3] ~= '1') then
      return redis.call('HGETALL', key)
    end
  end
  offset = offset + #ids
end
"""
