"""One behavioural suite for every storage backend (memory, SQLite, PostgreSQL, Redis).

Each test runs once per backend through the ``backend``/``storage`` fixtures in conftest.py;
a behaviour that differs between backends is a bug in one of them.
"""

from __future__ import annotations

import multiprocessing
import secrets
import threading
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from support.storage import BACKENDS
from support.storage import Backend

from flask_alicertify import identity
from flask_alicertify import records
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.storage import RecordExists
from flask_alicertify.storage import Storage

T0 = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=timezone.utc)
CST = timezone(timedelta(hours=8))


def new_id() -> str:
    return secrets.token_hex(16)


def make(
    *,
    status: Status = Status.PENDING,
    at: datetime = T0,
    updated: datetime | None = None,
    user_id: str | None = "user-1",
    certify_id: str | None = None,
    **fields: Any,
) -> Record:
    return Record(
        id=new_id(),
        status=status,
        created_at=at,
        updated_at=updated or at,
        user_id=user_id,
        certify_id=certify_id,
        **fields,
    )


def test_is_a_storage(storage: Storage) -> None:
    assert isinstance(storage, Storage)


def test_create_and_get(storage: Storage) -> None:
    record = make(
        certify_id="sha" + new_id(),
        cert_no_digest="ab" * 32,
        cert_no_masked="1****************4",
        cert_name_masked="张*",
        callback_token_digest="cd" * 32,
        client_status="9000",
        passed=False,
        sub_code="204",
        describe_count=3,
        last_described_at=T0 + timedelta(seconds=5),
        extra={"k": "v"},
    )
    storage.create(record)
    assert storage.get(record.id) == record
    assert storage.get_by_certify_id(record.certify_id or "") == record
    assert storage.get(new_id()) is None
    assert storage.get_by_certify_id("no-such-certify-id") is None


def test_defaults_round_trip(storage: Storage) -> None:
    record = Record(id=new_id(), status=Status.INITIATING, created_at=T0, updated_at=T0)
    storage.create(record)
    got = storage.get(record.id)
    assert got == record
    assert got is not None and got.user_id is None and got.passed is None and got.extra == {}
    assert isinstance(got.status, Status)


def test_duplicate_id_is_refused(storage: Storage) -> None:
    record = make()
    storage.create(record)
    with pytest.raises(RecordExists):
        storage.create(record.replace(status=Status.PASSED, user_id="someone-else"))
    assert storage.get(record.id) == record


def test_duplicate_certify_id_is_refused(storage: Storage) -> None:
    first = make(certify_id="cid-" + new_id())
    storage.create(first)
    with pytest.raises(RecordExists):
        storage.create(make(certify_id=first.certify_id))
    other = make()
    storage.create(other)
    with pytest.raises(RecordExists):
        storage.update(other.id, expect={Status.PENDING}, certify_id=first.certify_id)
    assert storage.get_by_certify_id(first.certify_id or "") == first
    assert storage.get(other.id) == other


def test_update_success(storage: Storage) -> None:
    record = make(status=Status.INITIATING, sub_code="x")
    storage.create(record)
    later = T0 + timedelta(minutes=1)
    cid = "cid-" + new_id()
    updated = storage.update(
        record.id,
        expect={Status.INITIATING},
        status=Status.PENDING,
        certify_id=cid,
        updated_at=later,
        describe_count=1,
        sub_code=None,
    )
    expected = record.replace(
        status=Status.PENDING, certify_id=cid, updated_at=later, describe_count=1, sub_code=None
    )
    assert updated == expected
    assert storage.get(record.id) == expected
    assert storage.get_by_certify_id(cid) == expected


def test_update_accepts_status_strings(storage: Storage) -> None:
    record = make()
    storage.create(record)
    updated = storage.update(record.id, expect=["pending"], status="passed", passed=True)
    assert updated is not None and updated.status is Status.PASSED and updated.passed is True


def test_update_cas_failure_leaves_record_alone(storage: Storage) -> None:
    record = make(status=Status.PASSED, passed=True)
    storage.create(record)
    assert storage.update(record.id, expect={Status.PENDING, Status.ABANDONED}, status=Status.FAILED) is None
    assert storage.update(record.id, expect=(), status=Status.FAILED) is None
    assert storage.get(record.id) == record


def test_update_missing_record(storage: Storage) -> None:
    assert storage.update(new_id(), expect={Status.PENDING}, status=Status.PASSED) is None
    assert storage.get_by_certify_id("x") is None


