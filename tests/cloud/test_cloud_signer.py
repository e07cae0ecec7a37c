"""The V3 signer: the published test vector, and byte-identity with the official SDK's signer.

The SDK (``alibabacloud_tea_openapi``) is a test dependency only; it is the oracle. We do not
implement the legacy RPC signature (HMAC-SHA1, ``SignatureVersion=1.0``, Alibaba's "V2版本RPC风格
请求体&签名机制" page): Alibaba no longer recommends it and every request we send is V3
(https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature), so there
is no legacy vector here.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_alicertify.cloud import signer

tea_utils = pytest.importorskip("alibabacloud_tea_openapi.utils")
dara_request = pytest.importorskip("darabonba.request")
SdkUtils = tea_utils.Utils

VECTOR_QUERY = {
    "CertName": "张三",
    "CertNo": "330103199001011234",
    "CertType": "IDENTITY_CARD",
    "MetaInfo": '{"a": "b c"}',
    "OuterOrderNo": "abc123",
    "ProductCode": "ID_PRO",
    "ReturnUrl": "https://x.y/z?a=1",
    "SceneId": "1000000006",
}
VECTOR_HEADERS = {
    "accept": "application/json",
    "content-type": "application/x-www-form-urlencoded",
    "host": "cloudauth.cn-shanghai.aliyuncs.com",
    "x-acs-action": "InitFaceVerify",
    "x-acs-date": "2025-01-01T00:00:00Z",
    "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
    "x-acs-version": "2019-03-07",
}
VECTOR_BODY = b"Model=LIVENESS"
VECTOR_PAYLOAD_HASH = "b561232652e63af74f47982f872bde87585b3265248c7d9515d83e6be0a1d6e0"
VECTOR_STS_HASH = "fc920c78793f41ad53db3d93452daa337b9a88375a0772f0d320203a3cd47425"
VECTOR_SIGNATURE = "3ec2e6b090d988d1a21ac850f7b2baea7742ee6178e1c0d0167ca403ba941666"
ALGO = "ACS3-HMAC-SHA256"


def test_reference_vector_v3() -> None:
    headers = dict(VECTOR_HEADERS, **{"x-acs-content-sha256": VECTOR_PAYLOAD_HASH})
    assert signer.hash_payload(VECTOR_BODY) == VECTOR_PAYLOAD_HASH
    to_sign, signed = signer.string_to_sign("POST", "/", VECTOR_QUERY, headers, VECTOR_PAYLOAD_HASH)
    assert to_sign == f"ACS3-HMAC-SHA256\n{VECTOR_STS_HASH}"
    assert signed == (
        "accept;content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    assert signer.signature("testSecret", to_sign) == VECTOR_SIGNATURE
    auth = signer.authorization(
        method="POST",
        pathname="/",
        query=VECTOR_QUERY,
        headers=headers,
        payload_hash=VECTOR_PAYLOAD_HASH,
        access_key_id="testAK",
        access_key_secret="testSecret",
    )
    assert auth == (
        "ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders=accept;content-type;host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        f"Signature={VECTOR_SIGNATURE}"
    )


def test_reference_vector_canonical_query() -> None:
    assert signer.canonical_query(VECTOR_QUERY) == (
        "CertName=%E5%BC%A0%E4%B8%89&CertNo=330103199001011234&CertType=IDENTITY_CARD"
        "&MetaInfo=%7B%22a%22%3A%20%22b%20c%22%7D&OuterOrderNo=abc123&ProductCode=ID_PRO"
        "&ReturnUrl=https%3A%2F%2Fx.y%2Fz%3Fa%3D1&SceneId=1000000006"
    )


def test_empty_payload_hash() -> None:
    assert signer.EMPTY_SHA256 == hashlib.sha256(b"").hexdigest()
    assert signer.EMPTY_SHA256.startswith("e3b0c442")


def test_parse_authorization_round_trip() -> None:
    auth = signer.authorization(
        method="POST",
        pathname="/",
        query={"a": "1"},
        headers={"host": "h", "x-acs-action": "A"},
        payload_hash=signer.EMPTY_SHA256,
        access_key_id="AK",
        access_key_secret="S",
    )
    algorithm, key_id, names, sig = signer.parse_authorization(auth)
    assert (algorithm, key_id, names) == (ALGO, "AK", ["host", "x-acs-action"])
    assert len(sig) == 64
    with pytest.raises(ValueError):
        signer.parse_authorization("HMAC-SHA1 Credential=x")


# -- the oracle ---------------------------------------------------------------------------------

# Values: CJK names, spaces, and the characters where percent-encoders disagree.
_tricky = st.sampled_from(
    list(" *~+/%&=?#'\"()!@$,;:[]{}|^`\\\t") + ["张", "三", "王", "小", "明", "é", "😀", "·"]
)
values = st.lists(st.one_of(_tricky, st.characters(exclude_categories=["Cs"])), max_size=20).map("".join)
keys = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12
)
header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10).map(
    lambda s: "x-acs-" + s
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(["张", "三"]),
    max_size=30,
)


def _sdk_request(query: dict[str, str], headers: dict[str, str]) -> object:
    """A darabonba request the way ``do_request`` fills one before calling get_authorization."""
    request = dara_request.DaraRequest()
    request.protocol = "https"
    request.method = "POST"
    request.pathname = "/"
    request.query = dict(query)
    request.headers = dict(headers)
    return request


@settings(max_examples=600, deadline=None)
@given(
    query=st.dictionaries(keys, values, max_size=8),
    body=st.one_of(st.none(), st.dictionaries(keys, values, max_size=5)),
    extra_headers=st.dictionaries(header_names, header_values, max_size=4),
    secret=st.text(min_size=1, max_size=30),
    sts=st.booleans(),
)
def test_authorization_matches_sdk(
    query: dict[str, str],
    body: dict[str, str] | None,
    extra_headers: dict[str, str],
    secret: str,
    sts: bool,
) -> None:
    headers = {
        "host": "cloudauth.cn-shanghai.aliyuncs.com",
        "x-acs-version": "2019-03-07",
        "x-acs-action": "InitFaceVerify",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11",
        "x-acs-date": "2025-01-01T00:00:00Z",
        "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
        "accept": "application/json",
        **extra_headers,
    }
    content = b""
    if body is not None:
        sdk_form = SdkUtils.to_form(body)
        our_form = urlencode(dict(sorted(body.items())))
        assert our_form == sdk_form  # the body bytes are what the hash covers
        content = our_form.encode("utf-8")
        headers["content-type"] = "application/x-www-form-urlencoded"
    payload_hash = signer.hash_payload(content)
    assert payload_hash == SdkUtils.hash(content, ALGO).hex()
    headers["x-acs-content-sha256"] = payload_hash
    if sts:
        headers["x-acs-accesskey-id"] = "STS.NTest"
        headers["x-acs-security-token"] = "CAIS+token/=="

    ours = signer.authorization(
        method="POST",
        pathname="/",
        query=query,
        headers=headers,
        payload_hash=payload_hash,
        access_key_id="LTAI5tTest",
        access_key_secret=secret,
    )
    theirs = SdkUtils.get_authorization(
        _sdk_request(query, headers), ALGO, payload_hash, "LTAI5tTest", secret
    )
    assert ours == theirs


@settings(max_examples=600, deadline=None)
@given(query=st.dictionaries(keys, values, max_size=10))
def test_canonical_query_matches_sdk(query: dict[str, str]) -> None:
    assert signer.canonical_query(query) == tea_utils.get_canonical_query_string(query)


def test_none_values_are_dropped_like_the_sdk() -> None:
    query = {"a": "1", "b": None, "c": ""}
    assert signer.canonical_query(query) == "a=1&c="
    assert signer.canonical_query(query) == tea_utils.get_canonical_query_string(query)
