""" "Is this user verified?" answered by the extension, with no verification columns on ``User``.

``kyc.verification(user_id)`` is the user's latest passed record, else their latest record;
``is_verified``, ``@kyc.verified_required`` (the app's ``POST /payouts``) and ``GET /kyc/status``
read the same answer.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from datetime import timezone

import refapp
from support.integration import error_code
from support.integration import signed_in

from pytest_alicertify import CASES
from pytest_alicertify import run_flow

PASSES, FAILS = CASES[0], CASES[4]
assert (PASSES.expected.status, FAILS.expected.status) == ("passed", "failed")

NOTHING_YET = {"verified": False, "status": None, "certifyId": None, "verifiedAt": None}


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_before_any_attempt(app, alicertify_cloud):
    client = signed_in(app, 42)

    assert client.get("/kyc/status").get_json() == NOTHING_YET
    refused = client.post("/payouts")
    assert refused.status_code == 403 and error_code(refused) == "verification_required"
    assert refused.mimetype == "application/json"
    assert client.get("/me").get_json() == {"id": 42, "verified": False}
    with app.app_context():
        assert refapp.kyc.verification(42) is None
        assert refapp.kyc.is_verified(42) is False


def test_nobody_signed_in(app, alicertify_cloud):
    client = app.test_client()

    for response in (client.get("/kyc/status"), client.get("/alicertify/status"), client.post("/payouts")):
        assert response.status_code == 401 and error_code(response) == "unauthenticated"
        assert response.mimetype == "application/json"


def test_a_pass_counts_until_the_user_passes_no_more(app, alicertify_cloud):
    client = signed_in(app, 42)

    failed = run_flow(client, FAILS, alicertify_cloud, prefix="/kyc")
    status = client.get("/kyc/status").get_json()
    assert status == {
        "verified": False,
        "status": "failed",
        "certifyId": failed.certify_id,
        "verifiedAt": None,
    }
    assert client.post("/payouts").status_code == 403

    before = datetime.now(timezone.utc)
    passed = run_flow(client, PASSES, alicertify_cloud, prefix="/kyc")
    status = client.get("/kyc/status").get_json()
    assert (status["verified"], status["status"], status["certifyId"]) == (True, "passed", passed.certify_id)
    assert before - timedelta(seconds=5) <= _parse(status["verifiedAt"]) <= datetime.now(timezone.utc)
    assert client.post("/payouts").get_json() == {"ok": True}
    assert client.get("/me").get_json() == {"id": 42, "verified": True}

    # A later failed attempt does not take the pass away: the latest passed record wins.
    run_flow(client, FAILS, alicertify_cloud, prefix="/kyc")
    assert client.get("/kyc/status").get_json()["certifyId"] == passed.certify_id
    with app.app_context():
        record = refapp.kyc.verification(42)
        assert record is not None and (record.certify_id, record.typed_user_id) == (passed.certify_id, 42)
        assert refapp.kyc.is_verified(42) is True
        # Another user, and the other instance, know nothing of it.
        assert refapp.kyc.verification(7) is None
        assert refapp.certify.is_verified("42") is False
    assert client.get("/alicertify/status").get_json() == NOTHING_YET
    assert signed_in(app, 7).post("/payouts").status_code == 403