def test_update_without_changes_is_a_pure_check(storage: Storage) -> None:
    record = make()
    storage.create(record)
    assert storage.update(record.id, expect={Status.PENDING}) == record
    assert storage.update(record.id, expect={Status.PASSED}) is None


def test_update_moves_certify_id_index(storage: Storage) -> None:
    record = make(certify_id="old-" + new_id())
    storage.create(record)
    new_cid = "new-" + new_id()
    storage.update(record.id, expect={Status.PENDING}, certify_id=new_cid)
    assert storage.get_by_certify_id(record.certify_id or "") is None
    assert storage.get_by_certify_id(new_cid) is not None
    storage.update(record.id, expect={Status.PENDING}, certify_id=None)
    assert storage.get_by_certify_id(new_cid) is None
    # The freed certify id can be used by another record.
    storage.create(make(certify_id=new_cid))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"no_such_field": 1}, TypeError),
        ({"id": "other"}, TypeError),
        ({"updated_at": datetime(2025, 1, 1)}, ValueError),
        ({"status": "bogus"}, ValueError),
        ({"describe_count": "3"}, TypeError),
        ({"extra": {"x": object()}}, TypeError),
    ],
)
def test_update_refuses_bad_changes(
    storage: Storage, changes: dict[str, Any], error: type[Exception]
) -> None:
    record = make()
    storage.create(record)
    with pytest.raises(error):
        storage.update(record.id, expect={Status.PENDING}, **changes)
    assert storage.get(record.id) == record


def test_create_refuses_naive_datetimes(storage: Storage) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        storage.create(Record(id=new_id(), status=Status.PENDING, created_at=T0, updated_at=datetime.now()))


def test_datetimes_round_trip_as_utc(storage: Storage) -> None:
    local = datetime(2025, 6, 30, 23, 59, 58, 999999, tzinfo=CST)
    record = make(at=local, last_described_at=local + timedelta(microseconds=1))
    storage.create(record)
    got = storage.get(record.id)
    assert got is not None
    for value, original in [
        (got.created_at, local),
        (got.updated_at, local),
        (got.last_described_at, local + timedelta(microseconds=1)),
    ]:
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value == original
        assert value.microsecond == original.microsecond
    assert got.created_at.hour == 15
    # And through update().
    changed = storage.update(record.id, expect={Status.PENDING}, updated_at=local + timedelta(hours=1))
    assert changed is not None and changed.updated_at.utcoffset() == timedelta(0)
    assert changed.updated_at == local + timedelta(hours=1)


def test_extra_json_round_trip(storage: Storage) -> None:
    extra = {
        "text": '认证 ✓ "quoted" \\ slash',
        "int": 7,
        "float": 0.5,
        "bool": True,
        "none": None,
        "list": [1, "two", {"three": 3}],
        "nested": {"deep": {"deeper": []}},
        "tuple": (1, 2),
    }
    record = make(extra=extra)
    storage.create(record)
    got = storage.get(record.id)
    assert got is not None
    assert got.extra == {**extra, "tuple": [1, 2]}
    updated = storage.update(record.id, expect={Status.PENDING}, extra={"claims": ["9000"]})
    assert updated is not None and updated.extra == {"claims": ["9000"]}
    assert storage.get(record.id) == updated


def test_stale_orders_filters_and_limits(storage: Storage) -> None:
    base = T0
    pending = [make(at=base, updated=base + timedelta(minutes=m)) for m in (3, 1, 2)]
    abandoned = make(status=Status.ABANDONED, at=base, updated=base + timedelta(minutes=4))
    initiating = make(status=Status.INITIATING, at=base, updated=base)
    fresh = make(at=base, updated=base + timedelta(minutes=30))
    terminal = [make(status=s, at=base, updated=base) for s in Status if s.terminal]
    for record in [*pending, abandoned, initiating, fresh, *terminal]:
        storage.create(record)

    cutoff = base + timedelta(minutes=10)
    got = storage.stale(updated_before=cutoff)
    assert [r.id for r in got] == [
        initiating.id,
        pending[1].id,
        pending[2].id,
        pending[0].id,
        abandoned.id,
    ]
    assert [r.id for r in storage.stale(updated_before=cutoff, limit=2)] == [initiating.id, pending[1].id]
    assert storage.stale(updated_before=cutoff, limit=0) == []
    # The cutoff is exclusive.
    assert [r.id for r in storage.stale(updated_before=base + timedelta(minutes=1))] == [initiating.id]

    # Becoming terminal removes a record; a newer updated_at moves it back in the order.
    storage.update(pending[1].id, expect={Status.PENDING}, status=Status.PASSED, updated_at=base)
    storage.update(initiating.id, expect={Status.INITIATING}, updated_at=base + timedelta(minutes=5))
    assert [r.id for r in storage.stale(updated_before=cutoff)] == [
        pending[2].id,
        pending[0].id,
        abandoned.id,
        initiating.id,
    ]
    # Going back to a non-terminal status (an odd but allowed transition) brings it back.
    storage.update(
        pending[1].id, expect={Status.PASSED}, status=Status.PENDING, updated_at=base + timedelta(minutes=6)
    )
    assert [r.id for r in storage.stale(updated_before=cutoff)][-1] == pending[1].id


