"""The OpenAPI document: valid OpenAPI 3.1, and it describes every route the blueprint really has.

The route check compares the document with ``app.url_map`` of real apps (production and sandbox
configuration, default and custom prefixes), so a route added to the blueprint without being
documented, or documented without existing, fails here. Each operation must list its error
statuses with the one error shape, and the request schemas must be the ones the views load.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from flask_alicertify import AliCertify
from flask_alicertify import errors
from flask_alicertify import schemas
from flask_alicertify.openapi import ERROR_STATUSES
from flask_alicertify.openapi import OPERATION_ERRORS
from flask_alicertify.openapi import build_openapi
from flask_alicertify.sandbox.blueprint import openapi_paths
from flask_alicertify.views import METHOD_ENDPOINT
from flask_alicertify.views import NOT_FOUND_ENDPOINT

ERROR_REF = "#/components/schemas/Error"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
#: The error statuses of the sandbox blueprint's operations (its contributor documents them).
SANDBOX_OPERATION_ERRORS = {
    ("get", "/sandbox/certify/{certifyId}"): (404,),
    ("post", "/sandbox/certify/{certifyId}"): (400, 404, 409, 410, 413, 415),
}


def _document(prefix: str = "/alicertify", sandbox: bool = False, **options: Any) -> dict[str, Any]:
    return build_openapi(prefix, extra_paths=openapi_paths if sandbox else None, **options)


@pytest.mark.parametrize("prefix", ["/alicertify", "", "/kyc/v1"])
@pytest.mark.parametrize("sandbox", [False, True])
def test_document_is_valid_openapi_3_1(prefix: str, sandbox: bool) -> None:
    document = _document(prefix, sandbox)
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert all(path.startswith(prefix + "/") for path in document["paths"])
    # Plain JSON: what the blueprint serves and the docs embed.
    assert json.loads(json.dumps(document)) == document
    assert _document(prefix, sandbox) == document


def _app(prefix: str | None, sandbox: bool) -> Flask:
    app = Flask(f"openapi_{prefix}_{sandbox}")
    app.config.update(SECRET_KEY="openapi-test-secret", ALICERTIFY_ALLOW_ANONYMOUS=True, TESTING=True)
    if prefix is not None:
        app.config["ALICERTIFY_URL_PREFIX"] = prefix
    if sandbox:
        app.config["ALICERTIFY_SANDBOX"] = True
    else:
        app.config.update(
            ALICERTIFY_SCENE_ID="1000000006",
            ALICERTIFY_ACCESS_KEY_ID="LTAI5tOpenApiTestKey01",
            ALICERTIFY_ACCESS_KEY_SECRET="openapi-test-secret",
        )
    return app


@pytest.fixture(
    params=[(None, False), (None, True), ("/kyc", False), ("/kyc", True)],
    ids=["default-prefix", "default-prefix-sandbox", "custom-prefix", "custom-prefix-sandbox"],
)
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    prefix, sandbox = request.param
    app = _app(prefix, sandbox)
    ext = AliCertify(app)
    yield app
    ext.close(app)


def _template(rule: str) -> str:
    """``/a/result/<certify_id>`` and ``/a/result/{certifyId}`` both become ``/a/result/{}``."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", rule)


def _document_for(app: Flask) -> tuple[dict[str, Any], str]:
    state = app.extensions["alicertify"]["alicertify"]
    prefix = state.settings.url_prefix
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    document = _document(prefix, state.settings.sandbox, openapi_json=prefix + "/openapi.json" in rules)
    return document, prefix


#: The routes that only answer routing errors in JSON (405 for a path's other methods, 404 for
#: unknown paths under the prefix): not operations, so never documented as such.
ROUTING_ERROR_ENDPOINTS = {f"alicertify.{METHOD_ENDPOINT}", f"alicertify.{NOT_FOUND_ENDPOINT}"}


