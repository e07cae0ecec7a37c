"""The OpenAPI 3.1 description of the blueprint, generated from the marshmallow schemas.

Framework-free (no Flask import): :func:`build_openapi` returns a plain ``dict`` that the
blueprint serves as ``{prefix}/openapi.json``, that the docs embed, and that the reliability
suite fuzzes with schemathesis. Request bodies and query parameters come straight from
:mod:`flask_alicertify.schemas`, so the document cannot drift from what the views accept; the
response bodies (built by :func:`flask_alicertify.results.result_body` and the views, not by
marshmallow) are described by the small schemas below.

Every operation lists each error status it can answer, all with the one error shape
``{"error": {"code", "message", "fields"?}}``, and each status's description names its codes
from :data:`flask_alicertify.errors.CATALOGUE`: a client generated from this document can rely
on reading ``error.code`` whatever went wrong. Routes served by another blueprint (the
sandbox's) add their operations through a :data:`PathContributor`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from . import schemas
from .errors import CATALOGUE
from .records import Status

OPENAPI_VERSION = "3.1.0"
TITLE = "flask-alicertify"

#: ``error_responses(codes)``: the ``responses`` entries for those catalogue codes, by HTTP status.
ErrorResponses = Callable[[Sequence[str]], dict[str, Any]]
#: ``contributor(url_prefix, error_responses) -> {path: {method: operation}}``: the operations of
#: routes another blueprint serves (paths include the prefix).
PathContributor = Callable[[str, ErrorResponses], Mapping[str, Mapping[str, Any]]]

#: What an error status means, for its response's description (its codes come from the catalogue).
STATUS_DESCRIPTIONS: Mapping[int, str] = {
    400: "The body or query does not have the documented shape, or a value is not acceptable; "
    "`fields` says which and why.",
    401: "Nobody is signed in (and anonymous use is not allowed).",
    403: "The record belongs to another user, or the callback token is missing or wrong (and, from an "
    "app's own view decorated with verified_required, the user has not passed verification).",
    404: "No record has this certifyId, no route under the prefix has this path (or the sandbox is off).",
    405: "The route does not take this method (the Allow header lists the ones it takes).",
    409: "Sandbox only: this session already has a verdict.",
    410: "Sandbox only: this session's 30 minutes are over.",
    413: "The body is larger than ALICERTIFY_MAX_BODY_SIZE.",
    415: "The body is not sent as application/json.",
    429: "No verification attempts left today, Alibaba's per-person limit, or Alibaba throttles Init; "
    "see Retry-After.",
    500: "An unexpected error on the server.",
    502: "Alibaba answered with something unusable (business error, rejection, malformed answer).",
    503: "Alibaba cannot be reached right now (or throttles describe: see Retry-After); the record is "
    "kept and can be confirmed later. Sandbox only: the in-process sandbox under a multi-process server.",
}

#: Error statuses with their description and the catalogue codes each can carry.
ERROR_STATUSES: Mapping[int, tuple[str, Sequence[str]]] = MappingProxyType(
    {
        status: (description, tuple(c for c, spec in CATALOGUE.items() if spec.status == status))
        for status, description in STATUS_DESCRIPTIONS.items()
    }
)

_BODY = ("bad_request", "body_too_large", "unsupported_media_type")
#: Answered by every route of the main blueprint when the in-process sandbox runs multi-process.
_SANDBOX = ("sandbox_needs_shared_server",)

#: The catalogue codes each operation can answer, keyed by ``(method, path below the prefix)``.
#: The body codes (400 bad_request, 413, 415) apply wherever a JSON body is read.
OPERATION_CODES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("post", "/init"): (
        "invalid_input",
        "invalid_return_url",
        "invalid_cert_name",
        "identity_mismatch",
        "identity_not_verifiable",
        *_BODY,
        "unauthenticated",
        "forbidden",
        "attempts_exhausted",
        "too_many_failures",
        "upstream_throttled",
        "upstream_error",
        "upstream_malformed",
        "upstream_unavailable",
        *_SANDBOX,
    ),
    ("post", "/result"): (
        "invalid_input",
        *_BODY,
        "unauthenticated",
        "forbidden",
        "unknown_certify_id",
        "upstream_unavailable",
        *_SANDBOX,
    ),
    ("get", "/result/{certifyId}"): (
        "invalid_input",
        "unauthenticated",
        "forbidden",
        "unknown_certify_id",
        *_SANDBOX,
    ),
    ("get", "/status"): ("unauthenticated", *_SANDBOX),
    ("get", "/callback"): (
        "invalid_input",
        "invalid_callback_token",
        "unknown_certify_id",
        "upstream_unavailable",
        *_SANDBOX,
    ),
}


def _statuses(codes: Sequence[str]) -> tuple[int, ...]:
    return tuple(sorted({CATALOGUE[code].status for code in codes}))


#: The error statuses of each operation of this blueprint, derived from :data:`OPERATION_CODES`.
OPERATION_ERRORS: Mapping[tuple[str, str], tuple[int, ...]] = MappingProxyType(
    {key: _statuses(codes) for key, codes in OPERATION_CODES.items()}
)


# -- response bodies (built by the service and the views, described here) ------------------------


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "Stable snake_case code a client may branch on."}
    )
    message = fields.String(required=True, metadata={"description": "Safe to show the end user."})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={"description": "Per-field messages (nested like the request body), when input was bad."},
    )


class ErrorSchema(Schema):
    """Every error answer of the blueprint."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class InitResponseSchema(Schema):
    certify_id = fields.String(data_key="certifyId", required=True)
    certify_url = fields.String(
        data_key="certifyUrl",
        required=True,
        metadata={"description": "Single-use link for open-certify; never stored server-side."},
    )


