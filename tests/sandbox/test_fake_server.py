"""The fake cloud over real HTTP: the loopback server, the WSGI adapter, and the official SDK."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flask_alicertify.sandbox import FakeCloud
from flask_alicertify.sandbox import Fault
from flask_alicertify.sandbox import sign_request

SCENE = "1000000006"
CERT_NO = "330103199001011234"
CERT_NAME = "张三"


def init_query(order: str = "order0001") -> dict[str, str]:
    return {
        "SceneId": SCENE,
        "OuterOrderNo": order,
        "ProductCode": "ID_PRO",
        "CertType": "IDENTITY_CARD",
        "CertName": CERT_NAME,
        "CertNo": CERT_NO,
        "ReturnUrl": "https://app.example/done",
    }


def signed(cloud: FakeCloud, base_url: str, action: str, query: dict[str, str], **kw: Any) -> httpx.Request:
    return sign_request(
        action,
        access_key_id=cloud.access_key_id,
        access_key_secret=cloud.access_key_secret,
        url=base_url + "/",
        query=query,
        **kw,
    )


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud(timeout_seconds=2.0)


@pytest.fixture
def base_url(cloud: FakeCloud) -> Iterator[str]:
    with cloud.serve() as url:
        yield url


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


# -- the loopback server --------------------------------------------------------------------


def test_serves_loopback_and_keeps_one_connection_alive(
    cloud: FakeCloud, base_url: str, client: httpx.Client
) -> None:
    assert base_url.startswith("http://127.0.0.1:")
    certify_id = client.send(
        signed(cloud, base_url, "InitFaceVerify", init_query(), form={"Model": "LIVENESS"})
    )
    certify_id_value = certify_id.json()["ResultObject"]["CertifyId"]
    cloud.complete(certify_id_value)
    for _ in range(19):
        response = client.send(
            signed(cloud, base_url, "DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": certify_id_value})
        )
        assert response.json()["ResultObject"]["Passed"] == "T"
    assert len(cloud.calls) == 20
    assert cloud.connections_opened == 1
    assert cloud.calls[0].params["Model"] == "LIVENESS"
    assert cloud.calls[0].host == base_url.removeprefix("http://")


def test_server_rejects_bad_signatures_like_in_process(
    cloud: FakeCloud, base_url: str, client: httpx.Client
) -> None:
    request = sign_request(
        "InitFaceVerify",
        access_key_id=cloud.access_key_id,
        access_key_secret="wrong",
        url=base_url + "/",
        query=init_query(),
    )
    response = client.send(request)
    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("fault", "status", "check"),
    [
        (Fault.http(503), 503, lambda r: r.json()["Code"] == "ServiceUnavailable"),
        (Fault.http(502, html=True), 502, lambda r: r.text.startswith("<html>")),
        (Fault.code_500(), 200, lambda r: r.json()["Code"] == "500"),
        (Fault.error("418"), 200, lambda r: r.json()["Message"] == "刷脸失败次数过多"),
        (Fault.malformed(), 200, lambda r: not r.text.rstrip().endswith("}")),
        (Fault.throttle(2.0), 429, lambda r: r.headers["x-acs-retry-after"] == "2000"),
    ],
    ids=["http503", "html502", "code500", "error418", "malformed", "throttle"],
)
def test_answering_faults_over_http(
    cloud: FakeCloud, base_url: str, client: httpx.Client, fault: Fault, status: int, check: Any
) -> None:
    cloud.inject(fault)
    response = client.send(signed(cloud, base_url, "InitFaceVerify", init_query()))
    assert response.status_code == status
    assert check(response)
    # The connection survives a faulty answer and the next call is normal.
    assert client.send(signed(cloud, base_url, "InitFaceVerify", init_query())).json()["Code"] == "200"
    assert cloud.connections_opened == 1


def test_timeout_fault_stalls_past_a_short_client_timeout(
    cloud: FakeCloud, base_url: str, client: httpx.Client
) -> None:
    cloud.inject(Fault.timeout())
    request = signed(cloud, base_url, "InitFaceVerify", init_query())
    request.extensions["timeout"] = httpx.Timeout(5.0, read=0.2).as_dict()
    with pytest.raises(httpx.ReadTimeout):
        client.send(request)
    assert client.send(signed(cloud, base_url, "InitFaceVerify", init_query())).json()["Code"] == "200"
    assert cloud.calls[0].fault == "Fault.timeout()"


def test_timeout_fault_answers_504_to_a_patient_client() -> None:
    cloud = FakeCloud(timeout_seconds=0.05)
    with cloud.serve() as url, httpx.Client(timeout=5.0) as client:
        cloud.inject(Fault.timeout())
        response = client.send(signed(cloud, url, "InitFaceVerify", init_query()))
    assert response.status_code == 504
    assert response.json()["Code"] == "GatewayTimeout"


def test_connect_error_fault_drops_the_connection(
    cloud: FakeCloud, base_url: str, client: httpx.Client
) -> None:
    cloud.inject(Fault.connect_error())
    with pytest.raises(httpx.RemoteProtocolError):
        client.send(signed(cloud, base_url, "InitFaceVerify", init_query()))
    assert client.send(signed(cloud, base_url, "InitFaceVerify", init_query())).json()["Code"] == "200"
    assert cloud.connections_opened == 2


def test_endpoint_down_over_http(cloud: FakeCloud, base_url: str, client: httpx.Client) -> None:
    cloud.endpoint_down(base_url)
    with pytest.raises(httpx.TransportError):
        client.send(signed(cloud, base_url, "InitFaceVerify", init_query()))
    cloud.endpoint_up(base_url)
    assert client.send(signed(cloud, base_url, "InitFaceVerify", init_query())).json()["Code"] == "200"


def test_server_stops_cleanly_even_with_idle_keep_alive_connections(cloud: FakeCloud) -> None:
    with httpx.Client(timeout=5.0) as client:
        with cloud.serve() as url:
            assert client.send(signed(cloud, url, "InitFaceVerify", init_query())).status_code == 200
        assert not [t for t in threading.enumerate() if t.name == "fake-alibaba-cloud"]
        with pytest.raises(httpx.TransportError):
            client.send(signed(cloud, url, "InitFaceVerify", init_query()))


def test_server_binds_loopback_only(cloud: FakeCloud) -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        with cloud.serve(host="0.0.0.0"):
            pass  # pragma: no cover


def test_concurrent_clients_over_http(cloud: FakeCloud, base_url: str) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with httpx.Client(timeout=5.0) as c:
            for i in range(5):
                body = c.send(signed(cloud, base_url, "InitFaceVerify", init_query(f"w{n}i{i}"))).json()
                with lock:
                    ids.append(body["ResultObject"]["CertifyId"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 40
    assert cloud.connections_opened == 8


# -- the WSGI adapter -----------------------------------------------------------------------


def test_wsgi_app_speaks_the_same_protocol() -> None:
    cloud = FakeCloud(timeout_seconds=0.01)
    base = "http://cloudauth.cn-shanghai.aliyuncs.com"
    with httpx.Client(transport=httpx.WSGITransport(app=cloud.wsgi)) as client:
        body = client.send(
            signed(cloud, base, "InitFaceVerify", init_query(), form={"Model": "LIVENESS"})
        ).json()
        assert body["Code"] == "200"
        certify_id = body["ResultObject"]["CertifyId"]
        assert cloud.calls[0].params["Model"] == "LIVENESS"
        assert cloud.calls[0].host == "cloudauth.cn-shanghai.aliyuncs.com"
        bad = sign_request(
            "InitFaceVerify",
            access_key_id=cloud.access_key_id,
            access_key_secret="x",
            url=base + "/",
            query={},
        )
        assert client.send(bad).status_code == 400
        cloud.inject(Fault.timeout())
        assert client.send(signed(cloud, base, "InitFaceVerify", init_query())).status_code == 504
        cloud.inject(Fault.connect_error())
        assert client.send(signed(cloud, base, "InitFaceVerify", init_query())).status_code == 502
        cloud.inject(Fault.throttle(0.25))
        throttled = client.send(
            signed(cloud, base, "DescribeFaceVerify", {"SceneId": SCENE, "CertifyId": certify_id})
        )
        assert throttled.headers["x-acs-retry-after"] == "250"
        saf = client.send(
            signed(
                cloud,
                "http://saf.cn-shanghai.aliyuncs.com",
                "ExecuteRequest",
                {},
                version="2019-05-21",
                form={
                    "Service": "fin_face_verify",
                    "ServiceParameters": json.dumps(
                        {"method": "query", "certifyId": certify_id, "sceneId": SCENE}
                    ),
                },
            )
        )
        assert saf.json()["Code"] == 406  # a cloudauth id is unknown to SAF
