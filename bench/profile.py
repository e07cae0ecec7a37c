"""``python -m bench.profile [--requests N] [--top K] [--postgres]``: where a result post's time goes.

Builds P2's rig (:func:`bench.p2_overhead.rig`: the fake cloud over HTTP in its own process, the
extension, the peer and the minimal view on SQLite) and prints:

1. the whole request of each variant and its parts, each timed alone (:mod:`bench.p2_parts`),
   with each variant's "glue" (its time outside the named parts);
2. with ``--postgres``, the storage's describe claim, read and write on PostgreSQL beside a raw
   ``psycopg`` ``UPDATE`` + commit;
3. a cProfile of N extension requests: the functions with the most own time, then the
   extension's own functions by cumulative time per request. A deterministic profiler inflates
   small calls: read part 1 for the sizes, part 3 for the names.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

from .p2_overhead import PATHS
from .p2_overhead import rig
from .p2_overhead import timed_request
from .p2_parts import breakdown
from .p2_parts import glue


def timings(n: int) -> str:
    with rig() as r:
        for _ in range(50):  # warm-up
            for name, app in r.apps.items():
                timed_request(app, PATHS[name], r.ids)()
        parts = breakdown(r, n)
    lines = [f"µs, median of {n}"]
    lines += [f"{name:<40} {'n/a' if us is None else f'{us:8.0f}':>8}" for name, us in parts.items()]
    lines += [
        f"{'glue: ' + name:<40} {'n/a' if us is None else f'{us:8.0f}':>8}"
        for name, us in glue(parts).items()
    ]
    return "\n".join(lines)


def profile(n: int, top: int) -> str:
    with rig() as r:
        once = timed_request(r.apps["extension"], PATHS["extension"], r.ids)
        for _ in range(50):
            once()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            once()
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"The extension's functions by cumulative time, µs per request ({n} requests):\n")
    out.write(f"{'calls/req':>9} {'own':>8} {'cumulative':>10}  function\n")
    rows = []
    for (filename, line, name), (_cc, ncalls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "flask_alicertify" in filename:
            where = filename.split("flask_alicertify", 1)[1].lstrip("/")
            rows.append((cumulative, ncalls, own, f"{where}:{line}({name})"))
    for cumulative, ncalls, own, where in sorted(rows, reverse=True)[:top]:
        out.write(f"{ncalls / n:9.1f} {own / n * 1e6:8.1f} {cumulative / n * 1e6:10.1f}  {where}\n")
    return out.getvalue()


def postgres(n: int) -> str:
    """A result post's statement on PostgreSQL (the claim; a miss adds the read, an outcome the
    write) vs one raw UPDATE + commit.

    Each is timed alone on a fresh database; the statements listed are those SQLAlchemy executed
    (the pool's pre-ping and the transaction's BEGIN/COMMIT come on top, unlisted).
    """
    import uuid
    from datetime import datetime
    from datetime import timezone

    import psycopg
    import sqlalchemy as sa

    from flask_alicertify.records import NON_TERMINAL
    from flask_alicertify.records import Record
    from flask_alicertify.records import Status
    from flask_alicertify.storage.sqlalchemy import SQLAlchemyStorage

    from .p2_parts import median_us
    from .servers import postgres_database

    lines = []
    with postgres_database("alicertify_bench_profile") as url:
        storage = SQLAlchemyStorage(url.replace("postgresql://", "postgresql+psycopg://", 1))
        now = datetime.now(timezone.utc)
        record = Record(
            id=uuid.uuid4().hex, status=Status.PENDING, created_at=now, updated_at=now, user_id="u",
            certify_id="c" * 32,
        )  # fmt: skip
        storage.create(record)
        seen: list[str] = []
        sa.event.listen(storage.engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0]))

        def claim() -> object:
            t = datetime.now(timezone.utc)
            return storage.claim_describe(
                certify_id=record.certify_id,
                now=t,
                not_since=t,
                match={"user_id": "u", "instance": record.instance, "sandbox": record.sandbox},
                changes={"client_status": "9000", "updated_at": t},
            )

        def write() -> object:
            t = datetime.now(timezone.utc)
            return storage.update(record.id, expect=NON_TERMINAL, updated_at=t, client_status="9000")

        for name, fn in (("read", lambda: storage.get_by_certify_id(record.certify_id or "")),
                         ("claim", claim), ("write", write)):  # fmt: skip
            seen.clear()
            fn()
            statements = list(seen)
            lines.append(f"{'postgresql: ' + name:<40} {median_us(fn, n):8.0f}  statements {statements}")
        storage.close()
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (id text primary key, n int)")
            conn.execute("INSERT INTO t VALUES ('a', 0)")
            conn.commit()

            def raw() -> None:
                conn.execute("UPDATE t SET n = n + 1 WHERE id = %s", ("a",))
                conn.commit()

            lines.append(f"{'postgresql: raw psycopg UPDATE + commit':<40} {median_us(raw, n):8.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--postgres", action="store_true", help="also time the storage on PostgreSQL")
    args = parser.parse_args(argv)
    print(timings(args.requests))
    if args.postgres:
        print(postgres(args.requests))
    print()
    print(profile(args.requests, args.top))


if __name__ == "__main__":
    main()