class ResultResponseSchema(Schema):
    """The record's state as ``POST /result`` and ``GET /result/{certifyId}`` answer it."""

    certify_id = fields.String(data_key="certifyId", required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in Status]))
    passed = fields.Boolean(
        required=True, metadata={"description": "True only after Alibaba's describe said Passed=T."}
    )
    sub_code = fields.String(data_key="subCode", required=True, allow_none=True)
    message = fields.String(required=True, metadata={"description": "User-safe text (zh, or en)."})
    retryable = fields.Boolean(
        required=True, metadata={"description": "Whether starting a new verification makes sense."}
    )
    client_status = fields.String(
        data_key="clientStatus",
        required=True,
        allow_none=True,
        metadata={"description": "The last resultStatus the client claimed (a claim, never a verdict)."},
    )


class StatusResponseSchema(Schema):
    """``GET {prefix}/status``: the signed-in user's verification state."""

    verified = fields.Boolean(
        required=True, metadata={"description": "True when the user has a passed verification."}
    )
    status = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf([s.value for s in Status]),
        metadata={"description": "The status of the passed record, else of the latest one; null if none."},
    )
    certify_id = fields.String(data_key="certifyId", required=True, allow_none=True)
    verified_at = fields.DateTime(
        data_key="verifiedAt",
        required=True,
        allow_none=True,
        metadata={"description": "When the verification passed (ISO 8601), or null."},
    )


class CallbackResponseSchema(Schema):
    ok = fields.Boolean(required=True, validate=validate.Equal(True))


# -- the document -------------------------------------------------------------------------------


