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
    for _ in range(3):
        record = make()
        storage.create(record)
        barrier = ctx.Barrier(RACE_PROCESSES)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=support.storage.race,
                args=(backend.kind, backend.spec, record.id, barrier, results),
            )
            for _ in range(RACE_PROCESSES)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0] * RACE_PROCESSES, outcomes
        assert sorted(outcomes, key=str) == [False] * (RACE_PROCESSES - 1) + [True]
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
