"""SM2 encryption of CertName/CertNo: the standard's example, the curve, the layout Alibaba accepts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets

import httpx
import pytest
from support.upstream import Upstream
from support.upstream import answer

from flask_alicertify.cloud import sm2
from flask_alicertify.cloud import sm3
from flask_alicertify.cloud.base import ALIBABA_SM2_PUBLIC_KEY
from flask_alicertify.cloud.base import GatewayConfig
from flask_alicertify.cloud.base import InitRequest
from flask_alicertify.cloud.credentials import StaticCredentials
from flask_alicertify.cloud.gateways import make_gateway
from flask_alicertify.cloud.wire import JsonParam
from flask_alicertify.cloud.wire import WireEncoder
from flask_alicertify.identity import Sensitive

NAME, CERT_NO = "欧阳娜娜", "110105199207152428"

#: The curve, key pair, message, k and ciphertext of GB/T 32918.4-2016 Appendix A (Fp-256).
TEST_CURVE = sm2.Curve(
    name="sm2-fp256-example",
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
)
EXAMPLE_D = 0x1649AB77A00637BD5E2EFE283FBF353534AA7F7CB89463F208DDBC2920BB0DA0
EXAMPLE_P = (
    0x435B39CCA8F3B508C1488AFC67BE491A0F7BA07E581A0E4849A5CF70628A7E0A,
    0x75DDBA78F15FEECB4C7895E2C1CDF5FE01DEBB2CDBADF45399CCF77BBA076A42,
)
EXAMPLE_K = 0x4C62EEFD6ECFC2B95B92FD6C3D9575148AFA17425546D49018E5388D49DD7B4F
EXAMPLE_CIPHER = bytes.fromhex(
    "04"
    "245C26FB68B1DDDDB12C4B6BF9F2B6D5FE60A383B0D18D1C4144ABF17F6252E7"  # x1
    "76CB9264C2A7E88E52B19903FDC47378F605E36811F5C07423A24B84400F01B8"  # y1
    "650053A89B41C418B0C3AAD00D886C00286467"  # C2
    "9C3D7360C30156FAB7C80A0276712DA9D8094A634B766D3A285E07480653426D"  # C3
)


def never(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request expected")


def test_known_answer_of_the_standard() -> None:
    key = sm2.PublicKey(EXAMPLE_P, TEST_CURVE)
    assert sm2._encrypt_with(key, b"encryption standard", EXAMPLE_K) == EXAMPLE_CIPHER
    assert sm2.decrypt_bytes(EXAMPLE_D, EXAMPLE_CIPHER, TEST_CURVE) == b"encryption standard"
    assert sm2._generator_comb(TEST_CURVE).multiply(EXAMPLE_D) == EXAMPLE_P


def test_sm3_examples_of_the_standard_and_the_fallback() -> None:
    vectors = {
        b"abc": "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        b"abcd" * 16: "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
    }
    for message, digest in vectors.items():
        assert sm3.sm3_pure(message).hex() == digest
        assert sm3.sm3(message).hex() == digest
    if sm3.HAVE_OPENSSL_SM3:
        for length in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000):
            data = os.urandom(length)
            assert sm3.sm3_pure(data) == hashlib.new("sm3", data).digest()


def test_sm3_falls_back_without_openssl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sm3, "HAVE_OPENSSL_SM3", False)
    sk, pk = sm2.generate_keypair()
    assert sm2.decrypt(sk, sm2.encrypt(pk, NAME)) == NAME


def test_the_recommended_curve_is_sound() -> None:
    c = sm2.SM2P256V1
    assert c.on_curve((c.gx, c.gy))
    assert sm2._multiply(c, c.n, (c.gx, c.gy)) is None  # n·G = O: G has order n
    assert sm2.public_key(ALIBABA_SM2_PUBLIC_KEY).hex() == ALIBABA_SM2_PUBLIC_KEY


def test_round_trip_with_a_generated_key_pair() -> None:
    sk, pk = sm2.generate_keypair()
    for text in (NAME, CERT_NO, "A", "阿卜杜·热合曼" * 20):
        assert sm2.decrypt(sk, sm2.encrypt(pk, text)) == text


def test_the_layout_is_04_c1_c2_c3_in_standard_base64() -> None:
    sk, pk = sm2.generate_keypair()
    raw = base64.b64decode(sm2.encrypt(pk, CERT_NO), validate=True)
    assert raw[0] == 0x04
    assert len(raw) == 1 + 64 + len(CERT_NO) + 32  # C2 is as long as the message
    c1 = (int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big"))
    assert sm2.SM2P256V1.on_curve(c1)
    c1c3c2 = raw[:65] + raw[-32:] + raw[65:-32]
    with pytest.raises(sm2.SM2Error, match="C1C2C3"):
        sm2.decrypt(sk, base64.b64encode(c1c3c2).decode())
    with pytest.raises(sm2.SM2Error):
        sm2.decrypt(sk, base64.b64encode(raw[1:]).decode())  # without the 0x04
    with pytest.raises(sm2.SM2Error):
        sm2.decrypt(sk, raw.hex())  # hex, not Base64


def test_two_encryptions_of_one_message_differ() -> None:
    _, pk = sm2.generate_keypair()
    assert len({sm2.encrypt(pk, CERT_NO) for _ in range(5)}) == 5


def test_k_comes_from_the_os_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pin secrets.randbelow: the output becomes deterministic, proving that is where k comes from
    # (and not from the random module, which gmssl uses).
    monkeypatch.setattr(secrets, "randbelow", lambda n: EXAMPLE_K - 1)
    _, pk = sm2.generate_keypair()
    assert sm2.encrypt(pk, CERT_NO) == sm2.encrypt(pk, CERT_NO)


def test_point_decompression_both_parities_and_forms() -> None:
    for _ in range(10):
        sk, compressed = sm2.generate_keypair()
        key = sm2.public_key(compressed)
        uncompressed = key.hex(compressed=False)
        assert sm2.PublicKey.from_hex(uncompressed).point == key.point
        assert sm2.PublicKey.from_hex(uncompressed[2:]).point == key.point  # x ‖ y, as gmssl prints
        assert sm2.PublicKey.from_hex(compressed.upper()).point == key.point
        assert compressed[:2] == ("03" if key.point[1] & 1 else "02")
        assert sm2.decrypt(sk, sm2.encrypt(uncompressed, NAME)) == NAME


@pytest.mark.parametrize(
    "text",
    [
        "02" + "ff" * 32,  # x >= p
        "04" + "00" * 64,  # not on the curve
        "05" + ALIBABA_SM2_PUBLIC_KEY[2:],  # unknown prefix
        ALIBABA_SM2_PUBLIC_KEY[:-2],  # too short
        "zz" * 33,
        "",
    ],
)
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(sm2.SM2Error):
        sm2.PublicKey.from_hex(text)


def test_an_x_with_no_point_is_refused() -> None:
    c = sm2.SM2P256V1
    x = next(x for x in range(2, 100) if pow((x**3 + c.a * x + c.b) % c.p, (c.p - 1) // 2, c.p) != 1)
    with pytest.raises(sm2.SM2Error, match="not a point"):
        sm2.PublicKey.from_hex("02" + x.to_bytes(32, "big").hex())


def test_decrypt_refuses_garbage() -> None:
    sk, pk = sm2.generate_keypair()
    good = base64.b64decode(sm2.encrypt(pk, NAME))
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    off_curve = good[:1] + b"\x00" * 64 + good[65:]
    for raw in (tampered, off_curve, b"\x04" + b"\x01" * 50):
        with pytest.raises(sm2.SM2Error):
            sm2.decrypt(sk, base64.b64encode(raw).decode())
    _, other = sm2.generate_keypair()
    with pytest.raises(sm2.SM2Error):
        sm2.decrypt(sk, sm2.encrypt(other, NAME))
    with pytest.raises(sm2.SM2Error):
        sm2.encrypt(pk, "")


def test_errors_never_quote_the_message_or_key() -> None:
    sk, pk = sm2.generate_keypair()
    cipher = base64.b64decode(sm2.encrypt(pk, CERT_NO))
    with pytest.raises(sm2.SM2Error) as info:
        sm2.decrypt(sk, base64.b64encode(cipher[:-1] + b"\x00").decode())
    assert CERT_NO not in str(info.value) and sk not in str(info.value)


# -- on the wire ---------------------------------------------------------------------------------


def test_the_wire_encoder_encrypts_only_sensitive_values() -> None:
    sk, pk = sm2.generate_keypair()
    encoder = WireEncoder(sm2.public_key(pk))
    fields = encoder.fields({"CertNo": Sensitive(CERT_NO), "SceneId": "1", "Ip": None})
    assert set(fields) == {"CertNo", "SceneId"} and fields["SceneId"] == "1"
    assert sm2.decrypt(sk, fields["CertNo"]) == CERT_NO
    blob = json.loads(encoder.value(JsonParam({"certName": Sensitive(NAME, kind="cert_name"), "x": None})))
    assert list(blob) == ["certName"] and sm2.decrypt(sk, blob["certName"]) == NAME
    assert "欧" in repr(JsonParam({"certName": Sensitive(NAME, kind="cert_name")}))
    assert NAME not in repr(JsonParam({"certName": Sensitive(NAME, kind="cert_name")}))


def _request() -> InitRequest:
    return InitRequest(outer_order_no="order0001", cert_name=NAME, cert_no=CERT_NO, return_url="https://a/b")


def _config(url: str, sm2_public_key: str | None) -> GatewayConfig:
    return GatewayConfig(
        scene_id="1000000006",
        credentials=StaticCredentials("LTAI5tSm2Wire000001", "sm2-secret"),
        endpoints=(url,),
        encrypt_type="SM2",
        sm2_public_key=sm2_public_key,
        upstream_qps=None,
    )


def _clear_forms(text: str) -> list[str]:
    from urllib.parse import quote
    from urllib.parse import quote_plus

    forms = {v: [v, quote(v), quote_plus(v), json.dumps(v)[1:-1]] for v in (NAME, CERT_NO)}
    return [f for fs in forms.values() for f in fs if f in text]


def test_cloudauth_init_sends_encrypt_type_and_ciphertext() -> None:
    sk, pk = sm2.generate_keypair()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result = {"CertifyId": "c" * 32, "CertifyUrl": "https://t.example/x"}
        return httpx.Response(200, json={"Code": "200", "RequestId": "R", "ResultObject": result})

    gateway = make_gateway("cloudauth", _config("https://a.test", pk), transport=httpx.MockTransport(handler))
    gateway.init(_request())
    gateway.close()
    params = dict(seen[0].url.params)
    assert params["EncryptType"] == "SM2"
    assert sm2.decrypt(sk, params["CertName"]) == NAME
    assert sm2.decrypt(sk, params["CertNo"]) == CERT_NO
    assert not _clear_forms(str(seen[0].url) + seen[0].content.decode())


def test_saf_init_sends_encrypt_type_inside_service_parameters() -> None:
    sk, pk = sm2.generate_keypair()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        data = {"certifyId": "c" * 32, "certifyUrl": "https://t.example/x"}
        return httpx.Response(200, json={"code": 200, "requestId": "R", "data": data})

    gateway = make_gateway("saf", _config("https://saf.test", pk), transport=httpx.MockTransport(handler))
    gateway.init(_request())
    gateway.close()
    from urllib.parse import parse_qsl

    form = dict(parse_qsl(seen[0].content.decode()))
    params = json.loads(form["ServiceParameters"])
    assert params["encryptType"] == "SM2"
    assert sm2.decrypt(sk, params["certName"]) == NAME
    assert sm2.decrypt(sk, params["certNo"]) == CERT_NO
    assert not _clear_forms(str(seen[0].url) + seen[0].content.decode())


def test_sdk_wire_is_encrypted() -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    sk, pk = sm2.generate_keypair()
    ok = {
        "Code": "200",
        "RequestId": "R",
        "ResultObject": {"CertifyId": "c" * 32, "CertifyUrl": "https://t/x"},
    }
    upstream = Upstream(answer(ok))
    with upstream as url:
        gateway = make_gateway("sdk", _config(url, pk))
        gateway.init(_request())
        gateway.close()
    received = upstream.received[0]
    assert received.query["EncryptType"] == "SM2"
    assert sm2.decrypt(sk, received.query["CertName"]) == NAME
    assert sm2.decrypt(sk, received.query["CertNo"]) == CERT_NO
    assert not _clear_forms(received.target + received.body.decode())


def test_a_bad_key_or_encrypt_type_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="sm2_public_key"):
        make_gateway(
            "cloudauth", _config("https://a.test", "04" + "00" * 64), transport=httpx.MockTransport(never)
        )
    config = GatewayConfig(scene_id="1", credentials=StaticCredentials("k", "s"), encrypt_type="AES")
    with pytest.raises(ValueError, match="encrypt_type"):
        make_gateway("cloudauth", config, transport=httpx.MockTransport(never))


def test_alibabas_documented_key_is_the_default() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result = {"CertifyId": "c" * 32, "CertifyUrl": "https://t.example/x"}
        return httpx.Response(200, json={"Code": "200", "RequestId": "R", "ResultObject": result})

    gateway = make_gateway(
        "cloudauth", _config("https://a.test", None), transport=httpx.MockTransport(handler)
    )
    gateway.init(_request())
    gateway.close()
    raw = base64.b64decode(dict(seen[0].url.params)["CertNo"])
    assert raw[0] == 4 and len(raw) == 1 + 64 + len(CERT_NO) + 32
