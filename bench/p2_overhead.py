"""P2 overhead: time per ``POST /result`` through the extension vs the peer and the minimal view.

The three apps are in :mod:`bench.p2_apps`. They run in this process and describe over HTTP
against one fake cloud in another process (:mod:`bench.fake_server`), so no variant pays for the
fake's signature checks on its own CPU time and all pay the same loopback round trip. SQLite files
live in one temporary folder, all with the extension's journal mode, sync level and busy timeout.
The sessions (started through the extension's ``/init``) never finish, so every request of every
variant describes (Code 424) and writes the row once: the peer loads and commits it, the minimal
view and the extension make one ``UPDATE`` (the extension's also checks the owner).

Each request is a fresh WSGI environ handed to ``app.wsgi_app`` (building it is not timed). The
variants alternate request by request (A B C, then C B A, …) and the medians are compared. The
fake counts the calls it received, which proves every timed request described upstream.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .common import CERT_NAME
from .common import CERT_NO
from .common import Check
from .common import Figure
from .common import Size
from .common import command
from .common import interleave
from .common import median
from .common import ms
from .common import percentile
from .fake_server import FakeServers
from .p2_apps import extension_app
from .p2_apps import minimal_app
from .p2_apps import peer_app
from .p2_apps import sqlite_settings
from .p2_parts import breakdown
from .p2_parts import glue
from .p2_rig import PATHS
from .p2_rig import USER
from .p2_rig import Rig
from .p2_rig import timed_request

SESSIONS = 20


@contextmanager
def rig() -> Iterator[Rig]:
    with tempfile.TemporaryDirectory(prefix="alicertify-bench-p2-") as tmp, FakeServers(1) as fake:
        folder, url = Path(tmp), fake.urls[0]
        ext = extension_app(url, folder / "extension.sqlite3")
        client = ext.test_client()
        ids: list[str] = []
        for _ in range(SESSIONS):
            answer = client.post(
                "/alicertify/init",
                json={"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}},
                headers={"X-User": USER},
            )
            assert answer.status_code == 200, answer.get_data(as_text=True)
            ids.append(answer.get_json()["certifyId"])
        pragmas = sqlite_settings(ext)
        apps = {
            "extension": ext,
            "peer": peer_app(url, folder / "peer.sqlite3", pragmas, ids, USER),
            "minimal": minimal_app(url, folder / "minimal.sqlite3", pragmas, ids, USER),
        }
        try:
            yield Rig(apps, ids, fake, pragmas)
        finally:
            for name in ("peer", "minimal"):
                for close in apps[name].extensions["bench_close"]:
                    close()
            ext.extensions["alicertify"]["alicertify"].extension.close(ext)


def statements_per_request(r: Rig) -> dict[str, int]:
    """SQL statements one more request sends to SQLite, per variant (untimed, after the run)."""
    counts: dict[str, int] = {}
    for name, engine in r.engines().items():
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any, _seen: list[str] = seen) -> None:
            _seen.append(statement.split(None, 1)[0].upper())

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            timed_request(r.apps[name], PATHS[name], r.ids)()
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        counts[name] = len(seen)
    counts["minimal"] = 1  # one UPDATE (plus its commit), by construction
    return counts


def run(size: Size = "full") -> Figure:
    started = time.perf_counter()
    rounds, warmup = (2000, 200) if size == "full" else (30, 3)
    with rig() as r:
        calls_before = r.fake.stats()["calls"][0]
        samples = interleave(
            {name: timed_request(app, PATHS[name], r.ids) for name, app in r.apps.items()},
            rounds=rounds,
            warmup=warmup,
        )
        described = r.fake.stats()["calls"][0] - calls_before
        statements = statements_per_request(r)
        parts = breakdown(r, 300 if size == "full" else 5)
        pragmas = r.pragmas
    expected = (rounds + warmup) * len(PATHS)
    if described != expected:
        raise RuntimeError(f"the fake saw {described} describes for {expected} timed requests")
    med = {name: median(values) for name, values in samples.items()}
    vs_peer = med["extension"] / med["peer"]
    vs_minimal = med["extension"] / med["minimal"]
    shared = f"{rounds} requests each, alternating"
    checks = [
        Check(
            "P2peer",
            "time per `POST /result` through the extension ÷ the peer: a hand-written view on the "
            "official SDK client + Flask-SQLAlchemy ORM + `jsonify` (same fake upstream over HTTP, "
            "same SQLite settings)",
            vs_peer,
            "<=",
            0.5,
            detail=f"{vs_peer:.2f}× (median {ms(med['extension'])} vs {ms(med['peer'])}, {shared})",
        ),
        Check(
            "P2",
            "same, ÷ a minimal view: describe through our transport, one raw `sqlite3` UPDATE, `jsonify`",
            vs_minimal,
            "<=",
            1.3,
            detail=f"{vs_minimal:.2f}× (median {ms(med['extension'])} vs {ms(med['minimal'])}, {shared})",
        ),
    ]
    values: dict[str, Any] = {
        "requests_each": rounds,
        "warmup_each": warmup,
        "sessions": SESSIONS,
        "upstream_describes": described,
        "sqlite": pragmas,
        "statements_per_request": statements,
    }
    for name, values_s in samples.items():
        values[name] = {
            "median_ms": med[name] * 1000.0,
            "p10_ms": percentile(values_s, 0.1) * 1000.0,
            "p90_ms": percentile(values_s, 0.9) * 1000.0,
        }
    values["parts_us"] = parts
    values["glue_us"] = glue(parts)
    values["ratio_peer"] = vs_peer
    values["ratio_minimal"] = vs_minimal
    return Figure(
        "P2",
        "Extension overhead per request",
        checks,
        values,
        command("p2"),
        seconds=time.perf_counter() - started,
    )