def test_stale_accepts_any_timezone(storage: Storage) -> None:
    record = make(at=T0)
    storage.create(record)
    assert storage.stale(updated_before=(T0 + timedelta(seconds=1)).astimezone(CST)) == [record]
    assert storage.stale(updated_before=T0.astimezone(CST)) == []


def test_count_inits_window_and_isolation(storage: Storage) -> None:
    now = T0
    for hours in (0, 1, 23):
        storage.create(make(user_id="alice", at=now - timedelta(hours=hours)))
    storage.create(make(user_id="alice", at=now - timedelta(hours=25)))
    storage.create(make(user_id="bob", at=now))
    storage.create(make(user_id=None, at=now))
    day_ago = now - timedelta(hours=24)
    assert storage.count_inits("alice", since=day_ago) == 3
    assert storage.count_inits("alice", since=now - timedelta(hours=48)) == 4
    assert storage.count_inits("alice", since=now) == 1  # inclusive boundary
    assert storage.count_inits("alice", since=now + timedelta(microseconds=1)) == 0
    assert storage.count_inits("bob", since=day_ago) == 1
    assert storage.count_inits("carol", since=day_ago) == 0
    # Terminal or not, every attempt counts (Init is billed either way).
    storage.create(make(user_id="bob", status=Status.INIT_FAILED, at=now))
    assert storage.count_inits("bob", since=day_ago.astimezone(CST)) == 2


RACE_THREADS = 16
RACE_ROUNDS = 20


