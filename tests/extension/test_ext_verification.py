""" "Is this user verified?": verification(), is_verified(), @verified_required and GET /status."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from support.ext import Harness
from support.ext import harness
from test_ext_http import assert_error

from flask_alicertify import Record
from flask_alicertify import Status
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.storage import MemoryStorage


def passed(h: Harness, user: str = "alice") -> str:
    h.cloud.script_next(Outcome.passes())
    certify_id = h.start(user)
    assert h.result(certify_id, user=user).get_json()["status"] == "passed"
    return certify_id


def failed(h: Harness, user: str = "alice") -> str:
    h.cloud.script_next(Outcome.fails("204"))
    certify_id = h.start(user)
    assert h.result(certify_id, user=user).get_json()["status"] == "failed"
    return certify_id


def test_verification_is_the_latest_passed_record_else_the_latest(h: Harness) -> None:
    with h.app.app_context():
        assert h.ext.verification("alice") is None
        assert h.ext.is_verified("alice") is False
    first = failed(h)
    h.clock.advance(60)
    pending = h.start()
    with h.app.app_context():
        record = h.ext.verification("alice")
        assert record is not None and record.certify_id == pending
        assert h.ext.is_verified("alice") is False
    h.clock.advance(60)
    ok = passed(h)
    h.clock.advance(60)
    failed(h)  # a later failure does not undo a pass
    with h.app.app_context():
        record = h.ext.verification("alice")
        assert record is not None and (record.certify_id, record.status) == (ok, Status.PASSED)
        assert h.ext.is_verified("alice") is True
        assert h.ext.is_verified("bob") is False
    assert first != ok
    # Outside an app context, name the app.
    assert h.ext.is_verified("alice", app=h.app) is True


def test_integer_and_text_ids_are_the_same_user() -> None:
    with harness(user_loader=lambda: 42) as h:
        passed(h)
        assert h.ext.is_verified(42, app=h.app)
        assert h.ext.is_verified("42", app=h.app)
        assert not h.ext.is_verified(43, app=h.app)
        with pytest.raises(TypeError):
            h.ext.is_verified(4.2, app=h.app)  # type: ignore[arg-type]


def test_only_this_instances_records_count() -> None:
    shared = MemoryStorage()
    with (
        harness(storage=shared) as default,
        harness(
            storage=shared, name="kyc", config_prefix="KYC_", KYC_SCENE_ID="1000000007", KYC_URL_PREFIX="/kyc"
        ) as kyc,
    ):
        passed(kyc)
        assert kyc.ext.is_verified("alice", app=kyc.app)
        assert not default.ext.is_verified("alice", app=default.app)
        assert default.ext.verification("alice", app=default.app) is None


def _sandbox_record(user: str, now: datetime) -> Record:
    return Record(
        id=uuid.uuid4().hex,
        status=Status.PASSED,
        created_at=now,
        updated_at=now,
        user_id=user,
        certify_id=uuid.uuid4().hex,
        passed=True,
        sandbox=True,
    )


def test_sandbox_records_count_only_in_sandbox_mode() -> None:
    storage = MemoryStorage()
    storage.create(_sandbox_record("alice", datetime.now().astimezone() - timedelta(minutes=1)))
    with harness(storage=storage) as live:
        assert not live.ext.is_verified("alice", app=live.app)
    with harness(storage=storage, ALICERTIFY_SANDBOX=True, ALICERTIFY_SCENE_ID=None) as sandbox:
        assert sandbox.ext.is_verified("alice", app=sandbox.app)


# -- GET /status ---------------------------------------------------------------------------------


def test_status_of_the_signed_in_user(h: Harness) -> None:
    assert h.client().get("/alicertify/status").get_json() == {
        "verified": False,
        "status": None,
        "certifyId": None,
        "verifiedAt": None,
    }
    pending = h.start()
    assert h.client().get("/alicertify/status").get_json() == {
        "verified": False,
        "status": "pending",
        "certifyId": pending,
        "verifiedAt": None,
    }
    h.clock.advance(5)
    ok = passed(h)
    body = h.client().get("/alicertify/status").get_json()
    assert (body["verified"], body["status"], body["certifyId"]) == (True, "passed", ok)
    assert datetime.fromisoformat(body["verifiedAt"]) == h.record(ok).updated_at
    assert body["verifiedAt"].endswith("+00:00")
    # Another user sees only their own state.
    assert h.client("bob").get("/alicertify/status").get_json()["verified"] is False


def test_status_needs_a_signed_in_user_even_when_anonymous_use_is_allowed() -> None:
    for config in ({}, {"ALICERTIFY_ALLOW_ANONYMOUS": True}):
        with harness(**config) as h:
            assert_error(h.client(user=None).get("/alicertify/status"), 401, "unauthenticated")


def test_status_is_never_cached(h: Harness) -> None:
    assert h.client().get("/alicertify/status").headers["Cache-Control"] == "no-store"


# -- @verified_required ---------------------------------------------------------------------------


def add_protected_view(h: Harness) -> None:
    @h.app.get("/app/payouts")
    @h.ext.verified_required
    def payouts() -> Any:
        return {"payouts": []}


def test_verified_required(h: Harness) -> None:
    add_protected_view(h)
    assert_error(h.client(user=None).get("/app/payouts"), 401, "unauthenticated")
    error = assert_error(h.client().get("/app/payouts"), 403, "verification_required")
    assert error["message"] == "请先完成实人认证"
    english = h.client().get("/app/payouts", headers={"Accept-Language": "en"})
    assert english.get_json()["error"]["message"] == "Complete identity verification first."
    failed(h)
    assert_error(h.client().get("/app/payouts"), 403, "verification_required")
    passed(h)
    response = h.client().get("/app/payouts")
    assert (response.status_code, response.get_json()) == (200, {"payouts": []})
    assert_error(h.client("bob").get("/app/payouts"), 403, "verification_required")


def test_verified_required_can_decorate_before_init_app() -> None:
    """Views are usually defined at import time, before the app factory runs init_app."""
    from flask import Flask
    from support.ext import base_config
    from support.ext import cloud_gateway
    from support.ext import header_user
    from support.ext import new_cloud

    from flask_alicertify import AliCertify

    certify = AliCertify(user_loader=header_user)

    @certify.verified_required
    def secret() -> str:
        return "secret"

    app = Flask(__name__)
    app.config.update(base_config())
    app.add_url_rule("/secret", view_func=secret)
    certify.init_app(app, gateway=cloud_gateway(new_cloud()))
    assert app.test_client().get("/secret", headers={"X-User": "a"}).status_code == 403
    assert secret.__name__ == "secret"
