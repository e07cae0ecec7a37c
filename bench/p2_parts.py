"""The parts of P2's requests, each timed alone: what the extension adds, and where.

Each part is the median of ``n`` calls in a loop, with no profiler (which inflates small calls):
the describe through the extension's gateway (quota guard included) and through the minimal
view's (guard off) and the SDK's; the extension's describe claim (the one ``UPDATE`` a result
post makes before describing: it lets one request per interval describe, checks the owner and
stores the client's claim), the minimal view's raw ``UPDATE`` + commit, the peer's ORM load +
commit; the body's validation, the answer's JSON, the language, and Flask's own dispatch (a bare
``POST`` view on the extension's app). A part the current code cannot run (an internal renamed)
is left out rather than failing the figure. The parts do not add up exactly to a whole request
(caches, branch prediction); "glue" is the difference, i.e. the blueprint's hooks, the user
loader, the service's logic and the error set-up.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime
from datetime import timezone
from typing import TYPE_CHECKING
from typing import Any

from flask import Flask
from flask import jsonify

from .common import SCENE_ID
from .common import interleave
from .p2_apps import Verification
from .p2_apps import peer_db

if TYPE_CHECKING:
    from .p2_rig import Rig

USER = "user-1"


def median_us(fn: Callable[[], Any], n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def noop_request(app: Flask) -> Callable[[], None]:
    from .p2_rig import environ

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return lambda _data: None

    def once() -> None:
        body = app.wsgi_app(
            environ("/bench/noop", {"certifyId": "x", "resultStatus": "9000"}), start_response
        )
        b"".join(body)

    return once


def _parts(r: Rig) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]]]:
    """The parts timed as they are, and those timed inside one request context (pushed once)."""
    from flask_alicertify import schemas
    from flask_alicertify.responses import choose_language
    from flask_alicertify.responses import load
    from flask_alicertify.results import result_body

    ext, peer = r.apps["extension"], r.apps["peer"]
    st = ext.extensions["alicertify"]["alicertify"]
    minimal = r.apps["minimal"].extensions["bench_parts"]
    sdk = peer.extensions["bench_parts"]
    certify_id = r.ids[0]
    record = st.storage.get_by_certify_id(certify_id)
    body = {"certifyId": certify_id, "resultStatus": "9000", "result": None}

    def claim() -> Any:
        """The one statement of a result post before describe: claim, owner check and the claim."""
        now = datetime.now(timezone.utc)
        return st.storage.claim_describe(
            certify_id=certify_id,
            now=now,
            not_since=now,
            match={"user_id": USER, "instance": record.instance, "sandbox": record.sandbox},
            changes={"client_status": "9000", "client_error_code": None, "updated_at": now},
        )

    def raw_update() -> None:
        now = datetime.now(timezone.utc).isoformat()
        minimal["db"].execute(
            "UPDATE records SET client_status = ?, describe_count = describe_count + 1,"
            " last_described_at = ?, updated_at = ? WHERE certify_id = ? AND user_id = ?",
            ("9000", now, now, certify_id, USER),
        )
        minimal["db"].commit()

    def sdk_describe() -> Any:
        request = sdk["models"].DescribeFaceVerifyRequest(scene_id=int(SCENE_ID), certify_id=certify_id)
        return sdk["client"].describe_face_verify_with_options(request, sdk["runtime"])

    def orm_cycle() -> None:
        with peer.app_context():
            row = peer_db.session.execute(
                peer_db.select(Verification).filter_by(certify_id=certify_id, user_id=USER)
            ).scalar_one()
            row.describe_count += 1
            row.updated_at = datetime.now(timezone.utc)
            peer_db.session.commit()

    from .p2_rig import PATHS
    from .p2_rig import timed_request

    wholes = {f"whole_{name}": timed_request(app, PATHS[name], r.ids) for name, app in r.apps.items()}
    return {
        **wholes,
        "describe_extension": lambda: st.gateway.describe(certify_id),
        "describe_minimal": lambda: minimal["gateway"].describe(certify_id),
        "describe_sdk": sdk_describe,
        "claim": claim,
        "raw_update": raw_update,
        "orm_read_write": orm_cycle,
        "flask_floor": noop_request(ext),
    }, {
        "validate": lambda: load(schemas.RESULT, body),
        "choose_language": lambda: choose_language(st.settings.language),
        "answer_json": lambda: jsonify(result_body(record, st.settings.language)),
    }


def breakdown(r: Rig, n: int) -> dict[str, float | None]:
    """Microseconds per part (None for a part the current code could not run).

    The parts are timed round-robin (every part once per round, the order reversed every other
    round), so that load on the machine drifting during the measurement moves all of them alike.
    """
    try:
        plain, in_request = _parts(r)
    except Exception:  # noqa: BLE001 - the breakdown explains the figure; it must never break it
        return {}
    body = {"certifyId": r.ids[0], "resultStatus": "9000", "result": None}
    with r.apps["extension"].test_request_context("/alicertify/result", method="POST", json=body):
        timers: dict[str, Callable[[], float]] = {}
        out: dict[str, float | None] = {}
        for name, fn in {**plain, **in_request}.items():
            try:
                fn()
            except Exception:  # noqa: BLE001 - see above
                out[name] = None
                continue
            # timed_request answers its own seconds; every other part is timed around the call
            timers[name] = fn if name.startswith("whole_") else _timed(fn)
        samples = interleave(timers, rounds=n, warmup=0)
    out.update({name: statistics.median(values) * 1e6 for name, values in samples.items()})
    return out


def _timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def once() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    return once


def glue(parts: dict[str, float | None]) -> dict[str, float | None]:
    """Each variant's time not in its named parts: the request handling around them (µs).

    The whole requests are those timed with the parts (``whole_*``), not the figure's medians, so
    that load on the machine moves both alike.
    """

    def rest(variant: str, names: tuple[str, ...]) -> float | None:
        values = [parts.get(n) for n in (f"whole_{variant}", *names)]
        if any(v is None for v in values):
            return None
        total, *rest_values = (v for v in values if v is not None)
        return total - sum(rest_values)

    ext = ("flask_floor", "describe_extension", "claim", "validate", "answer_json", "choose_language")
    return {
        "extension": rest("extension", ext),
        "minimal": rest("minimal", ("flask_floor", "describe_minimal", "raw_update")),
        "peer": rest("peer", ("flask_floor", "describe_sdk", "orm_read_write")),
    }
