"""R6 callbacks and binding: tokens, record ownership, and the attempt limit under concurrency.

* A callback with a wrong token, no token, or another record's (valid) token → 403, the record
  unchanged and no describe made (a forged callback cannot even make us spend a describe);
  the real token is accepted under either spelling (``callbackToken`` / ``CallbackToken``).
* Another user posting ``/result`` or reading ``/result/<id>`` of a record → 403, unchanged.
* 20 parallel inits for one user with ``ALICERTIFY_MAX_ATTEMPTS_PER_DAY = 5`` → exactly 5 Init
  calls reach Alibaba, on every storage backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest
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

from flask_alicertify.records import Status

LIMIT_ROUNDS = size(10, 1)
PARALLEL = 20
LIMIT = 5

FIGURES: dict[str, Any] = {"refused": 0, "probes": 0, "changed": 0, "limit": {}}


def _report() -> None:
    limit = FIGURES["limit"]
    per_backend = ", ".join(f"{kind} {ok}/{n}" for kind, (ok, n) in limit.items())
    met = FIGURES["refused"] == FIGURES["probes"] and FIGURES["changed"] == 0
    met = met and all(ok == n for ok, n in limit.values())
    report(
        "R6",
        "callbacks and binding",
        f"{FIGURES['refused']}/{FIGURES['probes']} forged callbacks and foreign-user requests answered 403, "
        f"{FIGURES['changed']} records changed by them; {PARALLEL} parallel inits with a limit of {LIMIT}: "
        f"rounds where exactly {LIMIT} reached Alibaba: {per_backend or '-'}",
        target=f"all 403, 0 changed, exactly {LIMIT} Init calls every round",
        met=met,
        size=f"{LIMIT_ROUNDS} rounds × backend",
    )


@pytest.mark.parametrize("kind", BACKENDS)
def test_r6_callback_tokens_and_user_binding(kind: str, tmp_path: Path) -> None:
    with (
        open_test_backend(kind, tmp_path) as backend,
        fake_app(
            storage=backend.storage,
            ALICERTIFY_CALLBACK_URL=CALLBACK_URL,
            ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
        ) as h,
    ):
        mine = h.start("alice", name=NAMES[0], number=CERT_NOS[0])
        other = h.start("bob", name=NAMES[1], number=CERT_NOS[1])
        for cid in (mine, other):
            h.cloud.complete(cid, passed=True)
        my_query = dict(parse_qsl(urlsplit(h.cloud.callback_url(mine) or "").query))
        other_token = dict(parse_qsl(urlsplit(h.cloud.callback_url(other) or "").query))["callbackToken"]
        real_token = my_query["callbackToken"]

        forged = [
            {"certifyId": mine, "passed": "T"},
            {"certifyId": mine, "passed": "200", "callbackToken": ""},
            {"certifyId": mine, "passed": "T", "callbackToken": "0" * len(real_token)},
            {"certifyId": mine, "passed": "T", "callbackToken": real_token[:-1]},
            {"certifyId": mine, "passed": "T", "callbackToken": real_token + "0"},
            {"certifyId": mine, "passed": "T", "callbackToken": real_token.upper()},
            {"certifyId": mine, "passed": "T", "callbackToken": other_token},
            {"certifyId": mine, "passed": "T", "CallbackToken": other_token},
            {"certifyId": other, "passed": "T", "callbackToken": real_token},
        ]
        client = h.client(None)
        for query in forged:
            before = {cid: h.record(cid) for cid in (mine, other)}
            describes = len(h.cloud.calls_for("DescribeFaceVerify"))
            response = client.get(PREFIX + "/callback", query_string=query)
            FIGURES["probes"] += 1
            FIGURES["refused"] += response.status_code == 403
            after = {cid: h.record(cid) for cid in (mine, other)}
            FIGURES["changed"] += sum(before[c] != after[c] for c in before)
            assert response.status_code == 403, (query, response.get_json())
            assert response.get_json()["error"]["code"] == "invalid_callback_token"
            assert after == before
            assert len(h.cloud.calls_for("DescribeFaceVerify")) == describes

        # Foreign users: bob on alice's record, alice on bob's; neither changes anything.
        for user, cid in (("bob", mine), ("alice", other), ("mallory", mine)):
            before = h.record(cid)
            for response in (
                h.post_result(cid, "9000", user=user),
                h.post_result(cid, "6001", None, user=user),
                h.client(user).get(f"{PREFIX}/result/{cid}"),
            ):
                FIGURES["probes"] += 1
                FIGURES["refused"] += response.status_code == 403
                assert response.status_code == 403, response.get_json()
                assert response.get_json()["error"]["code"] == "forbidden"
            FIGURES["changed"] += h.record(cid) != before
            assert h.record(cid) == before
        assert h.count("certify_passed") == 0

        # The real token works, under both spellings; the record passes once.
        assert client.get(PREFIX + "/callback", query_string=my_query).status_code == 200
        upper = {**my_query, "CallbackToken": my_query.pop("callbackToken")}
        assert client.get(PREFIX + "/callback", query_string=upper).status_code == 200
        assert h.record(mine).status == Status.PASSED
        assert h.record(other).status == Status.PENDING
        assert h.count("certify_passed") == 1
    _report()


@pytest.mark.parametrize("kind", BACKENDS)
def test_r6_attempt_limit_holds_under_concurrency(kind: str, tmp_path: Path) -> None:
    good = 0
    with (
        open_test_backend(kind, tmp_path) as backend,
        fake_app(storage=backend.storage, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=LIMIT) as h,
    ):
        for round_no in range(LIMIT_ROUNDS):
            user = f"user-{round_no}"
            before = len(h.cloud.calls_for("InitFaceVerify"))

            def init(user: str = user) -> int:
                return h.init(user, name=NAMES[0], number=CERT_NOS[0]).status_code  # type: ignore[no-any-return]

            statuses = run_together([init] * PARALLEL)
            reached = len(h.cloud.calls_for("InitFaceVerify")) - before
            assert sorted(statuses) == [200] * LIMIT + [429] * (PARALLEL - LIMIT), statuses
            good += reached == LIMIT
    FIGURES["limit"][kind] = (good, LIMIT_ROUNDS)
    _report()
    assert good == LIMIT_ROUNDS
