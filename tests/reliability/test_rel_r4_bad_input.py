"""R4 bad input: schemathesis against the OpenAPI document, plus hand-written hostile requests.

Generated part: every operation of :func:`flask_alicertify.openapi.build_openapi` (for the routes
the app actually has), in both schemathesis modes (positive: valid per the document; negative:
violating it), sent to the Flask app as a WSGI app. Every answer must be < 500, documented for
that operation, of the documented content type, and match the documented schema — for errors,
the one error shape ``{"error": {"code", "message", "fields"?}}``.

Hand-written part: huge bodies, deeply nested JSON, invalid UTF-8, wrong content types, CR/LF
header injection through ``returnUrl`` and the query string, and odd paths under the prefix.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask import request
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance
from schemathesis.checks import not_a_server_error
from schemathesis.checks import response_schema_conformance
from schemathesis.checks import status_code_conformance
from schemathesis.core.failures import FailureGroup
from support.reliability import CERT_NOS
from support.reliability import NAMES
from support.reliability import PREFIX
from support.reliability import App
from support.reliability import is_error_shape
from support.reliability import report
from support.reliability import size

from flask_alicertify import AliCertify
from flask_alicertify.openapi import build_openapi
from flask_alicertify.sandbox.blueprint import openapi_paths
from flask_alicertify.storage import MemoryStorage

REQUESTS = size(2000, 240)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEEN: dict[str, Any] = {"generated": 0, "statuses": Counter(), "failures": [], "hand": 0, "hand_failures": []}


KNOWN_IDS: list[str] = []


def aim(case: Any) -> None:
    """Every other case: point its certifyId (body, path or query) at a real record."""
    n = SEEN["generated"]
    if n % 2:
        return
    known = KNOWN_IDS[(n // 2) % len(KNOWN_IDS)]
    if isinstance(case.body, dict) and "certifyId" in case.body:
        case.body["certifyId"] = known
    for container in (case.path_parameters, case.query):
        if isinstance(container, dict) and "certifyId" in container:
            container["certifyId"] = known


def fuzz_user() -> str:
    """Callers are signed in (so fuzzing reaches past the 401), as the X-User header says or 'fuzz'."""
    return request.headers.get("X-User") or "fuzz"


@pytest.fixture(scope="module")
def fuzz() -> Iterator[App]:
    """A sandbox-mode app (its routes are a superset of production's) on memory storage."""
    app = Flask(f"r4_fuzz_{uuid.uuid4().hex[:8]}")
    app.config.update(
        TESTING=True,
        SECRET_KEY="reliability-secret-key",
        ALICERTIFY_SANDBOX=True,
        ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
        ALICERTIFY_RETURN_URL_HOSTS=["example.com"],
        ALICERTIFY_CALLBACK_URL="https://app.example.com/alicertify/callback",
    )
    ext = AliCertify(user_loader=fuzz_user)
    storage = MemoryStorage()
    ext.init_app(app, storage=storage)
    h = App(app=app, ext=ext, cloud=ext.state(app).sandbox, storage=storage, clock=None)
    # Real records (the fuzzing user's and someone else's): every other generated request has
    # its certifyId swapped for one of them, so the 200 and 403 paths get fuzzed too.
    KNOWN_IDS.extend(h.start("fuzz", name=NAMES[i], number=CERT_NOS[i]) for i in range(2))
    KNOWN_IDS.append(h.start("someone-else", name=NAMES[2], number=CERT_NOS[2]))
    yield h
    KNOWN_IDS.clear()
    ext.close(app)


def document_for(h: App) -> dict[str, Any]:
    """The document of the routes this app has (sandbox and openapi.json when registered)."""
    rules = {rule.rule for rule in h.app.url_map.iter_rules()}
    sandbox = any(rule.startswith(PREFIX + "/sandbox/") for rule in rules)
    return build_openapi(
        PREFIX, extra_paths=openapi_paths if sandbox else None, openapi_json=PREFIX + "/openapi.json" in rules
    )


def fuzz_operation(app: Any, strategy: Any, label: str, examples: int) -> None:
    """Send ``examples`` generated cases to the app; record every check failure in SEEN."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: Any) -> None:
        aim(case)
        response = case.call(app=app)
        SEEN["generated"] += 1
        SEEN["statuses"][response.status_code] += 1
        problems = []
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # check failures: counted and shown below
            problems.extend(str(e).strip().splitlines()[0] for e in group.exceptions)
        if response.status_code >= 400:
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
            if not is_error_shape(body):
                problems.append(f"not the error shape: {response.content[:200]!r}")
        if problems:
            SEEN["failures"].append((label, response.status_code, problems))

    run()


def has_inputs(operation: Any) -> bool:
    """Whether the operation takes anything a fuzzer can vary (a path parameter, a query, a body)."""
    raw = operation.definition.raw
    return "{" in operation.path or "parameters" in raw or "requestBody" in raw


def test_r4_schemathesis_finds_no_5xx_and_only_the_error_shape(fuzz: App) -> None:
    schema = schemathesis.openapi.from_dict(document_for(fuzz))
    operations = [result.ok() for result in schema.get_all_operations()]
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Operations without inputs (GET openapi.json, GET status) get one case; the others share
    # the budget (hypothesis cannot invent many distinct cases for an input-less operation).
    fuzzable = [op for op in operations if has_inputs(op)]
    per_run = max(REQUESTS * 11 // (10 * len(fuzzable) * len(modes)) + 1, 10)
    for operation in operations:
        for mode in modes:
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception as e:  # an operation with nothing to make invalid has no negative mode
                if mode is GenerationMode.NEGATIVE:
                    continue
                raise AssertionError(f"{operation.label}: {e}") from e
            try:
                examples = per_run if operation in fuzzable else 1
                fuzz_operation(fuzz.app, strategy, f"{operation.label} ({mode.value})", examples)
            except Unsatisfiable:  # nothing to make invalid (GET openapi.json has no inputs)
                if mode is not GenerationMode.NEGATIVE:
                    raise
    generated, failures = SEEN["generated"], SEEN["failures"]
    server_errors = sum(n for status, n in SEEN["statuses"].items() if status >= 500)
    _report()
    assert server_errors == 0, failures[:5]
    assert not failures, failures[:5]
    assert generated >= REQUESTS


def _report() -> None:
    statuses = SEEN["statuses"]
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    line = (
        f"{SEEN['generated']} generated requests on a sandbox app with memory storage "
        f"(HTTP {dict(sorted(statuses.items()))}): "
        f"{server_errors} responses >= 500, {len(SEEN['failures'])} failing a schema/shape check; "
        f"{SEEN['hand']} hand-written hostile requests, {len(SEEN['hand_failures'])} mishandled"
    )
    report(
        "R4",
        "bad input",
        line,
        target=f">= {REQUESTS} generated, 0 >= 500, every error in the error shape",
        met=server_errors == 0
        and not SEEN["failures"]
        and not SEEN["hand_failures"]
        and SEEN["generated"] >= REQUESTS,
        size=f"{REQUESTS} generated requests",
    )


# -- hand-written ---------------------------------------------------------------------------------

INIT_BODY = {"serviceParameters": {"certNo": CERT_NOS[0], "certName": NAMES[0]}}


def deep(n: int) -> bytes:
    return b'{"serviceParameters":' + b"[" * n + b"]" * n + b"}"


HOSTILE: list[tuple[str, str, str, dict[str, Any], set[int]]] = [
    # (id, method, path, werkzeug test-client kwargs, acceptable statuses)
    (
        "huge-json-1MiB",
        "POST",
        "/init",
        {"data": b'{"x":"' + b"a" * (1 << 20) + b'"}', "content_type": "application/json"},
        {413},
    ),
    (
        "huge-json-declared-only",
        "POST",
        "/result",
        {"data": b"{}", "content_type": "application/json", "headers": {"Content-Length": str(1 << 30)}},
        {400, 413},
    ),
    (
        "huge-string-field",
        "POST",
        "/init",
        {"json": {"serviceParameters": {"certNo": "1" * 15000, "certName": "x"}}},
        {400, 413},
    ),
    (
        "deep-array-100k",
        "POST",
        "/init",
        {"data": deep(100_000), "content_type": "application/json"},
        {400, 413},
    ),
    ("deep-array-3k", "POST", "/init", {"data": deep(3_000), "content_type": "application/json"}, {400}),
    (
        "deep-object-2k",
        "POST",
        "/result",
        {"data": b'{"a":' * 2000 + b"1" + b"}" * 2000, "content_type": "application/json"},
        {400},
    ),
    (
        "invalid-utf8",
        "POST",
        "/init",
        {"data": b'{"serviceParameters":{"certName":"\xff\xfe\xc3"}}', "content_type": "application/json"},
        {400},
    ),
    (
        "invalid-utf8-result",
        "POST",
        "/result",
        {"data": b'{"certifyId":"\xed\xa0\x80","resultStatus":"9000"}', "content_type": "application/json"},
        {400, 404},
    ),
    (
        "lone-surrogate-escape",
        "POST",
        "/result",
        {"data": b'{"certifyId":"\\ud800","resultStatus":"9000"}', "content_type": "application/json"},
        {400, 404},
    ),
    (
        "utf16-body",
        "POST",
        "/init",
        {"data": json.dumps(INIT_BODY).encode("utf-16"), "content_type": "application/json"},
        {400, 200},
    ),
    (
        "nan-and-infinity",
        "POST",
        "/result",
        {"data": b'{"certifyId":NaN,"resultStatus":Infinity}', "content_type": "application/json"},
        {400},
    ),
    (
        "big-integer",
        "POST",
        "/result",
        {
            "data": b'{"certifyId":"x","resultStatus":' + b"9" * 5000 + b"}",
            "content_type": "application/json",
        },
        {400},
    ),
    (
        "json-not-object",
        "POST",
        "/init",
        {"data": b'["serviceParameters"]', "content_type": "application/json"},
        {400},
    ),
    ("json-null", "POST", "/result", {"data": b"null", "content_type": "application/json"}, {400}),
    ("empty-body", "POST", "/init", {"data": b"", "content_type": "application/json"}, {400}),
    ("no-content-type", "POST", "/init", {"data": json.dumps(INIT_BODY)}, {415}),
    ("text-plain", "POST", "/init", {"data": json.dumps(INIT_BODY), "content_type": "text/plain"}, {415}),
    ("form-urlencoded", "POST", "/result", {"data": {"certifyId": "x", "resultStatus": "9000"}}, {415}),
    (
        "multipart",
        "POST",
        "/init",
        {"data": {"serviceParameters": "x"}, "content_type": "multipart/form-data"},
        {415},
    ),
    (
        "xml",
        "POST",
        "/result",
        {"data": b"<certifyId>x</certifyId>", "content_type": "application/xml"},
        {415},
    ),
    (
        "json-charset-latin1",
        "POST",
        "/init",
        {"data": json.dumps(INIT_BODY), "content_type": "application/json; charset=latin1"},
        {200, 400, 415},
    ),
    (
        "content-type-crlf",
        "POST",
        "/init",
        {
            "data": json.dumps(INIT_BODY),
            "environ_overrides": {"CONTENT_TYPE": "application/json\r\nX-Injected: 1"},
        },
        {200, 400, 415},
    ),
    (
        "gzip-declared",
        "POST",
        "/init",
        {
            "data": b"\x1f\x8b\x08\x00garbage",
            "content_type": "application/json",
            "headers": {"Content-Encoding": "gzip"},
        },
        {400, 415},
    ),
    (
        "callback-crlf",
        "GET",
        "/callback",
        {"query_string": "certifyId=a%0D%0ASet-Cookie:%20x=1&callbackToken=%0D%0A"},
        {400, 404},
    ),
    (
        "callback-invalid-utf8",
        "GET",
        "/callback",
        {"query_string": "certifyId=%FF%FE&callbackToken=%C3"},
        {404},
    ),
    (
        "callback-repeated-params",
        "GET",
        "/callback",
        {"query_string": "certifyId=a&certifyId=b&callbackToken=x&CallbackToken=y"},
        {404},
    ),
    ("callback-huge-param", "GET", "/callback", {"query_string": "certifyId=" + "a" * 100_000}, {400}),
    ("result-id-invalid-utf8", "GET", "/result/%FF%FE", {}, {404}),
    ("result-id-crlf", "GET", "/result/a%0D%0ASet-Cookie:x", {}, {400, 404}),
    ("result-id-huge", "GET", "/result/" + "a" * 10_000, {}, {400}),
    ("result-id-dots", "GET", "/result/..", {}, {404}),
]

#: Routing errors happen before any blueprint code runs, so Flask answers them with the app's own
#: (HTML) error pages: the blueprint cannot, and must not app-wide, handle them (see the report).
ROUTING: list[tuple[str, str, str, int]] = [
    ("wrong-method-init", "PUT", "/init", 405),
    ("wrong-method-result", "DELETE", "/result", 405),
    ("wrong-method-callback", "POST", "/callback", 405),
    ("empty-certify-id", "GET", "/result/", 404),
    ("slash-in-certify-id", "GET", "/result/a/b", 404),
]

#: Names that render as nothing: a billed Init could never match anyone's ID card.
INVISIBLE_NAMES = ["\u3164\u3164\u3164", "\uffa0\uffa0", "\u0301\u0301\u0301", "张\ufe0f三", "\u200b"]


@pytest.mark.parametrize("name", INVISIBLE_NAMES, ids=[f"U+{ord(n[0]):04X}" for n in INVISIBLE_NAMES])
def test_r4_invisible_names_are_invalid_cert_name(fuzz: App, name: str) -> None:
    inits = len(fuzz.cloud.calls_for("InitFaceVerify"))
    body = {"serviceParameters": {"certNo": CERT_NOS[0], "certName": name}}
    response = fuzz.client("fuzz").post(PREFIX + "/init", json=body)
    SEEN["hand"] += 1
    error = (response.get_json(silent=True) or {}).get("error", {})
    if response.status_code != 400 or error.get("code") != "invalid_cert_name":
        SEEN["hand_failures"].append((repr(name), response.status_code, response.data[:200]))
    _report()
    assert (response.status_code, error.get("code")) == (400, "invalid_cert_name")
    assert len(fuzz.cloud.calls_for("InitFaceVerify")) == inits


@pytest.mark.parametrize(
    ("name", "method", "path", "kwargs", "allowed"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_r4_hostile_requests(
    fuzz: App, name: str, method: str, path: str, kwargs: dict[str, Any], allowed: set[int]
) -> None:
    response = fuzz.client("fuzz").open(PREFIX + path, method=method, **kwargs)
    body = response.get_json(silent=True)
    SEEN["hand"] += 1
    ok = response.status_code in allowed and (response.status_code == 200 or is_error_shape(body))
    ok = ok and "X-Injected" not in response.headers and "Set-Cookie" not in response.headers
    if not ok:
        SEEN["hand_failures"].append((name, response.status_code, response.data[:200]))
    _report()
    assert response.status_code in allowed, (response.status_code, response.data[:300])
    assert response.status_code == 200 or is_error_shape(body), response.data[:300]
    assert "Set-Cookie" not in response.headers and "X-Injected" not in response.headers


@pytest.mark.parametrize(("name", "method", "path", "status"), ROUTING, ids=[r[0] for r in ROUTING])
def test_r4_routing_errors_are_not_server_errors(
    fuzz: App, name: str, method: str, path: str, status: int
) -> None:
    response = fuzz.client("fuzz").open(PREFIX + path, method=method, json={})
    SEEN["hand"] += 1
    if response.status_code != status:
        SEEN["hand_failures"].append((name, response.status_code, response.data[:200]))
    _report()
    assert response.status_code == status


RETURN_URLS = [
    "https://example.com/done\r\nSet-Cookie: session=evil",
    "https://example.com/done\nLocation: https://evil.example",
    "https://example.com/done\r\n\r\n<script>alert(1)</script>",
    "https://example.com\u2028/done",
    "https://example.com/%0D%0ASet-Cookie:%20x=1",
    "https://example.com\\@evil.example/",
    "https://evil.example/?https://example.com",
    "https://example.com@evil.example/",
    "javascript:alert(1)//example.com",
    "https://example.com:99999/",
    "//evil.example/",
]


@pytest.mark.parametrize("return_url", RETURN_URLS)
def test_r4_header_injection_in_return_url(fuzz: App, return_url: str) -> None:
    """No CR/LF (raw) ever reaches Alibaba's ReturnUrl, and no foreign host is accepted."""
    before = len(fuzz.cloud.calls_for("InitFaceVerify"))
    body = {"serviceParameters": {**INIT_BODY["serviceParameters"], "returnUrl": return_url}}
    response = fuzz.client("fuzz").post(PREFIX + "/init", json=body)
    SEEN["hand"] += 1
    sent = [c.params.get("ReturnUrl") for c in fuzz.cloud.calls_for("InitFaceVerify")[before:]]
    ok = response.status_code in (200, 400) and (
        response.status_code == 200 or is_error_shape(response.get_json())
    )
    ok = ok and all(s is None or ("\r" not in s and "\n" not in s and "\u2028" not in s) for s in sent)
    from urllib.parse import urlsplit

    ok = ok and all(s is None or urlsplit(s).hostname == "example.com" for s in sent)
    ok = ok and "Set-Cookie" not in response.headers and "Location" not in response.headers
    if not ok:
        SEEN["hand_failures"].append((return_url, response.status_code, sent))
    _report()
    assert ok, (response.status_code, response.get_json(), sent)


# -- characters no backend can store ------------------------------------------------------------

#: Probes with characters a JSON body or a URL can carry but not every backend can store or
#: every encoder send: NUL (PostgreSQL text refuses it) and lone surrogates (``"\ud800"``, which
#: UTF-8 encoders refuse: the request signer, SQLite, Redis). ``{}`` is the real certify id.
IDENTITY_JSON = json.dumps(INIT_BODY)
UNSAFE_PROBES: dict[str, tuple[str, str, str]] = {
    "surrogate-certifyId": ("POST", "/result", '{"certifyId":"\\ud800","resultStatus":"9000"}'),
    "surrogate-resultStatus": ("POST", "/result", '{"certifyId":"{}","resultStatus":"\\ud800"}'),
    "surrogate-errorCode": (
        "POST",
        "/result",
        '{"certifyId":"{}","resultStatus":"4000","result":{"errorCode":"\\udfff"}}',
    ),
    "surrogate-returnUrl": (
        "POST",
        "/init",
        IDENTITY_JSON.replace("}}", ',"returnUrl":"https://example.com/\\ud800"}}'),
    ),
    "surrogate-metaInfo": (
        "POST",
        "/init",
        IDENTITY_JSON.replace("}}", ',"metaInfo":{"a":"\\ud800"}}}'),
    ),
    "nul-certifyId": ("POST", "/result", '{"certifyId":"a\\u0000b","resultStatus":"9000"}'),
    "nul-resultStatus": ("POST", "/result", '{"certifyId":"{}","resultStatus":"90\\u000000"}'),
    "nul-errorCode": (
        "POST",
        "/result",
        '{"certifyId":"{}","resultStatus":"4000","result":{"errorCode":"A\\u0000"}}',
    ),
    "nul-path": ("GET", "/result/a%00b", ""),
    "nul-callback": ("GET", "/callback?certifyId=a%00b&callbackToken=x", ""),
}


def _unsafe_params() -> list[Any]:
    from support.storage import BACKENDS

    params = []
    for backend in BACKENDS:
        kind = backend.values[0]
        for probe in UNSAFE_PROBES:
            params.append(pytest.param(kind, probe, marks=backend.marks, id=f"{backend.id}-{probe}"))
    return params


@pytest.mark.parametrize(("kind", "probe"), _unsafe_params())
def test_r4_unsafe_characters_are_refused_not_500(kind: str, probe: str, tmp_path: Any) -> None:
    from support.reliability import fake_app
    from support.storage import open_test_backend

    method, path, body = UNSAFE_PROBES[probe]
    with (
        open_test_backend(kind, tmp_path) as backend,
        fake_app(storage=backend.storage, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None) as h,
    ):
        h.app.testing = False  # answer 500 like production instead of raising into the test
        cid = h.start("alice")
        before = h.record(cid)
        client = h.client("alice")
        if method == "POST":
            data = body.replace("{}", cid).encode()
            response = client.post(PREFIX + path, data=data, content_type="application/json")
        else:
            response = client.get(PREFIX + path)
        assert response.status_code < 500, response.data[:200]
        if response.status_code >= 400:
            assert is_error_shape(response.get_json()), response.data[:200]
            assert h.record(cid) == before