def race_once(storage: Storage) -> None:
    """16 threads try pending -> passed on one fresh record; exactly one may succeed."""
    record = make()
    storage.create(record)
    barrier = threading.Barrier(RACE_THREADS)
    results: list[Record | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            barrier.wait(timeout=60)
            got = storage.update(record.id, expect={Status.PENDING}, status=Status.PASSED, passed=True)
            with lock:
                results.append(got)
        except BaseException as e:
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=attempt) for _ in range(RACE_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    winners = [r for r in results if r is not None]
    assert len(results) == RACE_THREADS
    assert len(winners) == 1
    assert winners[0].status is Status.PASSED
    assert storage.get(record.id) == winners[0]


def test_thread_race_has_exactly_one_winner(storage: Storage) -> None:
    for _ in range(RACE_ROUNDS):
        race_once(storage)


RACE_PROCESSES = 4


SHARED_BACKENDS = [p for p in BACKENDS if p.values[0] in ("sqlite", "postgresql", "redis")]


@pytest.mark.parametrize("backend", SHARED_BACKENDS, indirect=True)
def test_process_race_has_exactly_one_winner(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Spawned children get the parent's sys.path, so they can import the worker by name.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import support.storage

    storage = backend.storage
    storage.get("warm-up")  # creates the table before the children use it
    ctx = multiprocessing.get_context("spawn")
    rounds = [make() for _ in range(3)]
    for record in rounds:
        storage.create(record)
    barrier = ctx.Barrier(RACE_PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=support.storage.race,
            args=(backend.kind, backend.spec, [r.id for r in rounds], barrier, results),
        )
        for _ in range(RACE_PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(RACE_PROCESSES * len(rounds))]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * RACE_PROCESSES, outcomes
    for round_no, record in enumerate(rounds):
        wins = sorted(won for n, won in outcomes if n == round_no)
        assert wins == [False] * (RACE_PROCESSES - 1) + [True], (round_no, outcomes)
        got = storage.get(record.id)
        assert got is not None and got.status is Status.PASSED


CERT_NO = "11010519491231002X"
CERT_NAME = "欧阳娜娜"
PII_KEY = b"test-pii-key-0123456789"


def identity_record(cert_no: str, cert_name: str) -> Record:
    """A record the way the extension builds one: validated, then digested and masked."""
    cert_no = identity.validate_cert_no(cert_no)
    cert_name = identity.validate_cert_name(cert_name)
    return make(
        certify_id="cid-" + new_id(),
        cert_no_digest=identity.cert_no_digest(cert_no, PII_KEY),
        cert_no_masked=identity.mask_cert_no(cert_no),
        cert_name_masked=identity.mask_cert_name(cert_name),
        extra={"client": {"resultStatus": "9000"}},
    )


def test_no_personal_data_at_rest(backend: Backend) -> None:
    storage = backend.storage
    record = identity_record(CERT_NO, CERT_NAME)
    storage.create(record)
    storage.update(record.id, expect={Status.PENDING}, status=Status.PASSED, passed=True, sub_code="200")
    storage.create(identity_record("440524188001010014", "阿卜杜拉·买买提"))

    dump = backend.raw_dump()
    # The dump really is the stored data (so the negative checks below mean something).
    assert record.id in dump and record.cert_no_digest in dump and "1****************X" in dump
    assert "欧***" in dump
    for secret in (CERT_NO, CERT_NO[:17], CERT_NO.lower(), "440524188001010014", "4405241880010100"):
        assert secret not in dump
    for secret in (CERT_NAME, "阳娜娜", "阿卜杜拉·买买提", "买买提"):
        assert secret not in dump


# -- the fields added for instances, sandbox mode, user-id types, delivery, deletion, purge ------


def test_new_fields_round_trip(storage: Storage) -> None:
    record = make(
        instance="kyc",
        sandbox=True,
        user_id="42",
        user_id_type="int",
        delivered_at=T0 + timedelta(seconds=1),
        deleted_at=T0 + timedelta(seconds=2),
        purged_at=T0 + timedelta(seconds=3),
    )
    storage.create(record)
    got = storage.get(record.id)
    assert got == record
    assert got is not None and got.typed_user_id == 42 and got.sandbox is True
    # The defaults come back as defaults (not as None or "").
    plain = make()
    storage.create(plain)
    got = storage.get(plain.id)
    assert got is not None
    assert (got.instance, got.sandbox, got.user_id_type) == ("alicertify", False, "str")
    assert (got.delivered_at, got.deleted_at, got.purged_at) == (None, None, None)


def test_new_fields_update_and_clear(storage: Storage) -> None:
    record = make(status=Status.PASSED)
    storage.create(record)
    when = (T0 + timedelta(minutes=1)).astimezone(CST)
    got = storage.update(record.id, expect={Status.PASSED}, delivered_at=when, sandbox=True, instance="kyc")
    assert got == record.replace(delivered_at=when, sandbox=True, instance="kyc")
    assert got is not None and got.delivered_at is not None and got.delivered_at.utcoffset() == timedelta(0)
    got = storage.update(record.id, expect={Status.PASSED}, delivered_at=None, sandbox=False)
    assert got == record.replace(instance="kyc")
    assert storage.get(record.id) == got


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"sandbox": "yes"}, TypeError),
        ({"sandbox": None}, TypeError),
        ({"instance": None}, TypeError),
        ({"api": None}, TypeError),
        ({"cert_no_digest": None}, TypeError),
        ({"user_id_type": "float"}, ValueError),
        ({"delivered_at": "2025-01-01T00:00:00+00:00"}, TypeError),
        ({"purged_at": datetime(2025, 1, 1)}, ValueError),
        ({"passed": 1}, TypeError),
    ],
)
def test_every_backend_refuses_the_same_bad_values(
    storage: Storage, changes: dict[str, Any], error: type[Exception]
) -> None:
    record = make()
    storage.create(record)
    with pytest.raises(error):
        storage.update(record.id, expect={Status.PENDING}, **changes)
    with pytest.raises(error):
        storage.create(make().replace(**changes))
    assert storage.get(record.id) == record


# -- claim_describe ----------------------------------------------------------------------------


