"""The fake's SM2 decryption, DeleteFaceVerifyResult, certify-link secrets and QPS limit."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flask_alicertify.cloud import sm2
from flask_alicertify.sandbox import FakeCloud
from flask_alicertify.sandbox import Outcome
from flask_alicertify.sandbox import SessionDecided
from flask_alicertify.sandbox import sign_request
from flask_alicertify.sandbox.encryption import SANDBOX_SM2_PRIVATE_KEY
from flask_alicertify.sandbox.encryption import SANDBOX_SM2_PUBLIC_KEY
from flask_alicertify.sandbox.limits import ALIBABA_QPS
from flask_alicertify.sandbox.limits import QpsLimiter
from flask_alicertify.sandbox.links import LinkSigner
from flask_alicertify.sandbox.links import token_of

SCENE = "1000000006"
CERT_NO = "330103199001011234"
CERT_NAME = "张三丰"
SAF = "https://saf.cn-shanghai.aliyuncs.com/"


class Wire:
    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.client = httpx.Client(transport=cloud.transport())

    def call(self, action: str, query: dict[str, str], *, secret: str | None = None, **kw: Any) -> Any:
        request = sign_request(
            action,
            access_key_id=self.cloud.access_key_id,
            access_key_secret=secret or self.cloud.access_key_secret,
            query=query,
            **kw,
        )
        return self.client.send(request).json()

    def init(self, **changes: str) -> Any:
        query = {
            "SceneId": SCENE,
            "OuterOrderNo": "order0001",
            "ProductCode": "ID_PRO",
            "CertType": "IDENTITY_CARD",
            "CertName": CERT_NAME,
            "CertNo": CERT_NO,
            **changes,
        }
        return self.call("InitFaceVerify", query)

    def init_id(self, **changes: str) -> str:
        body = self.init(**changes)
        assert body["Code"] == "200", body
        certify_id: str = body["ResultObject"]["CertifyId"]
        return certify_id

    def describe(self, certify_id: str) -> Any:
        return self.call("DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": certify_id})

    def delete(self, certify_id: str | None, after_query: str | None = "Y", **kw: Any) -> Any:
        query = {"CertifyId": certify_id, "DeleteAfterQuery": after_query}
        return self.call("DeleteFaceVerifyResult", {k: v for k, v in query.items() if v is not None}, **kw)

    def saf(self, params: dict[str, Any]) -> Any:
        wire = {"Service": "fin_face_verify", "ServiceParameters": json.dumps(params, ensure_ascii=False)}
        return self.call("ExecuteRequest", wire, url=SAF, version="2017-03-31")


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud(seed=3)


@pytest.fixture
def wire(cloud: FakeCloud) -> Iterator[Wire]:
    w = Wire(cloud)
    yield w
    w.client.close()


def encrypted(value: str, key: str = SANDBOX_SM2_PUBLIC_KEY) -> str:
    return sm2.encrypt(key, value)


def saf_init(**changes: Any) -> dict[str, Any]:
    return {
        "method": "init",
        "sceneId": SCENE,
        "outerOrderNo": "safOrder01",
        "bizCode": "FACE",
        "identityType": "CERT_INFO",
        "certType": "IDENTITY_CARD",
        "certNo": CERT_NO,
        "certName": CERT_NAME,
        **changes,
    }


# -- SM2 ------------------------------------------------------------------------------------------


def test_the_sandbox_key_pair_is_a_pair() -> None:
    assert sm2.decrypt(SANDBOX_SM2_PRIVATE_KEY, encrypted("张三")) == "张三"
    assert FakeCloud().sm2_public_key == SANDBOX_SM2_PUBLIC_KEY


def test_cloudauth_sm2_init_is_decrypted_and_checked_like_a_clear_one(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init(EncryptType="SM2", CertName=encrypted(CERT_NAME), CertNo=encrypted(CERT_NO))
    assert certify_id["Code"] == "200", certify_id
    session = cloud.sessions[certify_id["ResultObject"]["CertifyId"]]
    assert (session.cert_name, session.cert_no, session.encrypt_type) == (CERT_NAME, CERT_NO, "SM2")
    # The wire carried ciphertext only.
    sent = cloud.calls[-1].params
    assert CERT_NO not in json.dumps(sent, ensure_ascii=False) and CERT_NAME not in json.dumps(sent)
    # The plaintext is checked like a clear value: a bad ID number is still Code 401.
    bad = wire.init(EncryptType="SM2", CertName=encrypted(CERT_NAME), CertNo=encrypted("12345"))
    assert bad["Code"] == "401"


def test_saf_sm2_init_is_decrypted(cloud: FakeCloud, wire: Wire) -> None:
    body = wire.saf(saf_init(encryptType="SM2", certName=encrypted(CERT_NAME), certNo=encrypted(CERT_NO)))
    assert body["Code"] == 200, body
    session = cloud.sessions[body["Data"]["certifyId"]]
    assert (session.cert_name, session.cert_no, session.encrypt_type) == (CERT_NAME, CERT_NO, "SM2")


def _layouts() -> dict[str, str]:
    raw = base64.b64decode(encrypted(CERT_NO))
    c1, c2, c3 = raw[:65], raw[65:-32], raw[-32:]
    wrong_key = sm2.generate_keypair()[1]
    return {
        "C1C3C2 order": base64.b64encode(c1 + c3 + c2).decode(),
        "no 0x04": base64.b64encode(raw[1:]).decode(),
        "not base64": "%%% not base64 %%%",
        "wrong key": encrypted(CERT_NO, wrong_key),
        "clear text": CERT_NO,
    }


@pytest.mark.parametrize("layout", sorted(_layouts()))
def test_any_other_layout_is_code_501_and_opens_nothing(cloud: FakeCloud, wire: Wire, layout: str) -> None:
    bad = _layouts()[layout]
    body = wire.init(EncryptType="SM2", CertName=encrypted(CERT_NAME), CertNo=bad)
    assert (body["Code"], body["Message"]) == ("501", "系统错误")
    assert "ResultObject" not in body and not cloud.sessions
    assert "CertNo" in (cloud.calls[-1].detail or "")
    saf = wire.saf(saf_init(encryptType="SM2", certName=bad, certNo=encrypted(CERT_NO)))
    assert saf["Code"] == 501 and not cloud.sessions


def test_another_encrypt_type_is_401_and_a_fake_without_a_key_answers_501(wire: Wire) -> None:
    assert wire.init(EncryptType="RSA")["Code"] == "401"
    keyless = Wire(FakeCloud(sm2_private_key=None))
    body = keyless.init(EncryptType="SM2", CertName=encrypted(CERT_NAME), CertNo=encrypted(CERT_NO))
    assert body["Code"] == "501"
    assert keyless.cloud.sm2_public_key is None


def test_a_session_repr_masks_decrypted_values(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id(EncryptType="SM2", CertName=encrypted(CERT_NAME), CertNo=encrypted(CERT_NO))
    shown = repr(cloud.sessions[certify_id]) + repr(cloud.calls)
    assert CERT_NO not in shown and CERT_NAME not in shown


# -- DeleteFaceVerifyResult ------------------------------------------------------------------------


def test_delete_after_query_needs_a_describe_first_then_deletes_once(cloud: FakeCloud, wire: Wire) -> None:
    cloud.script_next(Outcome.passes())
    certify_id = wire.init_id()
    early = wire.delete(certify_id)
    assert early["Code"] == "200"
    assert early["ResultObject"] == {
        "CertifyId": certify_id,
        "DeleteResult": "N",
        "FailReason": "NEED_QUERY_VERIFY_RESULT",
    }
    assert cloud.deleted == [] and cloud.sessions[certify_id].cert_no == CERT_NO
    assert wire.describe(certify_id)["ResultObject"]["Passed"] == "T"
    done = wire.delete(certify_id)
    assert done["ResultObject"] == {"CertifyId": certify_id, "DeleteResult": "Y"}
    again = wire.delete(certify_id)
    assert again["ResultObject"]["FailReason"] == "NOT_DELETE_REPEATEDLY"
    assert cloud.deleted == [certify_id]
    session = cloud.sessions[certify_id]
    assert (session.cert_name, session.cert_no) == ("", "")


def test_describe_after_deletion_keeps_the_verdict_and_drops_the_personal_data(
    cloud: FakeCloud, wire: Wire
) -> None:
    cloud.script_next(Outcome.fails("205"))
    certify_id = wire.init_id()
    before = wire.describe(certify_id)["ResultObject"]
    assert "MaterialInfo" in before and "DeviceToken" in before
    wire.delete(certify_id)
    after = wire.describe(certify_id)
    assert after["Code"] == "200"
    assert after["ResultObject"] == {"Passed": "F", "SubCode": "205", "Success": "True"}


def test_delete_without_query_needs_no_describe_and_closes_the_session(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    assert wire.delete(certify_id, after_query="N")["ResultObject"]["DeleteResult"] == "Y"
    assert wire.delete(None, after_query=None)["Code"] == "400"
    assert wire.delete(certify_id, after_query="maybe")["Code"] == "401"
    with pytest.raises(SessionDecided):
        cloud.complete(certify_id)
    with pytest.raises(SessionDecided):
        cloud.script(certify_id, Outcome.passes())


def test_delete_is_signature_checked_and_knows_only_cloudauth_sessions(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    forged = wire.delete(certify_id, after_query="N", secret="not-the-secret")
    assert forged["Code"] == "SignatureDoesNotMatch"
    assert cloud.deleted == []
    assert wire.delete("0" * 32)["Code"] == "406"
    saf_id = wire.saf(saf_init())["Data"]["certifyId"]
    assert wire.delete(saf_id, after_query="N")["Code"] == "406"
    assert cloud.deleted == []


# -- certify link secrets -------------------------------------------------------------------------


def test_the_certify_url_carries_a_per_session_secret(cloud: FakeCloud, wire: Wire) -> None:
    first = wire.init()["ResultObject"]
    second = wire.init(OuterOrderNo="order0002")["ResultObject"]
    token = token_of(first["CertifyUrl"])
    assert token and token != token_of(second["CertifyUrl"])
    assert cloud.check_link(first["CertifyId"], token)
    assert not cloud.check_link(first["CertifyId"], token_of(second["CertifyUrl"]))
    assert not cloud.check_link(first["CertifyId"], None)
    assert not cloud.check_link(first["CertifyId"], "")
    assert not cloud.check_link("0" * 32, LinkSigner().secret("0" * 32))
    assert token not in repr(cloud.sessions[first["CertifyId"]])


def test_link_secrets_differ_between_fakes() -> None:
    assert LinkSigner().secret("abc") != LinkSigner().secret("abc")
    assert LinkSigner(b"k").secret("abc") == LinkSigner(b"k").secret("abc")
    assert LinkSigner(b"k").url("https://x/c/{certify_id}?a=1", "abc") == (
        f"https://x/c/abc?a=1&token={LinkSigner(b'k').secret('abc')}"
    )


# -- QPS limit ------------------------------------------------------------------------------------


def test_qps_limiter_is_a_sliding_second_per_action() -> None:
    now = [100.0]
    limiter = QpsLimiter({"DescribeFaceVerify": 2, "ExecuteRequest": 1}, clock=lambda: now[0])
    assert limiter.take("DescribeFaceVerify") is None
    now[0] = 100.4
    assert limiter.take("DescribeFaceVerify") is None
    wait = limiter.take("DescribeFaceVerify")
    assert wait == pytest.approx(0.6)
    assert limiter.take("InitFaceVerify") is None  # not limited
    now[0] = 101.01  # the first call left the window; the throttled one never counted
    assert limiter.take("DescribeFaceVerify") is None
    assert limiter.take("DescribeFaceVerify") is not None
    assert limiter.take("ExecuteRequest:init") is None
    assert limiter.take("ExecuteRequest:query") is not None  # both SAF methods share one quota
    with pytest.raises(ValueError):
        QpsLimiter({"InitFaceVerify": 0})


def test_the_fake_answers_throttling_beyond_its_qps_and_is_off_by_default() -> None:
    limited = FakeCloud(qps={"InitFaceVerify": 2})
    wire = Wire(limited)
    answers = [wire.init(OuterOrderNo=f"order{i}") for i in range(3)]
    assert [a.get("Code") for a in answers] == ["200", "200", "Throttling.User"]
    throttled = limited.calls[-1]
    assert (throttled.status_code, throttled.fault) == (429, "qps_limit")
    assert len(limited.sessions) == 2
    unlimited = Wire(FakeCloud())
    assert all(unlimited.init(OuterOrderNo=f"order{i}")["Code"] == "200" for i in range(60))
    assert ALIBABA_QPS["DeleteFaceVerifyResult"] == 10 and ALIBABA_QPS["InitFaceVerify"] == 50


def test_throttling_carries_retry_after() -> None:
    cloud = FakeCloud(qps={"InitFaceVerify": 1})
    with httpx.Client(transport=cloud.transport()) as client:
        for order in ("a1", "a2"):
            request = sign_request(
                "InitFaceVerify",
                access_key_id=cloud.access_key_id,
                access_key_secret=cloud.access_key_secret,
                query={
                    "SceneId": SCENE,
                    "OuterOrderNo": order,
                    "ProductCode": "ID_PRO",
                    "CertType": "IDENTITY_CARD",
                    "CertName": CERT_NAME,
                    "CertNo": CERT_NO,
                },
            )
            response = client.send(request)
    assert response.status_code == 429
    assert 0 < int(response.headers["x-acs-retry-after"]) <= 1000
    cloud.reset()
    assert Wire(cloud).init()["Code"] == "200"  # reset empties the windows too
