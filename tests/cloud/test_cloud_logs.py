"""No personal data in any log: every logger at DEBUG, every gateway, success and failure paths.

CertName/CertNo travel in the InitFaceVerify query string (the SDK's wire format), and httpx logs
request URLs at INFO, urllib3 at DEBUG, darabonba (``DEBUG=sdk``) with headers. This test turns
all of it on, runs init + describe through each gateway over real loopback HTTP (and in-process),
including failover and total failure whose exceptions are logged with their tracebacks, and then
looks for the name and ID number in every form they could take.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from urllib.parse import quote
from urllib.parse import quote_plus

import pytest

from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.errors import CloudError
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.cloud.redact import redact
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.sandbox.fake import Outcome

KEY_ID, SECRET, TOKEN = "LTAI5tLogScan000001", "log-scan-secret", "CAIS-log-scan-token"
NAME = "欧阳建国"
CERT_NO = "11010519491231002X"  # GB 11643 sample number: valid check digit, real-looking


def forms(value: str) -> set[str]:
    """Every spelling of ``value`` a log line could contain."""
    return {
        value,
        value.lower(),
        quote(value),
        quote(value).lower(),
        quote_plus(value),
        quote(value, safe=""),
        json.dumps(value)[1:-1],  # \\uXXXX escapes
        json.dumps(value, ensure_ascii=False)[1:-1],
        value.encode("utf-8").hex(),
        repr(value.encode("utf-8"))[2:-1],  # b'\\xe6...'
        quote(quote(value)),  # double-encoded (ServiceParameters inside a form value)
    }


SECRETS = forms(NAME) | forms(CERT_NO) | {TOKEN, SECRET}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    handler = Capture()
    names = [
        "",
        "flask_alicertify",
        "flask_alicertify.cloud",
        "httpx",
        "httpcore",
        "urllib3",
        "darabonba-core",
    ]
    names += list(logging.root.manager.loggerDict)
    touched: list[tuple[logging.Logger, int, bool]] = []
    for name in dict.fromkeys(names):
        logger = logging.getLogger(name)
        touched.append((logger, logger.level, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if name == "" or not logger.propagate:
            logger.addHandler(handler)
    monkeypatch.setenv("DEBUG", "sdk")  # darabonba's request/response header dump
    yield handler
    for logger, level, disabled in touched:
        logger.setLevel(level)
        logger.disabled = disabled
        logger.removeHandler(handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(order: str) -> InitRequest:
    return InitRequest(
        outer_order_no=order,
        cert_name=NAME,
        cert_no=CERT_NO,
        return_url="https://app.example/done",
        callback_url="https://app.example/callback",
        callback_token="tok-secret-123",
    )


def assert_clean(text: str) -> None:
    leaks = sorted(s for s in SECRETS if s and s in text)
    assert not leaks, f"personal data or secrets in logs: {leaks!r}"


@pytest.mark.parametrize("api", ["cloudauth", "saf", "sdk"])
def test_no_personal_data_in_any_log(api: str, capture: Capture, capfd: pytest.CaptureFixture[str]) -> None:
    if api == "sdk":
        pytest.importorskip("alibabacloud_cloudauth20190307")
    scan_logger = logging.getLogger("tests.log_scan")
    cloud = FakeCloud(KEY_ID, SECRET, security_token=TOKEN)
    dead = f"http://127.0.0.1:{free_port()}"
    with cloud.serve() as base_url:
        config = GatewayConfig(
            scene_id="1000000006",
            credentials=StaticCredentials(KEY_ID, SECRET, TOKEN),
            endpoints=(dead, base_url),  # the first attempt fails to connect, then fails over
            connect_timeout=2.0,
        )
        gateway = make_gateway(api, config)
        try:
            cloud.script_next(Outcome.passes())
            result = gateway.init(request("order0001"))
            assert gateway.describe(result.certify_id).passed
        finally:
            gateway.close()

    # Total failure: the exceptions (and their chained causes) are logged with tracebacks.
    down = make_gateway(
        api,
        GatewayConfig(
            scene_id="1000000006", credentials=StaticCredentials(KEY_ID, SECRET, TOKEN), endpoints=(dead,)
        ),
    )
    with pytest.raises(CloudError) as info:
        down.init(request("order0002"))
    down.close()
    scan_logger.exception("init failed", exc_info=info.value)

    captured = "\n".join(capture.lines)
    out, err = capfd.readouterr()
    assert cloud.sessions[result.certify_id].cert_no == CERT_NO  # the data really was sent
    assert "flask_alicertify.cloud" in captured  # our own lines are there...
    assert "InitFaceVerify" in captured or "ExecuteRequest" in captured
    if api != "sdk":
        assert "HTTP Request: POST" in captured  # ...and httpx's, redacted rather than suppressed
    else:
        assert "urllib3.connectionpool" in captured
    assert_clean(captured)
    assert_clean(out + err)
    assert_clean(str(info.value))


def test_in_process_init_logs_nothing_personal(capture: Capture) -> None:
    cloud = FakeCloud(KEY_ID, SECRET)
    config = GatewayConfig(
        scene_id="1000000006", credentials=StaticCredentials(KEY_ID, SECRET), endpoints=("a.test", "b.test")
    )
    gateway = make_gateway("cloudauth", config, transport=cloud.transport())
    cloud.endpoint_down("a.test")
    gateway.init(request("order0003"))
    gateway.close()
    captured = "\n".join(capture.lines)
    assert "HTTP Request: POST https://b.test/?" in captured
    assert "CertNo=[REDACTED]" in captured and "CertName=[REDACTED]" in captured
    assert "CallbackToken=[REDACTED]" in captured
    assert "OuterOrderNo=order0003" in captured  # the rest of the line stays useful
    assert_clean(captured)


def test_redact_forms() -> None:
    assert (
        redact("/?CertName=%E5%BC%A0&CertNo=1234&SceneId=1")
        == "/?CertName=[REDACTED]&CertNo=[REDACTED]&SceneId=1"
    )
    assert (
        redact('{"certNo": "1234", "certName":"张三"}') == '{"certNo": "[REDACTED]", "certName":"[REDACTED]"}'
    )
    assert redact("ServiceParameters=%7B%22certNo%22%3A%221%22%7D&Service=x") == (
        "ServiceParameters=[REDACTED]&Service=x"
    )
    assert redact("> x-acs-security-token : CAIS-abc") == "> x-acs-security-token : [REDACTED]"
    assert redact("XCertNo=1") == "XCertNo=1"  # only whole parameter names
