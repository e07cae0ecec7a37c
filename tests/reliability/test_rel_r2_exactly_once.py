"""R2 exactly-once: 16 result posts, 3 callbacks and a reconcile on one certify id → one certify_passed.

Per storage backend, in two shapes:

* threads: one app, 20 threads released together by a barrier;
* processes: three WSGI worker processes (werkzeug servers, spawned) on one SQLite file /
  PostgreSQL table / Redis prefix, all talking over loopback HTTP to ONE fake cloud served by the
  test process (so every describe agrees), plus the test process itself running reconcile.
  Memory storage is per-process, so it only runs in threads.

Each round is a fresh verification; the figure is the number of rounds with exactly one
``certify_passed`` (counted in every process) out of the rounds run.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import httpx
import pytest
import support.workers as workers
from support.reliability import ACCESS_KEY_ID
from support.reliability import ACCESS_KEY_SECRET
from support.reliability import CALLBACK_URL
from support.reliability import CERT_NOS
from support.reliability import NAMES
from support.reliability import PREFIX
from support.reliability import fake_app
from support.reliability import report
from support.reliability import run_together
from support.reliability import size
from support.storage import BACKENDS
from support.storage import open_test_backend

from flask_alicertify import signals
from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import FakeCloud

ROUNDS = size(50, 2)
PROCESS_ROUNDS = size(50, 2)
POSTS = 16
CALLBACKS = 3
WORKERS = 3

RESULTS: dict[str, tuple[int, int]] = {}


def _report() -> None:
    parts = [f"{name} {ok}/{n}" for name, (ok, n) in RESULTS.items()]
    ok = all(good == n for good, n in RESULTS.values())
    report(
        "R2",
        "exactly-once",
        f"{POSTS} result posts + {CALLBACKS} callbacks + 1 reconcile per round; rounds with exactly one "
        f"certify_passed: {', '.join(parts)}",
        target="every round exactly one certify_passed",
        met=ok,
        size=f"{ROUNDS} rounds × backend (threads), {PROCESS_ROUNDS} rounds × backend ({WORKERS} processes)",
    )


def _query(url: str | None) -> dict[str, str]:
    assert url is not None
    return dict(parse_qsl(urlsplit(url).query))


@pytest.mark.parametrize("kind", BACKENDS)
def test_r2_exactly_once_in_threads(kind: str, tmp_path: Path) -> None:
    good = 0
    with (
        open_test_backend(kind, tmp_path) as backend,
        fake_app(
            storage=backend.storage,
            ALICERTIFY_CALLBACK_URL=CALLBACK_URL,
            ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
            ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
        ) as h,
    ):
        service = h.ext.service(h.app)
        for _ in range(ROUNDS):
            cid = h.start("alice", name=NAMES[0], number=CERT_NOS[0])
            record_id = h.record(cid).id
            h.cloud.complete(cid, passed=True)
            query = _query(h.cloud.callback_url(cid))

            def post(cid: str = cid) -> int:
                return h.post_result(cid, "9000").status_code  # type: ignore[no-any-return]

            def callback(query: dict[str, str] = query) -> int:
                response = h.client(None).get(PREFIX + "/callback", query_string=query)
                return response.status_code  # type: ignore[no-any-return]

            def reconcile() -> int:
                service.reconcile(older_than=timedelta(0))
                return 200

            statuses = run_together([post] * POSTS + [callback] * CALLBACKS + [reconcile])
            assert statuses == [200] * (POSTS + CALLBACKS + 1)
            assert h.record(cid).status == Status.PASSED
            good += h.count("certify_passed", record_id) == 1
    RESULTS[f"threads/{kind}"] = (good, ROUNDS)
    _report()
    assert good == ROUNDS


SHARED = [p for p in BACKENDS if p.values[0] in ("sqlite", "postgresql", "redis")]


@pytest.mark.parametrize("kind", SHARED)
def test_r2_exactly_once_across_processes(kind: str, tmp_path: Path) -> None:
    cloud = FakeCloud(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET)
    ctx = multiprocessing.get_context("spawn")
    log_dir = tmp_path / "passed"
    log_dir.mkdir()
    good = 0
    with open_test_backend(kind, tmp_path) as backend, cloud.serve() as base_url:
        backend.storage.get("warm-up")  # creates the table before the workers race to
        ports: Any = ctx.Queue()
        stop = ctx.Event()
        procs = [
            ctx.Process(
                target=workers.serve,
                args=(kind, backend.spec, base_url, str(log_dir), ports, stop),
                daemon=True,
            )
            for _ in range(WORKERS)
        ]
        for p in procs:
            p.start()
        try:
            got = [ports.get(timeout=120) for _ in procs]
            assert all(isinstance(port, int) for port in got), got
            urls = [f"http://127.0.0.1:{port}" for port in got]
            # The test process is a fourth process on the same database: it runs reconcile.
            parent, parent_storage = workers.build_app(kind, backend.spec, base_url, None)
            parent_passed: list[str] = []
            lock = threading.Lock()

            def count(sender: Any, record: Any, **extra: Any) -> None:
                with lock:
                    parent_passed.append(record.id)

            signals.certify_passed.connect(count, sender=parent, weak=False)
            try:
                service = parent.extensions["alicertify"]["alicertify"].service
                with httpx.Client(timeout=60, headers={"X-User": "alice"}) as http:
                    for _ in range(PROCESS_ROUNDS):
                        body = {"serviceParameters": {"certNo": CERT_NOS[0], "certName": NAMES[0]}}
                        started = http.post(urls[0] + PREFIX + "/init", json=body)
                        assert started.status_code == 200, started.text
                        cid = started.json()["certifyId"]
                        record = backend.storage.get_by_certify_id(cid)
                        assert record is not None
                        cloud.complete(cid, passed=True)
                        query = _query(cloud.callback_url(cid))
                        jobs = []
                        for i in range(POSTS):

                            def post(url: str = urls[i % WORKERS], cid: str = cid) -> int:
                                payload = {
                                    "certifyId": cid,
                                    "resultStatus": "9000",
                                    "result": {"certifyId": cid},
                                }
                                return http.post(url + PREFIX + "/result", json=payload).status_code

                            jobs.append(post)
                        for i in range(CALLBACKS):

                            def callback(url: str = urls[i % WORKERS], query: dict[str, str] = query) -> int:
                                return http.get(url + PREFIX + "/callback", params=query).status_code

                            jobs.append(callback)

                        def reconcile() -> int:
                            service.reconcile(older_than=timedelta(0))
                            return 200

                        statuses = run_together([*jobs, reconcile])
                        assert statuses == [200] * (POSTS + CALLBACKS + 1)
                        stored = backend.storage.get(record.id)
                        assert stored is not None and stored.status == Status.PASSED
                        # Every response is in, so every worker's line for this record is written.
                        lines = [
                            line
                            for f in log_dir.glob("passed-*.log")
                            for line in f.read_text().splitlines()
                            if line.endswith(" " + record.id)
                        ]
                        with lock:
                            total = len(lines) + parent_passed.count(record.id)
                        good += total == 1
            finally:
                signals.certify_passed.disconnect(count, sender=parent)
                parent.extensions["alicertify"]["alicertify"].finalizer()
                parent_storage.close()
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=30)
            for p in procs:
                if p.is_alive():  # our own child, by its handle
                    p.terminate()
                    p.join(timeout=10)
        _drain(ports)
    RESULTS[f"processes/{kind}"] = (good, PROCESS_ROUNDS)
    _report()
    assert good == PROCESS_ROUNDS
    assert [p.exitcode for p in procs] == [0] * WORKERS


def _drain(q: Any) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
    q.close()
    q.join_thread()