def _operations(app: Flask) -> set[tuple[str, str]]:
    return {
        (method.lower(), _template(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("alicertify", "alicertify_sandbox")
        and rule.endpoint not in ROUTING_ERROR_ENDPOINTS
        for method in rule.methods or ()
        if method.lower() in HTTP_METHODS
    }


def test_routing_error_routes_are_excluded_by_name_only(app: Flask) -> None:
    """The exclusion above drops exactly the routing-error routes and nothing that serves."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert ROUTING_ERROR_ENDPOINTS <= endpoints
    views = app.view_functions
    assert {views[e].__name__ for e in ROUTING_ERROR_ENDPOINTS} == {"method_not_allowed", "not_found"}
    prefix = app.extensions["alicertify"]["alicertify"].settings.url_prefix
    client = app.test_client()
    assert client.get(prefix + "/init").status_code == 405
    assert client.get(prefix + "/no-such-route").status_code == 404


def test_every_blueprint_route_is_documented_and_nothing_else(app: Flask) -> None:
    document, prefix = _document_for(app)
    real = _operations(app)
    documented = {
        (method, _template(path))
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert real, "the blueprint registered no route"
    assert real == documented, {"undocumented": real - documented, "not served": documented - real}


def test_every_operation_lists_its_errors_with_the_error_shape(app: Flask) -> None:
    document, prefix = _document_for(app)
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            statuses = {int(code) for code in operation["responses"]}
            assert 200 in statuses, (method, path)
            key = (method, path[len(prefix) :])
            if key[1] == "/openapi.json":
                continue
            assert statuses - {200} == set({**OPERATION_ERRORS, **SANDBOX_OPERATION_ERRORS}[key]), (
                method,
                path,
            )
            for code, response in operation["responses"].items():
                if code == "200":
                    continue
                resolved = responses[response["$ref"].rsplit("/", 1)[1]]
                assert resolved["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}


def test_documented_error_statuses_per_operation() -> None:
    """docs/flow.md's error answers, operation by operation (plus 413/415 wherever JSON is read)."""
    document = _document(sandbox=True)
    expected = {
        ("post", "/init"): {400, 401, 403, 429, 502, 503},
        ("post", "/result"): {400, 403, 404, 503},
        ("get", "/result/{certifyId}"): {403, 404},
        ("get", "/status"): {401},
        ("get", "/callback"): {403, 404},
        ("get", "/sandbox/certify/{certifyId}"): {404},
        ("post", "/sandbox/certify/{certifyId}"): {400, 404},
    }
    for (method, path), wanted in expected.items():
        listed = {int(code) for code in document["paths"]["/alicertify" + path][method]["responses"]}
        assert wanted <= listed, (method, path, wanted - listed)
        if method == "post":
            assert {413, 415} <= listed


def test_every_service_error_status_is_described() -> None:
    """A new error class with a new status cannot ship undocumented."""
    statuses = set()
    for name in errors.__all__:
        value = getattr(errors, name)
        if (
            isinstance(value, type)
            and issubclass(value, errors.ServiceError)
            and value is not errors.ServiceError
        ):
            statuses.add(value.status)
    assert statuses <= set(ERROR_STATUSES), statuses - set(ERROR_STATUSES)


def _properties(document: dict[str, Any], name: str) -> set[str]:
    return set(document["components"]["schemas"][name]["properties"])


def _data_keys(schema: Any) -> set[str]:
    return {field.data_key or key for key, field in schema.fields.items()}


def test_request_schemas_are_the_views_schemas() -> None:
    document = build_openapi()
    assert _properties(document, "InitRequest") == _data_keys(schemas.INIT)
    assert _properties(document, "ServiceParameters") == _data_keys(schemas.ServiceParametersSchema())
    assert _properties(document, "ResultRequest") == _data_keys(schemas.RESULT)
    assert _properties(document, "ClientResult") == _data_keys(schemas.ClientResultSchema())
    callback = document["paths"]["/alicertify/callback"]["get"]["parameters"]
    assert {p["name"] for p in callback} == _data_keys(schemas.CALLBACK)
    assert all(p["in"] == "query" and "null" not in json.dumps(p["schema"]) for p in callback)
    # Codes may arrive unquoted (9000), metaInfo as an object.
    result = document["components"]["schemas"]["ResultRequest"]["properties"]
    assert result["resultStatus"]["type"] == ["string", "integer"]
    meta = document["components"]["schemas"]["ServiceParameters"]["properties"]["metaInfo"]
    assert set(meta["type"]) == {"string", "object", "null"}


def test_error_schema_matches_the_views_error_body() -> None:
    document = build_openapi()
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"}
    assert set(error["properties"]) == {"code", "message", "fields"}


def test_module_is_framework_free() -> None:
    code = "import sys, flask_alicertify.openapi as o; o.build_openapi(); print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_openapi_json_route_serves_the_document() -> None:
    app = _app(None, False)
    ext = AliCertify(app)
    try:
        response = app.test_client().get("/alicertify/openapi.json")
        assert response.status_code == 200
        assert response.get_json() == build_openapi("/alicertify", openapi_json=True)
    finally:
        ext.close(app)


def test_every_catalogue_status_is_described_with_its_codes() -> None:
    """The error responses are read from the catalogue: every status, every code, nothing else."""
    statuses = {spec.status for spec in errors.CATALOGUE.values()}
    assert set(ERROR_STATUSES) == statuses
    for status, (description, codes) in ERROR_STATUSES.items():
        assert description
        assert codes and all(errors.CATALOGUE[code].status == status for code in codes)
    listed = {code for _, codes in ERROR_STATUSES.values() for code in codes}
    assert listed == set(errors.CATALOGUE)


def test_error_responses_name_their_catalogue_codes() -> None:
    document = _document(sandbox=True)
    for name, response in document["components"]["responses"].items():
        status = int(name.removeprefix("Error"))
        for code, spec in errors.CATALOGUE.items():
            if spec.status == status:
                assert code in response["description"], (name, code)


def test_sandbox_openapi_json_route_serves_the_sandbox_operations() -> None:
    app = _app(None, True)
    ext = AliCertify(app)
    try:
        response = app.test_client().get("/alicertify/openapi.json")
        assert response.status_code == 200
        assert response.get_json() == _document("/alicertify", sandbox=True)
        assert "/alicertify/sandbox/certify/{certifyId}" in response.get_json()["paths"]
    finally:
        ext.close(app)
