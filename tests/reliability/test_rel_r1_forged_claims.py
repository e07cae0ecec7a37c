"""R1 forged claims: no client claim, however forged, makes a record ``passed``.

Hypothesis generates scenarios: what Alibaba really decides for a fresh record (Passed=F with
any SubCode, never finished / 424, passes only after some 424s, or expires), then a sequence of
forged or inconsistent client moves against it: every resultStatus (documented, unknown, empty,
integers), ``result`` null / empty / with the record's own, another user's, a passed record's or
an unknown certifyId, posts aimed at other users' and unknown certify ids, forged callbacks
(``passed=T`` with wrong or no token), reads of ``/result/<id>``, and replays after the record
expired. After each scenario, every record that is ``passed`` must have had a describe answer
``Passed = T`` for its own stored certify id (the fake cloud knows: the session was finished as
passed and its verdict described).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from support.reliability import CERT_NOS
from support.reliability import NAMES
from support.reliability import PREFIX
from support.reliability import Clock
from support.reliability import fake_app
from support.reliability import report
from support.reliability import size

from flask_alicertify.records import Status
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.settings import CERTIFY_ID_LIFETIME

EXAMPLES = size(500, 40)
FAIL_SUB_CODES = ("201", "202", "203", "204", "205", "206", "207", "209")
STATUSES = st.one_of(
    st.sampled_from(["9000", "6001", "6002", "4000", "8000", "9000 ", " 9000", "T", "passed", "200"]),
    st.integers(min_value=-10, max_value=100_000),
    st.text(max_size=12),
)
#: What ``result`` says, relative to the record under attack.
RESULT_SHAPES = ("own", "null", "empty", "foreign", "victim", "unknown", "own+errorCode", "extra-passed")
#: Where the post is aimed.
TARGETS = ("own", "own", "own", "foreign", "victim", "unknown")
MOVE = st.one_of(
    st.tuples(st.just("post"), STATUSES, st.sampled_from(RESULT_SHAPES), st.sampled_from(TARGETS)),
    st.tuples(
        st.just("callback"), st.sampled_from(["T", "200", "true", ""]), st.sampled_from(["wrong", "none"])
    ),
    st.tuples(st.just("read"), st.sampled_from(["own", "victim"])),
)
SCENARIO = st.tuples(
    st.sampled_from(["fails", "never", "passes-later", "expires"]),
    st.sampled_from(FAIL_SUB_CODES),
    st.integers(min_value=1, max_value=3),
    st.lists(MOVE, min_size=1, max_size=6),
)


def test_r1_forged_claims_never_reach_passed() -> None:
    clock = Clock()
    counters = {"claims": 0, "scenarios": 0, "passed_without_T": 0, "legit_passed": 0}
    statuses: dict[int, int] = {}
    with fake_app(
        clock=clock,
        ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
        ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
        ALICERTIFY_CALLBACK_URL="https://app.example.com/alicertify/callback",
    ) as h:
        # A record another user owns (still pending) and one that legitimately passed.
        bob = h.start("bob", name=NAMES[1], number=CERT_NOS[1])
        victim = h.start("carol", name=NAMES[2], number=CERT_NOS[2])
        h.cloud.complete(victim, passed=True)
        assert h.post_result(victim, user="carol").get_json()["status"] == "passed"

        def check_all() -> None:
            for certify_id, session in h.cloud.sessions.items():
                record = h.storage.get_by_certify_id(certify_id)
                if record is None or record.status != Status.PASSED:
                    continue
                described = [c for c in h.cloud.calls_for("DescribeFaceVerify") if c.certify_id == certify_id]
                if not (session.passed and session.verdict_described and described):
                    counters["passed_without_T"] += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(SCENARIO)
        def scenario(s: tuple[str, str, int, list[tuple[Any, ...]]]) -> None:
            truth, sub_code, after, moves = s
            counters["scenarios"] += 1
            own = h.start("mallory", name=NAMES[3], number=CERT_NOS[3])
            if truth == "fails":
                h.cloud.script(own, Outcome.fails(sub_code))
            elif truth == "passes-later":
                h.cloud.script(own, Outcome.passes(after=after))
            else:
                h.cloud.script(own, Outcome.never_finishes())
            if truth == "expires":
                clock.advance(CERTIFY_ID_LIFETIME + 301)
                h.ext.service(h.app).reconcile(older_than=timedelta(0))
                assert h.record(own).status == Status.EXPIRED
            ids = {"own": own, "foreign": bob, "victim": victim, "unknown": "0" * 31 + "1"}
            client = h.client("mallory")
            for move in moves:
                if move[0] == "post":
                    _, status, shape, target = move
                    result: Any = {
                        "own": {"certifyId": own},
                        "null": None,
                        "empty": {},
                        "foreign": {"certifyId": bob},
                        "victim": {"certifyId": victim},
                        "unknown": {"certifyId": ids["unknown"]},
                        "own+errorCode": {"certifyId": own, "errorCode": "UNKNOWN_ERROR"},
                        "extra-passed": {"certifyId": own, "passed": True, "Passed": "T", "subCode": "200"},
                    }[shape]
                    body = {"certifyId": ids[target], "resultStatus": status, "result": result}
                    response = client.post(PREFIX + "/result", json=body)
                    expected = {
                        "own": {200, 400},
                        "foreign": {403, 400},
                        "victim": {403, 400},
                        "unknown": {404, 400},
                    }
                    assert response.status_code in expected[target], (target, response.get_json())
                elif move[0] == "callback":
                    _, passed, token = move
                    query = {"certifyId": own, "passed": passed}
                    if token == "wrong":
                        query["callbackToken"] = "0" * 32
                    response = h.client(None).get(PREFIX + "/callback", query_string=query)
                    assert response.status_code == 403, response.get_json()
                else:
                    response = client.get(f"{PREFIX}/result/{ids[move[1]]}")
                    assert response.status_code == (200 if move[1] == "own" else 403)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                counters["claims"] += 1
            record = h.record(own)
            if truth in ("fails", "never", "expires"):
                assert record.status != Status.PASSED, (truth, moves)
            if record.status == Status.PASSED:
                counters["legit_passed"] += 1
            check_all()

        scenario()
        check_all()

    n, bad = counters["claims"], counters["passed_without_T"]
    report(
        "R1",
        "forged claims",
        f"{n} forged/inconsistent claims in {counters['scenarios']} scenarios "
        f"(HTTP {dict(sorted(statuses.items()))}), {bad} records reached passed without Passed=T "
        f"({counters['legit_passed']} passed after a real Passed=T)",
        target=">= 500 claims, 0 passed without Passed=T" if EXAMPLES >= 500 else "0 passed without Passed=T",
        met=bad == 0 and n >= min(500, EXAMPLES),
        size=f"{EXAMPLES} scenarios",
    )
    assert bad == 0
    assert n >= min(500, EXAMPLES)
