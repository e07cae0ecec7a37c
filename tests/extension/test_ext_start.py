"""Starting a verification: return URLs, the identity oracle, unusable Init answers, typed user ids."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.ext import BACKENDS
from support.ext import CERT_NAME
from support.ext import CERT_NAME_2
from support.ext import CERT_NO
from support.ext import CERT_NO_2
from support.ext import SEED_PLACEHOLDER_NO
from support.ext import harness
from support.ext import open_storage

from flask_alicertify import signals
from flask_alicertify.cloud.base import Gateway
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.base import InitResult
from flask_alicertify.records import Record
from flask_alicertify.records import Status
from flask_alicertify.storage import MemoryStorage

PROFILES = {"alice": (CERT_NAME_2, CERT_NO_2)}


# -- return URL -------------------------------------------------------------------------------------


def test_client_return_url_is_dropped_when_nothing_is_configured() -> None:
    # Alibaba's own sample body sends "https://www.aliyun.com"; a mini-program never returns through it.
    with harness(ALICERTIFY_RETURN_URL_HOSTS=None) as h:
        response = h.init(returnUrl="https://www.aliyun.com")
        assert response.status_code == 200, response.get_json()
        assert "ReturnUrl" not in h.cloud.calls_for("InitFaceVerify")[-1].params
        # Even a URL that the rules would refuse is simply not forwarded.
        assert h.init(returnUrl="javascript:alert(1)").status_code == 200
        assert "ReturnUrl" not in h.cloud.calls_for("InitFaceVerify")[-1].params


def test_client_return_url_rules_apply_once_hosts_are_set() -> None:
    with harness(ALICERTIFY_RETURN_URL_HOSTS=["example.com"]) as h:
        assert h.init(returnUrl="https://www.aliyun.com").get_json()["error"]["code"] == "invalid_return_url"
        assert h.init(returnUrl="https://example.com/back").status_code == 200


# -- the identity oracle ----------------------------------------------------------------------------


def _mismatch_bodies(h: Any) -> list[Any]:
    probes = [
        {"certNo": CERT_NO, "certName": CERT_NAME_2},  # only the number differs
        {"certNo": CERT_NO_2, "certName": CERT_NAME},  # only the name differs
        {"certNo": CERT_NO, "certName": CERT_NAME},  # both differ
        {"certNo": CERT_NO_2[:-1] + "0"},  # a near miss on the last digit (invalid check digit)
        {"certNo": SEED_PLACEHOLDER_NO, "certName": CERT_NAME_2[:-1] + "丽"},  # a near miss on the name
    ]
    out = []
    for params in probes:
        response = h.client().post("/alicertify/init", json={"serviceParameters": params})
        assert response.status_code == 400
        out.append(response.get_json())
    return out


def test_identity_mismatch_answers_one_generic_error_whatever_differs() -> None:
    with harness(identity_loader=PROFILES.get, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None) as h:
        bodies = _mismatch_bodies(h)
        assert all(body == bodies[0] for body in bodies), bodies
        assert set(bodies[0]["error"]) == {"code", "message"}  # no "fields" naming certNo/certName
        assert bodies[0]["error"]["code"] == "identity_mismatch"
        assert h.cloud.calls_for("InitFaceVerify") == []


def test_identity_mismatch_is_a_stored_attempt_and_counts_against_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = MemoryStorage()
    with (
        caplog.at_level(logging.DEBUG, logger="flask_alicertify"),
        harness(storage=storage, identity_loader=PROFILES.get, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=5) as h,
    ):
        for _ in range(5):
            response = h.init(certNo=CERT_NO, certName=CERT_NAME_2)
            assert response.get_json()["error"]["code"] == "identity_mismatch"
        sixth = h.init(certNo=CERT_NO, certName=CERT_NAME_2)
        assert sixth.status_code == 429
        assert sixth.get_json()["error"]["code"] == "attempts_exhausted"
        # The account's own identity is refused too now: the probes spent today's attempts.
        assert h.init(certNo=SEED_PLACEHOLDER_NO, certName="欧**").get_json()["error"]["code"] == (
            "attempts_exhausted"
        )
        assert h.cloud.calls_for("InitFaceVerify") == []
        records = list(vars(storage)["_records"].values())
    assert len(records) == 5
    for record in records:
        assert (record.status, record.error_code, record.passed) == (
            Status.INIT_FAILED,
            "identity_mismatch",
            False,
        )
        assert record.user_id == "alice" and record.certify_id is None
        assert record.delivered_at is not None  # nothing to deliver: reconcile never lists it
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "identity_mismatch" in r.getMessage()
    ]
    assert len(warnings) == 5
    for r in caplog.records:
        text = r.getMessage()
        for value in (CERT_NO, CERT_NO_2, CERT_NAME, CERT_NAME_2, "certNo", "certName"):
            assert value not in text, text


def test_equal_and_placeholder_values_still_pass_the_profile_check() -> None:
    with harness(identity_loader=PROFILES.get) as h:
        assert h.init(certNo=CERT_NO_2.lower(), certName=CERT_NAME_2).status_code == 200
        assert h.init(certNo=SEED_PLACEHOLDER_NO, certName="欧**").status_code == 200
        params = h.cloud.calls_for("InitFaceVerify")[-1].params
        assert (params["CertNo"], params["CertName"]) == (CERT_NO_2, CERT_NAME_2)


# -- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["\u3164\u3164\u3164", "\uffa0\uffa0", "\u0301\u0301\u0301", "张\ufe0f三", "张三\U000e0100"]
)
def test_invisible_names_are_400_invalid_cert_name_before_init(name: str) -> None:
    with harness() as h:
        response = h.init(certName=name)
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "invalid_cert_name"
        assert "certName" in error["fields"]["serviceParameters"]
        assert h.cloud.calls_for("InitFaceVerify") == []
        assert h.storage.count_inits("alice", since=h.clock().replace(year=2000)) == 0  # no attempt spent


@pytest.mark.parametrize("name", ["张三", "欧阳娜娜", "阿卜杜拉·买买提", "Zoe\u0308"])
def test_real_names_reach_init(name: str) -> None:
    with harness() as h:
        assert h.init(certName=name).status_code == 200
        assert h.cloud.calls_for("InitFaceVerify")[-1].params["CertName"] == name


# -- what Init answers -----------------------------------------------------------------------------------


class AnsweringGateway:
    """The real gateway, except that Init answers what ``answer`` makes of the real result."""

    def __init__(self, inner: Gateway, answer: Callable[[InitResult], InitResult]) -> None:
        self.inner, self.answer, self.api = inner, answer, inner.api

    def init(self, request: InitRequest) -> InitResult:
        return self.answer(self.inner.init(request))

    def describe(self, certify_id: str) -> Any:
        return self.inner.describe(certify_id)

    def delete(self, certify_id: str) -> Any:
        return self.inner.delete(certify_id)

    def close(self) -> None:
        self.inner.close()


UNUSABLE = ["", "a" * 129, "ab\x00cd", "ab\ud800cd", " padded ", "line\nbreak"]


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize(
    "certify_id", UNUSABLE, ids=["empty", "long", "nul", "surrogate", "spaces", "newline"]
)
def test_unusable_certify_id_is_init_failed_and_502(kind: str, certify_id: str, tmp_path: Path) -> None:
    def bad(result: InitResult) -> InitResult:
        return InitResult(certify_id=certify_id, certify_url=result.certify_url, request_id=result.request_id)

    with (
        open_storage(kind, tmp_path) as storage,
        harness(storage=storage, wrap_gateway=lambda g: AnsweringGateway(g, bad)) as h,
    ):
        response = h.init()
        assert response.status_code == 502, response.get_json()
        assert response.get_json()["error"]["code"] == "upstream_malformed"
        records = _all(h, storage)
        assert [(r.status, r.error_code) for r in records] == [(Status.INIT_FAILED, "upstream_malformed")]
        assert records[0].certify_id is None
        assert h.names() == []


def _all(h: Any, storage: Any) -> list[Record]:
    return list(storage.unpurged(created_before=h.clock().replace(year=2100), limit=100))


class ExplodingGateway(AnsweringGateway):
    """A gateway that breaks its contract: raises something that is not a CloudError."""

    def init(self, request: InitRequest) -> InitResult:
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON object")

    def describe(self, certify_id: str) -> Any:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")


def test_a_gateway_raising_anything_else_is_a_502_never_a_500() -> None:
    with harness(wrap_gateway=lambda g: ExplodingGateway(g, lambda r: r)) as h:
        response = h.init()
        assert response.status_code == 502
        assert response.get_json()["error"]["code"] == "upstream_error"
        (record,) = _all(h, h.storage)
        assert (record.status, record.error_code) == (Status.INIT_FAILED, "internal_error")


def test_describe_raising_anything_else_is_a_503_and_the_claim_is_kept() -> None:
    holder: dict[str, Any] = {}
    with harness(wrap_gateway=lambda g: holder.setdefault("g", AnsweringGateway(g, lambda r: r))) as h:
        cid = h.start()
        holder["g"].describe = ExplodingGateway.describe.__get__(holder["g"])
        response = h.result(cid, "9000")
        assert response.status_code == 503
        assert h.record(cid).client_status == "9000"
        h.clock.advance(10)
        assert h.client().get(f"/alicertify/result/{cid}").status_code == 200  # the stored state


class FailingStorage(MemoryStorage):
    """Memory storage whose ``initiating -> pending`` write fails, as a database that went away."""

    def update(self, record_id: str, *, expect: Any, **changes: Any) -> Record | None:
        if changes.get("status") == Status.PENDING:
            raise ConnectionError("server closed the connection unexpectedly")
        return super().update(record_id, expect=expect, **changes)


def test_storage_failing_after_a_billed_init_leaves_no_silent_initiating_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = FailingStorage()
    with caplog.at_level(logging.ERROR, logger="flask_alicertify"), harness(storage=storage) as h:
        response = h.init()
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "upstream_unavailable"
        (call,) = h.cloud.calls_for("InitFaceVerify")
        (record,) = _all(h, storage)
    assert (record.status, record.error_code) == (Status.INIT_FAILED, "storage_error")
    # Support can find the billed Init from the log line: record id and certify id.
    assert any(record.id in r.getMessage() and call.certify_id in r.getMessage() for r in caplog.records)


# -- user ids as the loader made them -------------------------------------------------------------------


def test_integer_user_ids_are_stored_as_text_and_given_back_as_int() -> None:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    with harness() as h:
        service = h.ext.service(h.app)
        signals.certify_initiated.connect(receiver, sender=h.app)
        signals.certify_passed.connect(receiver, sender=h.app)
        try:
            started = service.start(user_id=42, cert_no=CERT_NO, cert_name=CERT_NAME)
            cid = started.record.certify_id
            assert cid is not None
            h.cloud.complete(cid, passed=True)
            record = service.submit_result(user_id=42, certify_id=cid, client_status="9000")
        finally:
            signals.certify_initiated.disconnect(receiver, sender=h.app)
            signals.certify_passed.disconnect(receiver, sender=h.app)
        assert record.status == Status.PASSED
        assert (record.user_id, record.user_id_type, record.typed_user_id) == ("42", "int", 42)
        assert [type(kw["user_id"]) for kw in seen] == [int, int]
        assert [kw["record"].id for kw in seen] == [record.id, record.id]
        assert all("extension" in kw for kw in seen)
        # The text form is the key: the same user as a str is the owner too; another is not.
        assert service.current(user_id="42", certify_id=cid).id == record.id
        with pytest.raises(Exception) as info:
            service.current(user_id=43, certify_id=cid)
        assert getattr(info.value, "code", None) == "forbidden"
