"""No clear name or ID number in a traceback that an error tracker captures with its frame locals.

sentry-sdk and similar tools record every frame's local variables
(``traceback.TracebackException(capture_locals=True)`` does the same). Before this, an upstream
failure during Init left the clear values in the gateway's and httpx's frames (``cert_no``, the
params dict, the ``httpx.Request`` whose URL carries them) and in the httpx exception chained
into ours. Now the identity travels as ``Sensitive`` to the wire encoder, the request lives only
in a frame that has returned, and our errors chain nothing from httpx or the SDK.
"""

from __future__ import annotations

import json
import socket
import traceback
from urllib.parse import quote
from urllib.parse import quote_plus

import httpx
import pytest

from flask_alicertify.cloud import sm2
from flask_alicertify.cloud.base import Credentials
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.errors import CloudError
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.identity import Sensitive

NAME, CERT_NO = "欧阳娜娜", "110105199207152428"
CREDS = StaticCredentials("LTAI5tTraceback00001", "traceback-secret")


def never(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request expected")


def forms() -> set[str]:
    out: set[str] = set()
    for value in (NAME, CERT_NO):
        out |= {value, quote(value), quote_plus(value), json.dumps(value)[1:-1], repr(value.encode())[2:-1]}
        out |= {quote(quote(value)), value.encode("utf-8").hex()}
    return out


def formatted(error: BaseException) -> str:
    """The traceback as an error tracker would record it: every frame's locals, every chained error."""
    tb = traceback.TracebackException.from_exception(error, capture_locals=True)
    text = "".join(tb.format())
    seen = error
    while seen.__cause__ is not None or (seen.__context__ is not None and not seen.__suppress_context__):
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        text += "".join(traceback.TracebackException.from_exception(seen, capture_locals=True).format())
    return text


def assert_no_identity(error: BaseException) -> None:
    text = formatted(error)
    assert "欧" in text or "1" in text  # the masked forms are there...
    leaks = sorted(f for f in forms() if f in text)
    assert not leaks, f"clear identity in the traceback: {leaks}"


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def request(plain: bool) -> InitRequest:
    if plain:  # a caller that passes str: the gateway wraps it at once
        return InitRequest(
            outer_order_no="order0001", cert_name=NAME, cert_no=CERT_NO, return_url="https://a/b"
        )
    return InitRequest(
        outer_order_no="order0001",
        cert_name=Sensitive(NAME, kind="cert_name"),
        cert_no=Sensitive(CERT_NO),
        return_url="https://a/b",
    )


def config(endpoints: tuple[str, ...], encrypt: bool) -> GatewayConfig:
    _, pk = sm2.generate_keypair()
    return GatewayConfig(
        scene_id="1000000006",
        credentials=CREDS,
        endpoints=endpoints,
        connect_timeout=1.0,
        read_timeout=1.0,
        encrypt_type="SM2" if encrypt else None,
        sm2_public_key=pk if encrypt else None,
        upstream_qps=None,
    )


@pytest.mark.parametrize("encrypt", [False, True], ids=["clear", "sm2"])
@pytest.mark.parametrize("plain", [False, True], ids=["sensitive", "str"])
@pytest.mark.parametrize(
    "fault",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("bye"),
        RuntimeError("x"),
    ],
    ids=["connect", "timeout", "protocol", "bug"],
)
@pytest.mark.parametrize("api", ["cloudauth", "saf"])
def test_an_upstream_failure_leaves_no_identity_in_the_traceback(
    api: str, fault: Exception, plain: bool, encrypt: bool
) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise fault

    gateway = make_gateway(api, config(("a.test", "b.test"), encrypt), transport=httpx.MockTransport(handler))
    with pytest.raises(CloudError) as info:
        gateway.init(request(plain))
    gateway.close()
    assert info.value.__context__ is None
    assert_no_identity(info.value)


@pytest.mark.parametrize("api", ["cloudauth", "saf", "sdk"])
def test_a_real_connection_failure_leaves_no_identity(api: str) -> None:
    if api == "sdk":
        pytest.importorskip("alibabacloud_cloudauth20190307")
    gateway = make_gateway(api, config((dead_url(),), encrypt=False))
    with pytest.raises(CloudError) as info:
        gateway.init(request(plain=True))
    gateway.close()
    assert_no_identity(info.value)


def test_a_failing_credentials_provider_leaves_no_identity() -> None:
    class Broken:
        def get(self) -> Credentials:
            raise RuntimeError("vault unreachable")

    cfg = GatewayConfig(scene_id="1", credentials=Broken(), endpoints=("a.test",), upstream_qps=None)
    gateway = make_gateway("cloudauth", cfg, transport=httpx.MockTransport(never))
    with pytest.raises(CloudError, match="could not be encoded") as info:
        gateway.init(request(plain=True))
    assert_no_identity(info.value)


def test_the_test_would_see_a_leak() -> None:
    # The check itself: a traceback holding a clear value in a local is caught.
    def leaky(cert_no: str) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError) as info:
        leaky(CERT_NO)
    with pytest.raises(AssertionError, match="clear identity"):
        assert_no_identity(info.value)
