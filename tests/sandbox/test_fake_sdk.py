"""The official cloudauth SDK (V3 signature, its own HTTP stack) against the fake's loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from flask_alicertify.sandbox import FakeCloud
from flask_alicertify.sandbox import Outcome
from flask_alicertify.sandbox.links import token_of

sdk_client = pytest.importorskip("alibabacloud_cloudauth20190307.client")
sdk_models = pytest.importorskip("alibabacloud_cloudauth20190307.models")
openapi_models = pytest.importorskip("alibabacloud_tea_openapi.models")
tea_util_models = pytest.importorskip("alibabacloud_tea_util.models")

SCENE = "1000000006"
CERT_NO = "330103199001011234"


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def base_url(cloud: FakeCloud) -> Iterator[str]:
    with cloud.serve() as url:
        yield url


def _sdk(cloud: FakeCloud, base_url: str, *, secret: str | None = None, token: str | None = None) -> Any:
    config = openapi_models.Config(
        access_key_id=cloud.access_key_id,
        access_key_secret=secret or cloud.access_key_secret,
        security_token=token,
        endpoint=base_url.removeprefix("http://"),
        protocol="http",
    )
    return sdk_client.Client(config)


def _sdk_init(client: Any, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "scene_id": int(SCENE),
        "outer_order_no": "sdkOrder01",
        "product_code": "ID_PRO",
        "cert_type": "IDENTITY_CARD",
        "cert_name": "张 三",
        "cert_no": CERT_NO,
        "meta_info": '{"zimVer": "3.0.0", "deviceType": "h5"}',
        "return_url": "https://app.example/done?x=1 2~",
        "callback_url": "https://app.example/cb",
        "callback_token": "tok",
        "model": "LIVENESS",
        "crop": "F",
        "auth_id": "auth 1",
    }
    fields.update(changes)
    return client.init_face_verify_with_options(
        sdk_models.InitFaceVerifyRequest(**fields), tea_util_models.RuntimeOptions()
    )


def test_official_sdk_talks_to_the_fake(cloud: FakeCloud, base_url: str) -> None:
    client = _sdk(cloud, base_url)
    cloud.script_next(Outcome.fails("205", after=1))
    init = _sdk_init(client)
    assert init.body.code == "200"
    certify_id = init.body.result_object.certify_id
    assert init.body.result_object.certify_url == cloud.sessions[certify_id].certify_url
    assert cloud.check_link(certify_id, token_of(init.body.result_object.certify_url))
    call = cloud.calls_for("InitFaceVerify")[0]
    assert (call.params["Model"], call.params["Crop"], call.params["AuthId"]) == ("LIVENESS", "F", "auth 1")
    assert call.params["CertName"] == "张 三"
    signed_headers = call.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "user-agent" in signed_headers and "x-acs-credentials-provider" in signed_headers

    request = sdk_models.DescribeFaceVerifyRequest(scene_id=int(SCENE), certify_id=certify_id)
    runtime = tea_util_models.RuntimeOptions()
    assert client.describe_face_verify_with_options(request, runtime).body.code == "424"
    result = client.describe_face_verify_with_options(request, runtime).body
    assert result.code == "200"
    assert (result.result_object.passed, result.result_object.sub_code) == ("F", "205")
    assert json.loads(result.result_object.material_info)["faceAttack"] == "T"
    assert cloud.callback_url(certify_id) == (
        f"https://app.example/cb?certifyId={certify_id}&passed=205&callbackToken=tok"
    )
    assert cloud.unconsumed() == []
    assert all(c.status_code == 200 for c in cloud.calls)


def test_official_sdk_business_code_is_not_an_exception(cloud: FakeCloud, base_url: str) -> None:
    init = _sdk_init(_sdk(cloud, base_url), cert_no="123")
    assert (init.body.code, init.body.message) == ("401", "参数非法")


def test_official_sdk_sees_signature_errors_as_client_exceptions(cloud: FakeCloud, base_url: str) -> None:
    with pytest.raises(Exception) as caught:
        _sdk_init(_sdk(cloud, base_url, secret="wrong-secret"))
    assert getattr(caught.value, "code", None) == "SignatureDoesNotMatch"
    assert getattr(caught.value, "status_code", None) == 400


def test_official_sdk_with_sts_token() -> None:
    cloud = FakeCloud("STS.NUfakeTemporaryKey", "sts-secret", security_token="CAIS-token")
    with cloud.serve() as url:
        assert _sdk_init(_sdk(cloud, url, token="CAIS-token")).body.code == "200"
        with pytest.raises(Exception) as caught:
            _sdk_init(_sdk(cloud, url, token="CAIS-other"))
    assert getattr(caught.value, "code", "").startswith("InvalidSecurityToken")
    assert cloud.calls[0].headers["x-acs-security-token"] == "CAIS-token"
