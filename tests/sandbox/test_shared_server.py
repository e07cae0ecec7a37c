"""The shared sandbox server: ``python -m flask_alicertify.sandbox`` and what it serves.

The command itself runs in a subprocess (the kit's ``SandboxServer``, the one the
``alicertify_sandbox`` fixture uses); the routes are also exercised in-thread, where the fake
behind them can be inspected.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.sandbox import FakeCloud
from flask_alicertify.sandbox import server
from flask_alicertify.sandbox.__main__ import main
from flask_alicertify.sandbox.links import token_of
from flask_alicertify.sandbox.plugin import SANDBOX_ACCESS_KEY_ID
from flask_alicertify.sandbox.plugin import SANDBOX_ACCESS_KEY_SECRET
from flask_alicertify.sandbox.shared import SharedSandbox
from pytest_alicertify.sandbox_server import SandboxServer
from pytest_alicertify.sandbox_server import SandboxServerError

CERT_NO = "11010519491231002X"
CERT_NAME = "张三"
TOKEN = "control-token-for-tests"


class Live:
    """A SharedSandbox served in-thread on loopback, with gateways pointed at it."""

    def __init__(self) -> None:
        self.cloud = FakeCloud(SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET, https_callbacks_only=False)
        self.running = server.Running(SharedSandbox(self.cloud, control_token=TOKEN), "127.0.0.1", 0)
        self.url = self.running.url
        self.cloud.certify_url = self.url + "/sandbox/certify/{certify_id}"
        self.running.begin()
        self.http = httpx.Client(timeout=5.0)

    def gateway(self, api: str = "cloudauth") -> Any:
        config = GatewayConfig(
            scene_id="1000000000",
            credentials=StaticCredentials(SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET),
            endpoints=(self.url,),
            upstream_qps=None,
        )
        return make_gateway(api, config)

    def control(self, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, self.url + path, json=body, headers=headers)

    def close(self) -> None:
        self.http.close()
        self.running.stop()


@pytest.fixture
def live() -> Iterator[Live]:
    served = Live()
    yield served
    served.close()


def init(gateway: Any, order: str = "order0001") -> Any:
    return gateway.init(InitRequest(outer_order_no=order, cert_name=CERT_NAME, cert_no=CERT_NO))


# -- the APIs, the page and the control API ---------------------------------------------------------


@pytest.mark.parametrize("api", ["cloudauth", "saf"])
def test_a_gateway_runs_the_flow_against_the_shared_server(live: Live, api: str) -> None:
    gateway = live.gateway(api)
    try:
        started = init(gateway)
        assert started.certify_url.startswith(f"{live.url}/sandbox/certify/{started.certify_id}?token=")
        assert gateway.describe(started.certify_id).finished is False
        page = live.http.get(started.certify_url)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert started.certify_id in page.text and "张*" in page.text and CERT_NO not in page.text
        answer = live.http.post(started.certify_url, json={"outcome": "fail", "subCode": "203"})
        assert answer.json() == {
            "resultStatus": "4000",
            "result": {"certifyId": started.certify_id, "errorCode": "UNKNOWN_ERROR"},
        }
        verdict = gateway.describe(started.certify_id)
        assert (verdict.finished, verdict.passed, verdict.sub_code) == (True, False, "203")
    finally:
        gateway.close()


def test_deletion_over_http(live: Live) -> None:
    gateway = live.gateway()
    try:
        started = init(gateway)
        live.cloud.complete(started.certify_id)
        assert gateway.delete(started.certify_id).deleted is False  # DeleteAfterQuery=Y: describe first
        gateway.describe(started.certify_id)
        assert gateway.delete(started.certify_id).deleted is True
        assert live.cloud.deleted == [started.certify_id]
    finally:
        gateway.close()


def test_the_page_without_its_secret_is_404_and_changes_nothing(live: Live) -> None:
    gateway = live.gateway()
    try:
        started = init(gateway)
    finally:
        gateway.close()
    bare = f"{live.url}/sandbox/certify/{started.certify_id}"
    for url in (bare, bare + "?token=", bare + "?token=" + "x" * 32):
        assert live.http.get(url).status_code == 404
        r = live.http.post(url, json={"outcome": "pass"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert not live.cloud.sessions[started.certify_id].finished
    assert live.http.get(f"{live.url}/sandbox/elsewhere").status_code == 404


def test_a_decided_session_stays_decided(live: Live) -> None:
    gateway = live.gateway()
    try:
        started = init(gateway)
        assert live.http.post(started.certify_url, json={"outcome": "pass"}).status_code == 200
        gateway.describe(started.certify_id)
    finally:
        gateway.close()
    again = live.http.post(started.certify_url, json={"outcome": "fail", "subCode": "205"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "sandbox_session_closed"
    assert live.http.post(started.certify_url, content=b"x").status_code == 415
    bad = live.http.post(started.certify_url, json={"outcome": "teleport"})
    assert bad.status_code == 400 and "outcome" in bad.json()["error"]["fields"]


def test_the_control_api_needs_its_token_and_shows_no_secrets(live: Live) -> None:
    assert live.control("GET", "/_sandbox/health", token=None).json() == {"ok": True}
    for token in (None, "wrong"):
        r = live.control("GET", "/_sandbox/sessions", token=token)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    gateway = live.gateway()
    try:
        started = init(gateway)
    finally:
        gateway.close()
    listed = live.control("GET", "/_sandbox/sessions").json()["sessions"]
    assert [s["certifyId"] for s in listed] == [started.certify_id]
    shown = json.dumps(listed, ensure_ascii=False)
    assert CERT_NO not in shown and CERT_NAME not in shown
    assert str(token_of(started.certify_url)) not in shown
    assert listed[0]["state"] == "pending" and listed[0]["certNo"] == "1****************X"

    decided = live.control("POST", f"/_sandbox/sessions/{started.certify_id}/outcome", {"outcome": "pass"})
    assert decided.json()["verifyResult"]["resultStatus"] == "9000"
    assert decided.json()["session"]["state"] == "passed"
    one = live.control("GET", f"/_sandbox/sessions/{started.certify_id}").json()["session"]
    assert one["subCode"] == "200"
    assert live.control("GET", "/_sandbox/sessions/" + "0" * 32).status_code == 404
    assert live.control("GET", "/_sandbox/reset").status_code == 405
    assert live.control("POST", "/_sandbox/reset").json() == {"ok": True}
    assert live.control("GET", "/_sandbox/sessions").json() == {"sessions": []}


def test_the_router_needs_a_control_token() -> None:
    with pytest.raises(ValueError):
        SharedSandbox(FakeCloud(), control_token="")


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def command() -> Iterator[SandboxServer]:
    with SandboxServer(args=["--qps", "InitFaceVerify=1000"]) as running:
        yield running


def test_the_command_prints_its_url_first_and_serves_on_a_free_port(command: SandboxServer) -> None:
    assert command.url.startswith("http://127.0.0.1:") and not command.url.endswith(":8900")
    with urllib.request.urlopen(command.url + "/_sandbox/health", timeout=5) as response:
        assert json.loads(response.read()) == {"ok": True}
    gateway = make_gateway(
        "cloudauth",
        GatewayConfig(
            scene_id="1000000000",
            credentials=StaticCredentials(SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET),
            endpoints=(command.url,),
            upstream_qps=None,
        ),
    )
    try:
        started = init(gateway, "cmd0001")
        assert command.decide(started.certify_id, "fail", subCode="206")["resultStatus"] == "4000"
        assert gateway.describe(started.certify_id).sub_code == "206"
        assert command.session(started.certify_id)["state"] == "failed"
        assert started.certify_id in {s["certifyId"] for s in command.sessions()}
        command.reset()
        assert command.sessions() == []
    finally:
        gateway.close()
    with pytest.raises(SandboxServerError, match="HTTP 404"):
        command.session("0" * 32)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_stops_cleanly_on_a_signal(sig: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_alicertify.sandbox", "--port", "0", "--control-token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("sandbox listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        assert process.stdout.readline() == f"control token: {TOKEN}\n"
        # An idle keep-alive connection must not hold the shutdown up.
        with httpx.Client() as client:
            assert client.get(url + "/_sandbox/health").status_code == 200
            process.send_signal(sig)
            assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/_sandbox/health", timeout=2)


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--qps", "InitFaceVerify"], ["--qps", "X=0"], ["--latency", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "--qps takes ACTION=N" in capsys.readouterr().err


def test_a_port_in_use_is_a_clear_error(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", str(live.running.port)]) == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


def test_many_clients_at_once(live: Live) -> None:
    """Threaded server, one lock in the fake: concurrent clients each see their own sessions."""
    errors: list[BaseException] = []
    issued: list[str] = []

    def client(index: int) -> None:
        gateway = live.gateway()
        try:
            for n in range(5):
                started = init(gateway, f"t{index}n{n}")
                assert live.http.post(started.certify_url, json={"outcome": "pass"}).status_code == 200
                verdict = gateway.describe(started.certify_id)
                assert (verdict.finished, verdict.passed) == (True, True)
                issued.append(started.certify_id)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
        finally:
            gateway.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(set(issued)) == 40 == len(live.cloud.sessions)