def build_openapi(
    prefix: str = "/alicertify",
    *,
    extra_paths: PathContributor | None = None,
    openapi_json: bool = True,
    title: str = TITLE,
    version: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the blueprint mounted at ``prefix``.

    :param prefix: the blueprint's URL prefix (``ALICERTIFY_URL_PREFIX``); paths include it.
    :param extra_paths: adds the operations of routes another blueprint serves, e.g. the
        sandbox's ``flask_alicertify.sandbox.blueprint.openapi_paths`` (served only in sandbox
        mode); it gets ``prefix`` and a function giving the error responses of catalogue codes.
    :param openapi_json: include ``{prefix}/openapi.json`` itself (off when the route is).
    :param version: the document's ``info.version``; the installed package version by default.
    """
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    prefix = prefix.rstrip("/")
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title=title,
        version=version or _package_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": (
                "Server side of Alibaba Cloud ID verification (实人认证) started from an Alipay "
                "mini-program. A client's resultStatus is only a claim: a record is `passed` only "
                "after the server's DescribeFaceVerify says Passed=T."
            )
        },
    )
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(_custom_fields)  # type: ignore[no-untyped-call]

    for name, schema in (
        ("ServiceParameters", schemas.ServiceParametersSchema),
        ("InitRequest", schemas.InitSchema),
        ("ClientResult", schemas.ClientResultSchema),
        ("ResultRequest", schemas.ResultSchema),
        ("InitResponse", InitResponseSchema),
        ("ResultResponse", ResultResponseSchema),
        ("StatusResponse", StatusResponseSchema),
        ("CallbackResponse", CallbackResponseSchema),
        ("ErrorDetail", ErrorDetailSchema),
        ("Error", ErrorSchema),
    ):
        spec.components.schema(name, schema=schema)
    used: set[int] = set()

    def error_responses(codes: Sequence[str]) -> dict[str, Any]:
        statuses = _statuses(codes)
        used.update(statuses)
        return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in statuses}

    certify_id_param = {
        "name": "certifyId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": schemas.MAX_CERTIFY_ID},
    }

    def errors(method: str, path: str) -> dict[str, Any]:
        return error_responses(OPERATION_CODES[(method, path)])

    def ok(description: str, schema: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def json_body(schema: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    spec.path(
        path=prefix + "/init",
        operations={
            "post": {
                "operationId": "init",
                "summary": "Start a verification: InitFaceVerify, answer certifyId and certifyUrl.",
                "requestBody": json_body("InitRequest"),
                "responses": {"200": ok("Started.", "InitResponse"), **errors("post", "/init")},
            }
        },
    )
    spec.path(
        path=prefix + "/result",
        operations={
            "post": {
                "operationId": "postResult",
                "summary": "Report the mini-program's verifyResult; the server confirms it with describe.",
                "requestBody": json_body("ResultRequest"),
                "responses": {
                    "200": ok("The record after confirmation.", "ResultResponse"),
                    **errors("post", "/result"),
                },
            }
        },
    )
    spec.path(
        path=prefix + "/result/{certifyId}",
        parameters=[dict(certify_id_param)],
        operations={
            "get": {
                "operationId": "getResult",
                "summary": "The record's current state (re-described at most once per interval).",
                "responses": {
                    "200": ok("The record's state.", "ResultResponse"),
                    **errors("get", "/result/{certifyId}"),
                },
            }
        },
    )
    spec.path(
        path=prefix + "/status",
        operations={
            "get": {
                "operationId": "getStatus",
                "summary": "The signed-in user's verification state: verified, and the record behind it.",
                "responses": {"200": ok("The user's state.", "StatusResponse"), **errors("get", "/status")},
            }
        },
    )
    spec.path(
        path=prefix + "/callback",
        operations={
            "get": {
                "operationId": "callback",
                "summary": "Alibaba's completion notice (unsigned): token check, then describe.",
                "parameters": [{"in": "query", "schema": schemas.CallbackSchema}],
                "responses": {"200": ok("Accepted.", "CallbackResponse"), **errors("get", "/callback")},
            }
        },
    )
    if extra_paths is not None:
        for path, operations in extra_paths(prefix, error_responses).items():
            spec.path(path=path, operations=dict(operations))
    if openapi_json:
        spec.path(
            path=prefix + "/openapi.json",
            operations={
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        )
    for status in sorted(used):
        description, codes = ERROR_STATUSES[status]
        spec.components.response(
            f"Error{status}",
            {
                "description": f"{description} Codes: {', '.join(codes)}.",
                "content": {"application/json": {"schema": "Error"}},
            },
        )
    document: dict[str, Any] = spec.to_dict()
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                for parameter in operation.get("parameters", ()):
                    _query_parameter(parameter)
    return document


def _query_parameter(parameter: dict[str, Any]) -> None:
    """A query value is a string or absent, never JSON null: drop what nullable fields add."""
    schema = parameter.get("schema")
    if parameter.get("in") != "query" or not isinstance(schema, dict):
        return
    if schema.get("default", ...) is None:
        del schema["default"]
    kinds = schema.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        kinds = [k for k in kinds if k != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds


def _schema_name(schema: type[Schema] | Schema) -> str:
    """Component name of a schema apispec meets nested (``ClientResultSchema`` -> ``ClientResult``)."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and name != "Schema" else name


def _custom_fields(self: Any, field: fields.Field[Any], ret: dict[str, Any]) -> dict[str, Any]:
    """JSON types of our custom fields (apispec only knows marshmallow's own)."""
    nullable = ["null"] if field.allow_none else []
    if isinstance(field, schemas.Code):
        return {"type": ["string", "integer", *nullable]}
    if isinstance(field, schemas.MetaInfo):
        return {"type": ["string", "object", *nullable]}
    if isinstance(field, schemas.SensitiveText):
        return {"type": ["string", *nullable], "maxLength": field.max_length}
    return {}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    try:
        return version("flask-alicertify")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"