def test_claim_describe_claims_once_per_interval(storage: Storage) -> None:
    record = make(describe_count=2)
    storage.create(record)
    now = T0 + timedelta(seconds=10)
    claimed = storage.claim_describe(record.id, now=now, not_since=now - timedelta(seconds=2))
    assert claimed == record.replace(last_described_at=now, describe_count=3)
    assert storage.get(record.id) == claimed
    # Within the interval: refused, nothing changes.
    soon = now + timedelta(seconds=1)
    assert storage.claim_describe(record.id, now=soon, not_since=soon - timedelta(seconds=2)) is None
    assert storage.get(record.id) == claimed
    # At exactly the interval's end (last_described_at == not_since) the next claim wins.
    later = now + timedelta(seconds=2)
    again = storage.claim_describe(record.id, now=later.astimezone(CST), not_since=now.astimezone(CST))
    assert again == record.replace(last_described_at=later, describe_count=4)
    assert again is not None and again.updated_at == record.updated_at  # a claim is no change of state


def test_claim_describe_refuses_terminal_and_missing_records(storage: Storage) -> None:
    for status in Status:
        record = make(status=status)
        storage.create(record)
        got = storage.claim_describe(record.id, now=T0, not_since=T0)
        assert (got is None) is status.terminal, status
    assert storage.claim_describe(new_id(), now=T0, not_since=T0) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        storage.claim_describe(new_id(), now=datetime(2025, 1, 1), not_since=T0)


def test_claim_describe_by_certify_id_with_match_and_changes(storage: Storage) -> None:
    """A result post's one statement: found by certify id, owner checked, claim written."""
    record = make(certify_id="cid-" + new_id(), sandbox=False)
    storage.create(record)
    now = T0 + timedelta(seconds=10)
    owner = {"user_id": "user-1", "instance": record.instance, "sandbox": False}
    changes = {"client_status": "9000", "client_error_code": None, "updated_at": now}

    def claim(certify_id: str = record.certify_id or "", **match: Any) -> Record | None:
        return storage.claim_describe(
            certify_id=certify_id,
            now=now,
            not_since=now - timedelta(seconds=2),
            match={**owner, **match},
            changes=changes,
        )

    # Not matching (another user, instance or mode, an unset field expected) or unknown: no write.
    assert claim(user_id="mallory") is None
    assert claim(instance="other") is None
    assert claim(sandbox=True) is None
    assert claim(sub_code="anything") is None
    assert claim(user_id=None) is None
    assert claim("cid-unknown") is None
    assert storage.get(record.id) == record
    claimed = claim(sub_code=None)  # None matches an unset field
    expected = record.replace(last_described_at=now, describe_count=1, client_status="9000", updated_at=now)
    assert claimed == expected
    assert storage.get(record.id) == expected
    assert claim() is None  # within the interval
    assert storage.get_by_certify_id(record.certify_id or "") == expected


def test_claim_describe_matches_an_anonymous_owner(storage: Storage) -> None:
    record = make(user_id=None, certify_id="cid-" + new_id())
    storage.create(record)
    got = storage.claim_describe(certify_id=record.certify_id, now=T0, not_since=T0, match={"user_id": None})
    assert got is not None and got.describe_count == 1
    other = make(certify_id="cid-" + new_id())
    storage.create(other)
    assert (
        storage.claim_describe(certify_id=other.certify_id, now=T0, not_since=T0, match={"user_id": None})
        is None
    )


def test_claim_describe_refuses_bad_arguments(storage: Storage) -> None:
    record = make(certify_id="cid-" + new_id())
    storage.create(record)
    with pytest.raises(TypeError, match="exactly one"):
        storage.claim_describe(record.id, certify_id=record.certify_id, now=T0, not_since=T0)
    with pytest.raises(TypeError, match="exactly one"):
        storage.claim_describe(now=T0, not_since=T0)
    for owned in ("status", "certify_id", "last_described_at", "describe_count"):
        with pytest.raises(TypeError, match="cannot change"):
            storage.claim_describe(record.id, now=T0, not_since=T0, changes={owned: None})
    with pytest.raises(TypeError, match="unknown match"):
        storage.claim_describe(record.id, now=T0, not_since=T0, match={"nope": 1})
    assert storage.get(record.id) == record


def claim_by_certify_id_race_once(storage: Storage, threads: int = 8) -> None:
    record = make(certify_id="cid-" + new_id())
    storage.create(record)
    now = T0 + timedelta(seconds=10)

    def claim(i: int) -> Record | None:
        return storage.claim_describe(
            certify_id=record.certify_id,
            now=now,
            not_since=now - timedelta(seconds=5),
            match={"user_id": "user-1"},
            changes={"client_status": str(i), "updated_at": now},
        )

    winners = [r for r in together(*[lambda i=i: claim(i) for i in range(threads)]) if r is not None]
    assert len(winners) == 1
    assert storage.get(record.id) == winners[0]


