"""The fake Alibaba Cloud in-process: wire checks, business codes, scripting, faults, inspection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flask_alicertify.cloud import signer
from flask_alicertify.identity import mask_cert_name
from flask_alicertify.identity import mask_cert_no
from flask_alicertify.sandbox import FakeCloud
from flask_alicertify.sandbox import Fault
from flask_alicertify.sandbox import Outcome
from flask_alicertify.sandbox import SessionDecided
from flask_alicertify.sandbox import SessionExpired
from flask_alicertify.sandbox import sign_request
from flask_alicertify.sandbox.fake import mask
from flask_alicertify.sandbox.links import token_of

SCENE = "1000000006"
CERT_NO = "330103199001011234"
CERT_NAME = "张三丰"
CLOUDAUTH = "https://cloudauth.cn-shanghai.aliyuncs.com/"
SAF = "https://saf.cn-shanghai.aliyuncs.com/"


def init_query(**changes: str | None) -> dict[str, str]:
    query = {
        "SceneId": SCENE,
        "OuterOrderNo": "order0001",
        "ProductCode": "ID_PRO",
        "CertType": "IDENTITY_CARD",
        "CertName": CERT_NAME,
        "CertNo": CERT_NO,
        "ReturnUrl": "https://app.example/done?x=1 2~",
        "MetaInfo": '{"zimVer": "3.0.0", "deviceType": "h5"}',
    }
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return query


class Wire:
    """A tiny signed client for one FakeCloud (what a gateway does, minus failover)."""

    def __init__(self, cloud: FakeCloud, *, secret: str | None = None, key: str | None = None) -> None:
        self.cloud = cloud
        self.key = key or cloud.access_key_id
        self.secret = secret or cloud.access_key_secret
        self.client = httpx.Client(transport=cloud.transport())

    def request(self, action: str, query: dict[str, str] | None = None, **kw: Any) -> httpx.Request:
        return sign_request(action, access_key_id=self.key, access_key_secret=self.secret, query=query, **kw)

    def send(self, request: httpx.Request) -> httpx.Response:
        return self.client.send(request)

    def call(self, action: str, query: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return self.send(self.request(action, query, **kw))

    def init(self, **changes: str | None) -> httpx.Response:
        return self.call("InitFaceVerify", init_query(**changes), form={"Model": "LIVENESS"})

    def init_id(self, **changes: str | None) -> str:
        body = self.init(**changes).json()
        assert body["Code"] == "200", body
        certify_id: str = body["ResultObject"]["CertifyId"]
        return certify_id

    def describe(self, certify_id: str, scene: str = SCENE) -> dict[str, Any]:
        response = self.call("DescribeFaceVerify", {"SceneId": scene, "CertifyId": certify_id})
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def saf(self, params: dict[str, Any], *, version: str = "2017-03-31", in_body: bool = False) -> Any:
        wire = {"Service": "fin_face_verify", "ServiceParameters": json.dumps(params, ensure_ascii=False)}
        if in_body:
            response = self.call("ExecuteRequest", url=SAF, version=version, form=wire)
        else:
            response = self.call("ExecuteRequest", wire, url=SAF, version=version)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud(seed=7)


@pytest.fixture
def wire(cloud: FakeCloud) -> Iterator[Wire]:
    w = Wire(cloud)
    yield w
    w.client.close()


def saf_init_params(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "method": "init",
        "sceneId": SCENE,
        "outerOrderNo": "safOrder01",
        "bizCode": "FACE",
        "identityType": "CERT_INFO",
        "certType": "IDENTITY_CARD",
        "certNo": CERT_NO,
        "certName": CERT_NAME,
        "returnUrl": "",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


# -- signature and gateway checks ----------------------------------------------------------


def test_signed_init_is_accepted_and_answers_the_documented_envelope(cloud: FakeCloud, wire: Wire) -> None:
    response = wire.init()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"Code", "Message", "RequestId", "ResultObject"}
    assert (body["Code"], body["Message"]) == ("200", "success")
    assert body["RequestId"] == body["RequestId"].upper() and len(body["RequestId"]) == 36
    certify_id = body["ResultObject"]["CertifyId"]
    assert len(certify_id) == 32 and int(certify_id, 16) >= 0 and certify_id == certify_id.lower()
    url = body["ResultObject"]["CertifyUrl"]
    assert (
        url
        == f"https://sandbox.alicertify.invalid/certify/{certify_id}?token={wire.cloud.links.secret(certify_id)}"
    )
    session = cloud.sessions[certify_id]
    assert (session.cert_no, session.cert_name, session.api) == (CERT_NO, CERT_NAME, "cloudauth")
    assert session.return_url == "https://app.example/done?x=1 2~"
    call = cloud.calls_for("InitFaceVerify")[0]
    assert call.params["Model"] == "LIVENESS"  # form body fields are read too
    assert (call.status_code, call.code, call.certify_id) == (200, "200", certify_id)


def test_wrong_secret_is_rejected_with_signature_does_not_match(cloud: FakeCloud) -> None:
    bad = Wire(cloud, secret="not-the-secret")
    response = bad.init()
    assert response.status_code == 400
    assert response.json()["Code"] == "SignatureDoesNotMatch"
    assert response.json()["RequestId"]
    assert cloud.sessions == {}
    assert [(c.status_code, c.code) for c in cloud.calls] == [(400, "SignatureDoesNotMatch")]
    bad.client.close()


def test_unknown_access_key_is_404(cloud: FakeCloud) -> None:
    stranger = Wire(cloud, key="LTAI5tSomeoneElse")
    response = stranger.init()
    assert response.status_code == 404
    assert response.json()["Code"] == "InvalidAccessKeyId.NotFound"
    stranger.client.close()


def _tamper(request: httpx.Request, *, url: str | None = None, body: bytes | None = None) -> httpx.Request:
    """The same signed headers over a different URL or body."""
    content = request.content if body is None else body
    headers = httpx.Headers(request.headers)
    headers["content-length"] = str(len(content))
    return httpx.Request(request.method, url or str(request.url), headers=headers, content=content)


def test_tampered_query_is_rejected(wire: Wire, cloud: FakeCloud) -> None:
    request = wire.request("InitFaceVerify", init_query(), form={"Model": "LIVENESS"})
    forged_url = str(request.url).replace(CERT_NO, "110101199003074518")
    assert forged_url != str(request.url)
    response = wire.send(_tamper(request, url=forged_url))
    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert cloud.sessions == {}


def test_tampered_body_is_rejected_by_the_payload_hash(wire: Wire, cloud: FakeCloud) -> None:
    request = wire.request("InitFaceVerify", init_query(), form={"Model": "LIVENESS"})
    response = wire.send(_tamper(request, body=b"Model=MULTI_ACTION"))
    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in response.json()["Message"]


def test_tampered_signed_header_is_rejected(wire: Wire) -> None:
    request = wire.request("DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": "0" * 32})
    headers = httpx.Headers(request.headers)
    headers["x-acs-date"] = "2020-01-01T00:00:00Z"
    response = wire.send(httpx.Request("POST", request.url, headers=headers))
    assert response.json()["Code"] == "SignatureDoesNotMatch"


def test_unsigned_acs_header_is_rejected(wire: Wire) -> None:
    request = wire.request("DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": "0" * 32})
    headers = httpx.Headers(request.headers)
    headers["x-acs-extra"] = "smuggled"
    response = wire.send(httpx.Request("POST", request.url, headers=headers))
    assert response.status_code == 400
    assert "x-acs-extra" in response.json()["Message"]


def test_signature_over_extra_headers_is_accepted(wire: Wire) -> None:
    """Real clients sign more than the minimum; the signed set comes from the Authorization header."""
    response = wire.call(
        "InitFaceVerify",
        init_query(),
        form={"Model": "LIVENESS"},
        extra_headers={
            "user-agent": "AlibabaCloud (Linux) Python/3.11",
            "x-acs-credentials-provider": "static_ak",
        },
    )
    assert response.json()["Code"] == "200"


def test_missing_authorization_and_wrong_version_and_unknown_action(wire: Wire) -> None:
    request = wire.request("DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": "0" * 32})
    headers = httpx.Headers(request.headers)
    del headers["authorization"]
    assert wire.send(httpx.Request("POST", request.url, headers=headers)).status_code == 400
    old = wire.call("DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": "0" * 32}, version="2018-09-16")
    assert (old.status_code, old.json()["Code"]) == (400, "InvalidVersion")
    unknown = wire.call("DeleteEverything", {})
    assert (unknown.status_code, unknown.json()["Code"]) == (404, "InvalidAction.NotFound")


def test_old_or_missing_date_is_accepted(wire: Wire) -> None:
    response = wire.call("InitFaceVerify", init_query(), date="2001-01-01T00:00:00Z")
    assert response.json()["Code"] == "200"


def test_sts_token_is_required_when_configured() -> None:
    cloud = FakeCloud(security_token="CAIS-sts-token")
    no_token = Wire(cloud)
    response = no_token.init()
    assert response.status_code == 400 and response.json()["Code"] == "MissingSecurityToken"
    wrong = no_token.call("InitFaceVerify", init_query(), security_token="CAIS-forged")
    assert wrong.status_code == 400 and wrong.json()["Code"].startswith("InvalidSecurityToken")
    right = no_token.call("InitFaceVerify", init_query(), security_token="CAIS-sts-token")
    assert right.json()["Code"] == "200"
    assert cloud.calls[-1].headers["x-acs-accesskey-id"] == cloud.access_key_id
    no_token.client.close()


# -- required and illegal parameters ------------------------------------------------------------


@pytest.mark.parametrize("name", ["SceneId", "OuterOrderNo", "ProductCode", "CertType", "CertName", "CertNo"])
def test_init_missing_parameter_is_code_400(wire: Wire, cloud: FakeCloud, name: str) -> None:
    body = wire.init(**{name: None}).json()
    assert (body["Code"], body["Message"]) == ("400", "参数不能为空")
    assert "ResultObject" not in body
    assert cloud.calls[-1].detail == f"missing {name}"


@pytest.mark.parametrize(
    "changes",
    [
        {"OuterOrderNo": "x" * 33},
        {"OuterOrderNo": "order-0001"},
        {"CertNo": "33010319900101123"},
        {"CertNo": "3301031990010112345"},
        {"CertNo": "33010319900101123Y"},
        {"SceneId": "scene"},
        {"ProductCode": "NOPE"},
        {"CertType": "DRIVING_LICENCE"},
        {"MetaInfo": "not json"},
        {"CallbackUrl": "http://insecure.example/cb"},
    ],
)
def test_init_illegal_parameter_is_code_401(wire: Wire, changes: dict[str, str]) -> None:
    body = wire.init(**changes).json()
    assert (body["Code"], body["Message"]) == ("401", "参数非法")


def test_fifteen_digit_and_x_check_digit_cert_numbers_are_legal(wire: Wire) -> None:
    assert wire.init(CertNo="330103900101123").json()["Code"] == "200"
    assert wire.init(CertNo="11010519491231002X").json()["Code"] == "200"


def test_unknown_scene_is_code_404_when_scenes_are_configured() -> None:
    cloud = FakeCloud(scene_ids=[SCENE])
    w = Wire(cloud)
    assert w.init(SceneId="999").json()["Code"] == "404"
    assert w.init().json()["Code"] == "200"
    w.client.close()


def test_describe_needs_its_parameters_and_a_known_id(wire: Wire) -> None:
    assert wire.call("DescribeFaceVerify", {"SceneId": SCENE}).json()["Code"] == "400"
    body = wire.describe("f" * 32)
    assert (body["Code"], body["Message"]) == ("406", "无效的CertifyId")
    certify_id = wire.init_id()
    assert wire.describe(certify_id, scene="42")["Code"] == "406"


# -- the session life cycle ---------------------------------------------------------------


def test_unscripted_session_is_not_finished_until_complete(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    for _ in range(3):
        body = wire.describe(certify_id)
        assert (body["Code"], body["Message"]) == ("424", "身份认证记录不存在")
    cloud.complete(certify_id, passed=True)
    body = wire.describe(certify_id)
    assert body["Code"] == "200"
    result = body["ResultObject"]
    assert (result["Passed"], result["SubCode"], result["Success"]) == ("T", "200", "True")
    assert result["IdentityInfo"] == "null" and result["UserInfo"] == ""
    assert isinstance(json.loads(result["MaterialInfo"]), dict)
    assert cloud.sessions[certify_id].describes == 4


def test_complete_with_failure_defaults_to_204(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    cloud.complete(certify_id, passed=False)
    result = wire.describe(certify_id)["ResultObject"]
    assert (result["Passed"], result["SubCode"]) == ("F", "204")


def test_script_next_applies_to_the_next_init_in_order(cloud: FakeCloud, wire: Wire) -> None:
    cloud.script_next(Outcome.fails("201"))
    cloud.script_next(Outcome.passes())
    first, second, third = wire.init_id(), wire.init_id(), wire.init_id()
    assert wire.describe(first)["ResultObject"]["SubCode"] == "201"
    assert wire.describe(first)["ResultObject"]["Passed"] == "F"
    assert wire.describe(second)["ResultObject"]["Passed"] == "T"
    assert wire.describe(third)["Code"] == "424"


def test_after_n_answers_not_finished_n_times(cloud: FakeCloud, wire: Wire) -> None:
    cloud.script_next(Outcome.passes(sub_code="200", after=2))
    certify_id = wire.init_id()
    codes = [wire.describe(certify_id)["Code"] for _ in range(4)]
    assert codes == ["424", "424", "200", "200"]
    assert cloud.callback_url(certify_id) is None  # no CallbackUrl given


def test_script_for_a_known_session(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    assert wire.describe(certify_id)["Code"] == "424"
    cloud.script(certify_id, Outcome.fails("205", after=1))
    assert wire.describe(certify_id)["Code"] == "424"
    assert wire.describe(certify_id)["ResultObject"]["SubCode"] == "205"
    with pytest.raises(ValueError, match="already described"):
        cloud.script(certify_id, Outcome.passes())
    with pytest.raises(KeyError):
        cloud.script("0" * 32, Outcome.passes())


def test_never_finishes_answers_424_forever(cloud: FakeCloud, wire: Wire) -> None:
    cloud.script_next(Outcome.never_finishes())
    certify_id = wire.init_id()
    assert {wire.describe(certify_id)["Code"] for _ in range(5)} == {"424"}
    assert cloud.sessions[certify_id].finished is False
    assert cloud.unconsumed() == []


def test_session_expires_after_thirty_minutes() -> None:
    now = [1_000_000.0]
    cloud = FakeCloud(clock=lambda: now[0])
    w = Wire(cloud)
    cloud.script_next(Outcome.passes(after=1))
    pending = w.init_id()
    finished = w.init_id()
    cloud.complete(finished, passed=False, sub_code="201")
    assert w.describe(pending)["Code"] == "424"
    now[0] += 30 * 60
    assert cloud.is_expired(pending)
    assert w.describe(pending)["Code"] == "424"  # the user can no longer finish
    assert w.describe(pending)["Code"] == "424"
    assert w.describe(finished)["ResultObject"]["SubCode"] == "201"  # a verdict outlives expiry
    with pytest.raises(SessionExpired):
        cloud.complete(pending)
    w.client.close()


def test_complete_is_idempotent_but_a_described_verdict_never_changes(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    cloud.complete(certify_id)
    assert wire.describe(certify_id)["ResultObject"]["Passed"] == "T"
    cloud.complete(certify_id)  # same verdict again: fine
    with pytest.raises(ValueError):
        cloud.complete(certify_id, passed=False)


def test_callback_url_for_finished_sessions(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id(
        CallbackUrl="https://app.example/alicertify/callback?src=ali", CallbackToken="tok1"
    )
    assert cloud.callback_url(certify_id) is None  # not finished yet
    cloud.complete(certify_id, passed=False, sub_code="204")
    assert cloud.callback_url(certify_id) == (
        "https://app.example/alicertify/callback?src=ali&certifyId="
        + certify_id
        + "&passed=204&callbackToken=tok1"
    )
    no_token = wire.init_id(CallbackUrl="https://app.example/cb")
    cloud.complete(no_token)
    assert cloud.callback_url(no_token) == f"https://app.example/cb?certifyId={no_token}&passed=200"


def test_plain_http_callbacks_can_be_allowed_for_a_local_demo() -> None:
    cloud = FakeCloud(https_callbacks_only=False)
    w = Wire(cloud)
    assert w.init(CallbackUrl="http://127.0.0.1:5000/alicertify/callback").json()["Code"] == "200"
    w.client.close()


# -- SAF ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2017-03-31", "2019-05-21"])
@pytest.mark.parametrize("in_body", [False, True])
def test_saf_init_and_query_upper_case(cloud: FakeCloud, wire: Wire, version: str, in_body: bool) -> None:
    cloud.script_next(Outcome.passes(after=1))
    callback = {"callbackUrl": "https://app.example/cb", "callbackToken": "t0k"}
    body = wire.saf(saf_init_params(**callback), version=version, in_body=in_body)
    assert (body["Code"], body["Message"]) == (200, "success")
    certify_id = body["Data"]["certifyId"]
    assert body["Data"]["certifyUrl"] == cloud.sessions[certify_id].certify_url
    assert cloud.check_link(certify_id, token_of(body["Data"]["certifyUrl"]))
    assert cloud.sessions[certify_id].api == "saf"
    query = {"method": "query", "certifyId": certify_id, "sceneId": SCENE}
    assert wire.saf(query, version=version, in_body=in_body)["Code"] == 424
    done = wire.saf(query, version=version, in_body=in_body)
    assert done["Code"] == 200
    assert (done["Data"]["passed"], done["Data"]["subCode"]) == ("T", "200")
    assert (
        cloud.callback_url(certify_id)
        == f"https://app.example/cb?certifyId={certify_id}&passed=200&callbackToken=t0k"
    )
    assert [c.action for c in cloud.calls] == [
        "ExecuteRequest:init",
        "ExecuteRequest:query",
        "ExecuteRequest:query",
    ]
    assert len(cloud.calls_for("ExecuteRequest")) == 3
    assert cloud.calls_for("ExecuteRequest:query")[0].certify_id == certify_id


def test_saf_lower_case_and_data_as_string() -> None:
    cloud = FakeCloud(saf_style="lower", saf_data_as_string=True)
    w = Wire(cloud)
    body = w.saf(saf_init_params())
    assert set(body) == {"code", "message", "requestId", "data"}
    assert body["code"] == 200
    data = json.loads(body["data"])
    cloud.complete(data["certifyId"], passed=False, sub_code="206")
    result = w.saf({"method": "query", "certifyId": data["certifyId"], "sceneId": SCENE})
    assert json.loads(result["data"])["passed"] == "F"
    assert json.loads(result["data"])["subCode"] == "206"
    missing = w.saf(saf_init_params(certNo=None))
    assert missing["code"] == 400 and "data" not in missing
    w.client.close()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"certName": None}, 400),
        ({"bizCode": "NOPE"}, 401),
        ({"identityType": "OTHER"}, 401),
        ({"outerOrderNo": "has space"}, 401),
        ({"certNo": "123"}, 401),
        ({"method": "explode"}, 401),
    ],
)
def test_saf_rejects_bad_service_parameters(wire: Wire, changes: dict[str, Any], code: int) -> None:
    assert wire.saf(saf_init_params(**changes))["Code"] == code


def test_saf_wrong_service_and_unknown_id(wire: Wire) -> None:
    response = wire.call(
        "ExecuteRequest", {"Service": "other", "ServiceParameters": "{}"}, url=SAF, version="2019-05-21"
    )
    assert response.json()["Code"] == 401
    assert wire.saf({"method": "query", "certifyId": "a" * 32, "sceneId": SCENE})["Code"] == 406
    cloudauth_id = wire.init_id()
    assert wire.saf({"method": "query", "certifyId": cloudauth_id, "sceneId": SCENE})["Code"] == 406


def test_one_fake_answers_both_apis_at_once(cloud: FakeCloud, wire: Wire) -> None:
    """Whatever an app is configured for, the same fake serves cloudauth and SAF side by side."""
    cloud.script_next(Outcome.passes())
    cloud.script_next(Outcome.fails("201"))
    cloudauth_id = wire.init_id()
    saf_id = wire.saf(saf_init_params())["Data"]["certifyId"]
    assert wire.describe(cloudauth_id)["ResultObject"]["Passed"] == "T"
    query = wire.saf({"method": "query", "certifyId": saf_id, "sceneId": SCENE})
    assert (query["Data"]["passed"], query["Data"]["subCode"]) == ("F", "201")
    assert wire.describe(saf_id)["Code"] == "406"  # each API knows only its own certify ids
    assert {s.api for s in cloud.sessions.values()} == {"cloudauth", "saf"}
    assert [c.action for c in cloud.calls] == [
        "InitFaceVerify",
        "ExecuteRequest:init",
        "DescribeFaceVerify",
        "ExecuteRequest:query",
        "DescribeFaceVerify",
    ]


def test_complete_refusals_are_the_fakes_own_exceptions(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    cloud.complete(certify_id)
    wire.describe(certify_id)
    with pytest.raises(SessionDecided, match="already described") as info:
        cloud.complete(certify_id, passed=False)
    assert isinstance(info.value, ValueError)  # what callers caught before it had a name
    with pytest.raises(SessionDecided):
        cloud.script(certify_id, Outcome.fails())


def test_the_default_clock_is_read_through_the_standard_library_at_call_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """freezegun replaces ``time.time``; a fake that captured the function would not see it."""
    cloud = FakeCloud()
    w = Wire(cloud)
    certify_id = w.init_id()
    created = cloud.sessions[certify_id].created_at
    monkeypatch.setattr(time, "time", lambda: created + 30 * 60)
    assert cloud.is_expired(certify_id)
    with pytest.raises(SessionExpired):
        cloud.complete(certify_id)
    w.client.close()


def test_time_machine_travel_moves_the_fake() -> None:
    time_machine = pytest.importorskip("time_machine")
    with time_machine.travel(1_800_000_000.0, tick=False) as traveller:
        cloud = FakeCloud()
        w = Wire(cloud)
        certify_id = w.init_id()
        assert cloud.sessions[certify_id].created_at == 1_800_000_000.0
        traveller.shift(30 * 60 - 1)
        assert not cloud.is_expired(certify_id)
        traveller.shift(1)
        assert cloud.is_expired(certify_id)
        assert w.describe(certify_id)["Code"] == "424"
        w.client.close()


def test_masking_is_the_identity_modules_rule(cloud: FakeCloud, wire: Wire) -> None:
    assert mask is mask_cert_no
    certify_id = wire.init_id()
    text = repr(cloud.sessions[certify_id]) + repr(cloud.calls)
    assert mask_cert_no(CERT_NO) in text and mask_cert_name(CERT_NAME) in text
    assert "张*丰" not in text  # the old rule kept a name's last character


# -- faults ---------------------------------------------------------------------------------


def test_http_fault_then_recovery(cloud: FakeCloud, wire: Wire) -> None:
    cloud.inject(Fault.http(503), times=2)
    for _ in range(2):
        response = wire.init()
        assert response.status_code == 503
        assert response.json()["Code"] == "ServiceUnavailable"
    assert wire.init().json()["Code"] == "200"
    assert [c.fault for c in cloud.calls] == ["Fault.http(503)", "Fault.http(503)", None]
    assert len(cloud.sessions) == 1


def test_http_fault_with_html_body(cloud: FakeCloud, wire: Wire) -> None:
    cloud.inject(Fault.http(502, html=True))
    response = wire.init()
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_code_500_and_business_error_faults(cloud: FakeCloud, wire: Wire) -> None:
    cloud.inject(Fault.code_500())
    cloud.inject(Fault.error("417"))
    first, second = wire.init(), wire.init()
    assert first.status_code == 200 and (first.json()["Code"], first.json()["Message"]) == ("500", "系统错误")
    assert (second.json()["Code"], second.json()["Message"]) == ("417", "无法使用刷脸服务")
    assert cloud.sessions == {}
    cloud.inject(Fault.error("418"))
    assert wire.saf(saf_init_params())["Code"] == 418  # SAF envelope: integer code


def test_timeout_and_connect_error_raise_httpx_errors(cloud: FakeCloud, wire: Wire) -> None:
    cloud.inject(Fault.timeout())
    cloud.inject(Fault.connect_error())
    with pytest.raises(httpx.ReadTimeout):
        wire.init()
    with pytest.raises(httpx.ConnectError):
        wire.init()
    assert [(c.status_code, c.fault) for c in cloud.calls] == [
        (None, "Fault.timeout()"),
        (None, "Fault.connect_error()"),
    ]


def test_malformed_fault(cloud: FakeCloud, wire: Wire) -> None:
    cloud.inject(Fault.malformed())
    response = wire.init()
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_throttle_fault_carries_retry_after_in_milliseconds(cloud: FakeCloud, wire: Wire) -> None:
    cloud.inject(Fault.throttle(retry_after=1.5))
    response = wire.init()
    assert response.status_code == 429
    assert response.json()["Code"] == "Throttling.User"
    assert response.json()["Message"] == "Request was denied due to user flow control."
    assert response.headers["x-acs-retry-after"] == "1500"


def test_faults_match_action_and_host(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id()
    cloud.inject(Fault.http(500), action="DescribeFaceVerify", host="cloudauth.cn-beijing.aliyuncs.com")
    assert wire.init().status_code == 200  # wrong action: untouched
    assert wire.describe(certify_id)["Code"] == "424"  # wrong host: untouched
    beijing = wire.call(
        "DescribeFaceVerify",
        {"SceneId": SCENE, "CertifyId": certify_id},
        url="https://cloudauth.cn-beijing.aliyuncs.com/",
    )
    assert beijing.status_code == 500
    cloud.inject(Fault.error("500"), action="ExecuteRequest:query")
    assert wire.saf(saf_init_params())["Code"] == 200
    assert cloud.unconsumed() == [
        "inject(Fault.error('500'), times=1, action='ExecuteRequest:query'): 1 of 1 not used"
    ]


def test_endpoint_down_and_up(cloud: FakeCloud, wire: Wire) -> None:
    cloud.endpoint_down("cloudauth.cn-shanghai.aliyuncs.com")
    with pytest.raises(httpx.ConnectError):
        wire.init()
    other = wire.call("InitFaceVerify", init_query(), url="https://cloudauth.cn-beijing.aliyuncs.com/")
    assert other.json()["Code"] == "200"
    cloud.endpoint_up("https://cloudauth.cn-shanghai.aliyuncs.com")
    assert wire.init().json()["Code"] == "200"
    assert cloud.calls[0].fault == "endpoint_down"


def test_fault_arguments_are_validated(cloud: FakeCloud) -> None:
    with pytest.raises(ValueError):
        Fault.http(200)
    with pytest.raises(ValueError):
        cloud.inject(Fault.timeout(), times=0)
    with pytest.raises(ValueError):
        Outcome.passes(after=-1)
    with pytest.raises(ValueError):
        Outcome.fails("")


# -- inspection -----------------------------------------------------------------------------


def test_unconsumed_lists_what_a_test_set_up_but_never_used(cloud: FakeCloud, wire: Wire) -> None:
    cloud.script_next(Outcome.passes())
    cloud.script_next(Outcome.fails("204", after=1))
    cloud.script_next(Outcome.never_finishes())
    cloud.inject(Fault.http(503), times=3, action="DescribeFaceVerify")
    described = wire.init_id()
    for _ in range(3):  # each consumes one fault; the verdict is still never described
        assert wire.call("DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": described}).status_code == 503
    undescribed = wire.init_id()
    left = cloud.unconsumed()
    assert left == [
        "script_next(Outcome.never_finishes()): no Init created a session for it",
        f"script({described!r}, Outcome.passes(sub_code='200')): the verdict was never described "
        "(0 describe(s) so far)",
        f"script({undescribed!r}, Outcome.fails(sub_code='204', after=1)): the verdict was never described "
        "(0 describe(s) so far)",
    ]
    assert wire.describe(described)["ResultObject"]["Passed"] == "T"
    wire.describe(undescribed)
    wire.describe(undescribed)
    never = wire.init_id()
    assert len(cloud.unconsumed()) == 1
    wire.describe(never)
    assert cloud.unconsumed() == []
    assert not any(CERT_NO in line or CERT_NAME in line for line in left)


def test_repr_of_call_and_session_hide_personal_data(cloud: FakeCloud, wire: Wire) -> None:
    certify_id = wire.init_id(CallbackUrl="https://app.example/cb", CallbackToken="secret-token")
    wire.saf(saf_init_params(callbackToken="saf-token"))
    wire.saf(saf_init_params(certNo="bad"))  # a rejected call is recorded, and masked, too
    cloud.inject(Fault.timeout())
    with pytest.raises(httpx.ReadTimeout):
        wire.init()
    text = repr(cloud.calls) + repr(cloud.sessions) + repr(cloud.sessions[certify_id]) + str(cloud.calls[0])
    for secret in (CERT_NO, CERT_NAME, "secret-token", "saf-token", CERT_NO[1:-1]):
        assert secret not in text
    assert "3****************4" in text  # masked, not dropped
    assert cloud.calls[0].params["CertNo"] == CERT_NO  # the data itself stays inspectable
    assert cloud.calls[1].service_parameters["certName"] == CERT_NAME


def test_seeded_ids_are_deterministic_and_reset_restarts_them() -> None:
    def ids(cloud: FakeCloud) -> list[str]:
        w = Wire(cloud)
        out = [w.init_id() for _ in range(3)]
        w.client.close()
        return out

    first = FakeCloud(seed=42)
    second = FakeCloud(seed=42)
    a = ids(first)
    assert a == ids(second)
    assert a != ids(FakeCloud(seed=43))
    assert len(set(a)) == 3
    first.reset()
    assert first.calls == [] and first.sessions == {}
    assert ids(first) == a


def test_concurrent_inits_get_unique_ids() -> None:
    cloud = FakeCloud()
    transport = cloud.transport()
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            with httpx.Client(transport=transport) as client:
                for i in range(10):
                    request = sign_request(
                        "InitFaceVerify",
                        access_key_id=cloud.access_key_id,
                        access_key_secret=cloud.access_key_secret,
                        query=init_query(OuterOrderNo=f"t{n}n{i}"),
                    )
                    body = client.send(request).json()
                    with lock:
                        ids.append(body["ResultObject"]["CertifyId"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == 160 and len(set(ids)) == 160
    assert set(cloud.sessions) == set(ids)
    assert len(cloud.calls) == 160


def test_sign_request_matches_the_reference_test_vector() -> None:
    """The signer's test vector (tests/cloud/test_cloud_signer.py): our helper lays the request out
    exactly as the signer expects."""
    request = sign_request(
        "InitFaceVerify",
        access_key_id="testAK",
        access_key_secret="testSecret",
        query={
            "CertName": "张三",
            "CertNo": "330103199001011234",
            "CertType": "IDENTITY_CARD",
            "MetaInfo": '{"a": "b c"}',
            "OuterOrderNo": "abc123",
            "ProductCode": "ID_PRO",
            "ReturnUrl": "https://x.y/z?a=1",
            "SceneId": "1000000006",
        },
        form={"Model": "LIVENESS"},
        date="2025-01-01T00:00:00Z",
        nonce="0123456789abcdef0123456789abcdef",
    )
    assert request.headers["x-acs-content-sha256"] == signer.hash_payload(b"Model=LIVENESS")
    assert request.headers["authorization"].endswith(
        "Signature=3ec2e6b090d988d1a21ac850f7b2baea7742ee6178e1c0d0167ca403ba941666"
    )
    cloud = FakeCloud("testAK", "testSecret")
    assert cloud.handle(request).json()["Code"] == "200"
