"""Two instances in one app keep apart; their signals come from the top level and say which one sent.

The default instance verifies any identity the signed-in user sends; ``kyc`` only the user's own.
A verification started on the first must therefore never be settled by the second.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import refapp
from support.integration import OTHER_CERT_NAME
from support.integration import OTHER_CERT_NO
from support.integration import error_code
from support.integration import guide_body
from support.integration import signed_in

import flask_alicertify
from flask_alicertify import Record
from pytest_alicertify import CASES
from pytest_alicertify import run_flow

SIGNALS = ("certify_initiated", "certify_passed", "certify_failed", "certify_abandoned", "certify_expired")


def test_a_certify_id_of_one_instance_is_unknown_to_the_other(app, database, alicertify_cloud):
    client = signed_in(app, 42)
    alicertify_cloud.pass_next()
    # Someone else's identity, which the default instance accepts and kyc would have refused.
    init = client.post("/alicertify/init", json=guide_body(OTHER_CERT_NO, OTHER_CERT_NAME))
    assert init.status_code == 200, init.get_json()
    certify_id = init.get_json()["certifyId"]

    posted = client.post(
        "/kyc/result", json={"certifyId": certify_id, "resultStatus": "9000", "result": None}
    )
    assert posted.status_code == 404 and error_code(posted) == "unknown_certify_id"
    polled = client.get(f"/kyc/result/{certify_id}")
    assert polled.status_code == 404 and error_code(polled) == "unknown_certify_id"
    assert alicertify_cloud.described(certify_id) == 0
    assert database.rows("kyc_records") == []

    # The instance that started it settles it.
    own = client.post(
        "/alicertify/result", json={"certifyId": certify_id, "resultStatus": "9000", "result": None}
    )
    assert own.get_json()["status"] == "passed"
    assert [(r["certify_id"], r["instance"]) for r in database.rows("alicertify_records")] == [
        (certify_id, "alicertify")
    ]


def test_signals_are_top_level_with_the_app_the_record_and_the_instance(app, alicertify_cloud, caplog):
    assert all(getattr(flask_alicertify, n) is getattr(flask_alicertify.signals, n) for n in SIGNALS)
    received: list[tuple[str, Any, dict[str, Any]]] = []

    def receiver_for(name: str):
        def receive(sender: Any, **kwargs: Any) -> None:
            received.append((name, sender, kwargs))

        return receive

    caplog.set_level("INFO", logger=app.logger.name)
    client = signed_in(app, 42)
    with ExitStack() as connected:
        for name in SIGNALS:
            connected.enter_context(getattr(flask_alicertify, name).connected_to(receiver_for(name), app))
        kyc = run_flow(client, CASES[0], alicertify_cloud, prefix="/kyc")
        default = run_flow(client, CASES[4], alicertify_cloud, prefix="/alicertify")  # forged 9000: fails
    assert (kyc.body["status"], default.body["status"]) == ("passed", "failed")

    got = [
        (name, kwargs["extension"], kwargs["record"].certify_id, kwargs["record"].status.value)
        for name, _, kwargs in received
    ]
    assert got == [
        ("certify_initiated", refapp.kyc, kyc.certify_id, "pending"),
        ("certify_passed", refapp.kyc, kyc.certify_id, "passed"),
        ("certify_initiated", refapp.certify, default.certify_id, "pending"),
        ("certify_failed", refapp.certify, default.certify_id, "failed"),
    ]
    for _, sender, kwargs in received:
        assert sender is app
        assert isinstance(kwargs["record"], Record)
        # The user id as each instance's loader produced it.
        expected_user = 42 if kwargs["extension"].name == "kyc" else "42"
        assert kwargs["user_id"] == expected_user and type(kwargs["user_id"]) is type(expected_user)
    # The app's own receiver told the two checks apart by extension.name.
    lines = [r.getMessage() for r in caplog.records if r.name == app.logger.name]
    assert "kyc check of user 42: passed" in lines and "alicertify check of user 42: failed" in lines