def test_claim_describe_by_certify_id_race_has_one_winner(storage: Storage) -> None:
    for _ in range(3):
        claim_by_certify_id_race_once(storage)


def together(*calls: Any) -> list[Any]:
    """Run ``calls`` in threads released at one moment; their results in order, or the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = calls[i]()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def claim_race_once(storage: Storage, threads: int = RACE_THREADS) -> None:
    """Several rounds on one record: in each round (one interval) exactly one thread claims."""
    record = make()
    storage.create(record)
    for round_no in range(3):
        now = T0 + timedelta(seconds=10 * (round_no + 1))

        def claim(now: datetime = now) -> Record | None:
            return storage.claim_describe(record.id, now=now, not_since=now - timedelta(seconds=5))

        winners = [r for r in together(*[claim] * threads) if r is not None]
        assert len(winners) == 1, (round_no, len(winners))
        assert winners[0].describe_count == round_no + 1
        assert storage.get(record.id) == winners[0]


def test_claim_describe_thread_race_has_one_winner_per_interval(storage: Storage) -> None:
    for _ in range(5):
        claim_race_once(storage)


@pytest.mark.parametrize("backend", SHARED_BACKENDS, indirect=True)
def test_claim_describe_process_race_has_one_winner(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import support.storage

    storage = backend.storage
    storage.get("warm-up")
    ctx = multiprocessing.get_context("spawn")
    rounds = [make() for _ in range(3)]
    for record in rounds:
        storage.create(record)
    barrier = ctx.Barrier(RACE_PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=support.storage.claim_race,
            args=(backend.kind, backend.spec, [r.id for r in rounds], T0, barrier, results),
        )
        for _ in range(RACE_PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(RACE_PROCESSES * len(rounds))]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * RACE_PROCESSES, outcomes
    for round_no, record in enumerate(rounds):
        wins = sorted(won for n, won in outcomes if n == round_no)
        assert wins == [0] * (RACE_PROCESSES - 1) + [1], (round_no, outcomes)
        got = storage.get(record.id)
        assert got is not None and got.describe_count == 1 and got.last_described_at == T0


# -- latest_for_user ---------------------------------------------------------------------------


def test_latest_for_user(storage: Storage) -> None:
    at = [T0 + timedelta(minutes=m) for m in range(6)]
    passed_old = make(user_id="u", status=Status.PASSED, at=at[0])
    failed = make(user_id="u", status=Status.FAILED, at=at[1])
    passed_sandbox = make(user_id="u", status=Status.PASSED, at=at[2], sandbox=True)
    other_instance = make(user_id="u", status=Status.PASSED, at=at[4], instance="kyc")
    other_user = make(user_id="v", status=Status.PENDING, at=at[5])
    pending = make(user_id="u", status=Status.PENDING, at=at[3])
    for record in (passed_old, failed, passed_sandbox, other_instance, other_user, pending):
        storage.create(record)

    assert storage.latest_for_user("u", instance="alicertify") == pending
    assert storage.latest_for_user("u", instance="alicertify", status=Status.PASSED) == passed_sandbox
    assert (
        storage.latest_for_user("u", instance="alicertify", status="passed", include_sandbox=False)
        == passed_old
    )
    assert storage.latest_for_user("u", instance="alicertify", status=Status.FAILED) == failed
    assert storage.latest_for_user("u", instance="alicertify", status=Status.EXPIRED) is None
    assert storage.latest_for_user("u", instance="kyc") == other_instance
    assert storage.latest_for_user("u", instance="other") is None
    assert storage.latest_for_user("nobody", instance="alicertify") is None
    # A status change is seen at once (the index follows the record).
    storage.update(pending.id, expect={Status.PENDING}, status=Status.PASSED)
    latest = storage.latest_for_user("u", instance="alicertify", status=Status.PASSED, include_sandbox=False)
    assert latest is not None and latest.id == pending.id
    with pytest.raises(ValueError):
        storage.latest_for_user("u", instance="alicertify", status="bogus")


def test_latest_for_user_breaks_ties_by_id(storage: Storage) -> None:
    records = [make(user_id="tie", at=T0) for _ in range(5)]
    for record in records:
        storage.create(record)
    newest = max(records, key=lambda r: r.id)
    assert storage.latest_for_user("tie", instance="alicertify") == newest


def test_latest_for_user_finds_an_old_pass_behind_many_records(storage: Storage) -> None:
    passed = make(user_id="busy", status=Status.PASSED, at=T0 - timedelta(days=400))
    storage.create(passed)
    for minute in range(80):
        storage.create(make(user_id="busy", status=Status.FAILED, at=T0 + timedelta(minutes=minute)))
    assert storage.latest_for_user("busy", instance="alicertify", status=Status.PASSED) == passed


# -- the listings: stale, undelivered, undeleted, unpurged --------------------------------------


def _updated(r: Record) -> datetime:
    return r.updated_at


def _created(r: Record) -> datetime:
    return r.created_at


#: name -> (call, what belongs in it, its sort key)
LISTINGS: dict[str, tuple[Any, Any, Any]] = {
    "stale": (
        lambda s, before, **kw: s.stale(updated_before=before, **kw),
        lambda r: not r.terminal,
        _updated,
    ),
    "undelivered": (
        lambda s, before, **kw: s.undelivered(updated_before=before, **kw),
        lambda r: r.terminal and r.delivered_at is None,
        _updated,
    ),
    "undeleted": (
        lambda s, before, **kw: s.undeleted(updated_before=before, **kw),
        lambda r: r.terminal and r.certify_id is not None and r.deleted_at is None,
        _updated,
    ),
    "unpurged": (
        lambda s, before, **kw: s.unpurged(created_before=before, **kw),
        lambda r: r.purged_at is None,
        _created,
    ),
}


def listing_population(storage: Storage) -> list[Record]:
    """Records of every status and flag combination, with ties on both sort keys."""
    made = []
    minutes = [0, 0, 0, 1, 2, 2, 3, 5, 8, 13, 40]
    for i, status in enumerate(list(Status) * 5):
        minute = minutes[i % len(minutes)]
        made.append(
            make(
                status=status,
                at=T0 + timedelta(minutes=minutes[(i * 7) % len(minutes)]),
                updated=T0 + timedelta(minutes=minute),
                certify_id=None if i % 4 == 0 else "cid-" + new_id(),
                delivered_at=T0 if i % 3 == 0 else None,
                deleted_at=T0 if i % 5 == 0 else None,
                purged_at=T0 if i % 6 == 0 else None,
            )
        )
    for record in made:
        storage.create(record)
    return made


def page_through(storage: Storage, name: str, before: datetime, limit: int) -> list[Record]:
    call, _, key = LISTINGS[name]
    seen: list[Record] = []
    after = None
    for _ in range(1000):
        page = list(call(storage, before, limit=limit, after=after))
        assert len(page) <= limit
        seen += page
        if len(page) < limit:
            return seen
        after = (key(page[-1]), page[-1].id)
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_listing_filters_orders_and_pages(storage: Storage, name: str) -> None:
    made = listing_population(storage)
    _, belongs, key = LISTINGS[name]
    cutoff = T0 + timedelta(minutes=13)  # exclusive: the 13- and 40-minute records are out
    expected = sorted((r for r in made if belongs(r) and key(r) < cutoff), key=lambda r: (key(r), r.id))
    assert len(expected) >= 8
    assert any(key(a) == key(b) for a, b in zip(expected, expected[1:], strict=False))  # ties are exercised
    call = LISTINGS[name][0]
    assert list(call(storage, cutoff)) == expected
    for limit in (1, 2, 3, 7, 100):
        assert page_through(storage, name, cutoff, limit) == expected, limit
    assert list(call(storage, cutoff, limit=0)) == []
    # A cursor in the middle of a tie: strictly after that (key, id).
    middle = expected[len(expected) // 2]
    rest = [r for r in expected if (key(r), r.id) > (key(middle), middle.id)]
    assert list(call(storage, cutoff, after=(key(middle), middle.id))) == rest
    assert list(call(storage, cutoff.astimezone(CST), after=(key(middle).astimezone(CST), middle.id))) == rest
    # A cursor past the end, or at the cutoff, gives nothing.
    assert list(call(storage, cutoff, after=(cutoff, ""))) == []


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_listing_refuses_bad_cursors(storage: Storage, name: str) -> None:
    call = LISTINGS[name][0]
    with pytest.raises(TypeError):
        call(storage, T0, after=T0)
    with pytest.raises(TypeError):
        call(storage, T0, after=("2025-01-01", "x"))
    with pytest.raises(ValueError, match="timezone-aware"):
        call(storage, T0, after=(datetime(2025, 1, 1), "x"))
    with pytest.raises(ValueError, match="timezone-aware"):
        call(storage, datetime(2025, 1, 1))


def test_undelivered_follows_delivery_and_status(storage: Storage) -> None:
    record = make()
    storage.create(record)
    before = T0 + timedelta(minutes=1)
    assert storage.undelivered(updated_before=before) == []  # not terminal yet
    passed = storage.update(record.id, expect={Status.PENDING}, status=Status.PASSED, passed=True)
    assert storage.undelivered(updated_before=before) == [passed]
    assert storage.undelivered(updated_before=T0) == []  # exclusive cutoff
    delivered = storage.update(record.id, expect={Status.PASSED}, delivered_at=T0)
    assert storage.undelivered(updated_before=before) == []
    # Clearing the mark (an operator asking for a re-send) brings it back.
    again = storage.update(record.id, expect={Status.PASSED}, delivered_at=None)
    assert delivered is not None and storage.undelivered(updated_before=before) == [again]


def test_undeleted_needs_a_certify_id_and_a_terminal_status(storage: Storage) -> None:
    before = T0 + timedelta(minutes=1)
    no_cid = make(status=Status.INIT_FAILED)
    pending = make(certify_id="cid-" + new_id())
    done = make(status=Status.FAILED, certify_id="cid-" + new_id())
    for record in (no_cid, pending, done):
        storage.create(record)
    assert storage.undeleted(updated_before=before) == [done]
    settled = storage.update(pending.id, expect={Status.PENDING}, status=Status.EXPIRED)
    assert sorted(r.id for r in storage.undeleted(updated_before=before)) == sorted([done.id, pending.id])
    storage.update(done.id, expect={Status.FAILED}, deleted_at=T0)
    assert storage.undeleted(updated_before=before) == [settled]
    storage.update(pending.id, expect={Status.EXPIRED}, certify_id=None)
    assert storage.undeleted(updated_before=before) == []


def test_unpurged_is_by_creation_and_ends_with_the_purge(storage: Storage) -> None:
    old = make(status=Status.PASSED, at=T0, updated=T0 + timedelta(days=300), cert_no_digest="d" * 64)
    young = make(status=Status.PENDING, at=T0 + timedelta(days=200))
    for record in (old, young):
        storage.create(record)
    cutoff = T0 + timedelta(days=180)
    assert storage.unpurged(created_before=cutoff) == [old]
    purged = storage.update(old.id, expect=set(Status), **records.purge_changes(T0 + timedelta(days=181)))
    assert purged is not None
    assert (purged.cert_no_digest, purged.cert_no_masked, purged.cert_name_masked) == ("", "", "")
    assert purged.purged_at == T0 + timedelta(days=181)
    # What an audit needs stays.
    assert purged.replace(cert_no_digest="d" * 64, purged_at=None) == old
    assert storage.unpurged(created_before=cutoff) == []
    assert storage.unpurged(created_before=cutoff + timedelta(days=30)) == [young]


PURGE_ROUNDS = 20


def test_purge_and_transitions_never_undo_each_other(storage: Storage) -> None:
    """A purge and reconcile's compare-and-set settling the same record at the same moment:
    whichever order they land in, the record ends passed *and* purged."""
    for _ in range(PURGE_ROUNDS):
        record = make(cert_no_digest="d" * 64, cert_no_masked="1****2", cert_name_masked="张*")
        storage.create(record)
        purged, settled = together(
            lambda: storage.update(record.id, expect=set(Status), **records.purge_changes(T0)),  # noqa: B023
            lambda: storage.update(  # noqa: B023
                record.id,  # noqa: B023
                expect={Status.PENDING},
                status=Status.PASSED,
                passed=True,
                sub_code="200",
                updated_at=T0 + timedelta(seconds=1),
            ),
        )
        assert purged is not None and settled is not None
        got = storage.get(record.id)
        assert got == record.replace(
            status=Status.PASSED,
            passed=True,
            sub_code="200",
            updated_at=T0 + timedelta(seconds=1),
            cert_no_digest="",
            cert_no_masked="",
            cert_name_masked="",
            purged_at=T0,
        )
