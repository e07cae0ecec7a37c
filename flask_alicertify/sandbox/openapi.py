"""The OpenAPI operations of the sandbox routes, for the extension's ``{prefix}/openapi.json``.

:func:`openapi_paths` is a path contributor of :func:`flask_alicertify.openapi.build_openapi`:
given the URL prefix and a function answering the ``responses`` entries of error codes from the
error catalogue, it returns ``{path: {method: operation}}`` as plain JSON. The bodies are
described inline, so the document needs no sandbox component outside sandbox mode; the
``result`` of a ``verifyResult`` is the ``ClientResult`` the main document already defines (it
is what the mini-program posts back to ``/result``). Framework-free, like the main document.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from ..schemas import MAX_CERTIFY_ID
from .outcomes import OUTCOMES

#: The error codes each sandbox operation can answer (catalogue codes, see docs/tables.md).
PAGE_ERRORS: tuple[str, ...] = ("not_found", "unknown_certify_id")
OUTCOME_ERRORS: tuple[str, ...] = (
    "invalid_input",
    "not_found",
    "sandbox_session_closed",
    "sandbox_session_expired",
    "body_too_large",
    "unsupported_media_type",
)

#: ``POST {prefix}/sandbox/certify/{certifyId}``: what the simulated user does.
OUTCOME_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "subCode": {"type": "string", "description": "pass: 200/210; fail: 201-206."},
        "errorCode": {"type": "string", "description": "fail/business_error: e.g. UNKNOWN_ERROR."},
    },
    "required": ["outcome"],
    "additionalProperties": False,
}

#: What the mini-program's open-certify callback would receive.
VERIFY_RESULT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "resultStatus": {"type": "string"},
        "result": {"anyOf": [{"$ref": "#/components/schemas/ClientResult"}, {"type": "null"}]},
    },
    "required": ["result", "resultStatus"],
    "additionalProperties": False,
}


def openapi_paths(
    url_prefix: str, error_responses: Callable[[Sequence[str]], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``GET`` and ``POST {url_prefix}/sandbox/certify/{certifyId}``, with their error answers.

    Both need the session's secret in ``token``, as the ``certifyUrl`` of Init carries it; without
    it (or with another session's) they answer 404.
    """
    certify_id = {
        "name": "certifyId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CERTIFY_ID},
    }
    token = {
        "name": "token",
        "in": "query",
        "required": True,
        "description": "The session's secret, from the certifyUrl Init answered with.",
        "schema": {"type": "string", "minLength": 1},
    }
    return {
        url_prefix.rstrip("/") + "/sandbox/certify/{certifyId}": {
            "get": {
                "operationId": "sandboxPage",
                "summary": "Sandbox only: the page standing in for Alibaba's certify page.",
                "parameters": [dict(certify_id), dict(token)],
                "responses": {
                    "200": {
                        "description": "An HTML page with one button per outcome.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **error_responses(PAGE_ERRORS),
                },
            },
            "post": {
                "operationId": "sandboxOutcome",
                "summary": "Sandbox only: record what the simulated user did; answer the verifyResult.",
                "parameters": [dict(certify_id), dict(token)],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": copy.deepcopy(OUTCOME_SCHEMA)}},
                },
                "responses": {
                    "200": {
                        "description": "The verifyResult open-certify would hand the mini-program.",
                        "content": {"application/json": {"schema": copy.deepcopy(VERIFY_RESULT_SCHEMA)}},
                    },
                    **error_responses(OUTCOME_ERRORS),
                },
            },
        }
    }
