"""The JSON contract of the blueprints: bodies in, result and error bodies out, in which language.

Every error a blueprint produces has the body ``{"error": {"code", "message", "fields"?}}`` with
a code from :data:`~flask_alicertify.errors.CATALOGUE` (see docs/tables.md).
:func:`install_error_handlers` registers the handlers on one blueprint only, by status code as
well as by class: Flask looks up a handler for the status code (blueprint, then app) before any
class-based one, so an app's own ``@app.errorhandler(404)`` would otherwise answer our routes'
404s in HTML. The app's pages outside the prefix keep their own handlers. JSON is parsed by
:func:`json_body` (not with ``request.get_json``) so that every malformed, deeply nested or
wrongly typed body is a 400 with a field message, never a 500.

Language: ``message`` and the ``fields`` messages are Chinese by default
(``ALICERTIFY_LANGUAGE = "zh"``); a request whose ``Accept-Language`` prefers English over
Chinese gets English, and ``"en"`` makes English the default. The result body itself is built by
the framework-free :mod:`flask_alicertify.results`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from marshmallow import Schema
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import default_exceptions

from . import schemas
from .errors import InvalidInput
from .errors import ServiceError
from .errors import UnsupportedMediaType
from .errors import http_error_spec
from .results import result_body as result_body
from .results import retryable as retryable
from .results import user_message as user_message
from .translations import localise_fields

LANGUAGES = ("zh", "en")


def choose_language(default: str) -> str:
    """``"zh"`` or ``"en"``: what the request's ``Accept-Language`` prefers, else ``default``."""
    ordered = [default] + [lang for lang in LANGUAGES if lang != default]
    match = request.accept_languages.best_match(ordered)
    return match if match in LANGUAGES else default


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    """``{"error": {"code", "message", "fields"?}}``; ``fields`` only when there are some."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(e: ServiceError, lang: str) -> tuple[Response, int]:
    """The JSON answer to ``e``, with ``Retry-After`` (whole seconds, at least 1) when it has one."""
    response = jsonify(error_body(e.code, e.message(lang), localise_fields(e.fields, lang)))
    if e.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(e.retry_after)))
    return response, e.status


def install_error_handlers(bp: Blueprint, default_language: str) -> None:
    """Answer every error raised inside ``bp`` with the JSON error body.

    :class:`~flask_alicertify.errors.ServiceError` keeps its code; a marshmallow
    ``ValidationError`` is ``invalid_input`` with the field messages; Werkzeug's HTTP errors
    (413 body too large, 405, ...) get their catalogue code.
    """

    @bp.errorhandler(ServiceError)
    def service_error(e: ServiceError) -> tuple[Response, int]:
        return error_response(e, choose_language(default_language))

    @bp.errorhandler(ValidationError)
    def validation_error(e: ValidationError) -> tuple[Response, int]:
        return service_error(InvalidInput(fields=field_messages(e.messages)))

    def http_error(e: HTTPException) -> tuple[Response, int]:
        status = e.code or 500
        spec = http_error_spec(status, e.name)
        response = jsonify(error_body(spec.code, spec.message(choose_language(default_language))))
        allow = getattr(e, "valid_methods", None)
        if status == 405 and allow:
            response.headers["Allow"] = ", ".join(sorted(allow))
        return response, status

    bp.register_error_handler(HTTPException, http_error)
    for status in default_exceptions:
        bp.register_error_handler(status, http_error)


def install_request_policy(bp: Blueprint, max_body_size: Callable[[], int]) -> None:
    """Cap request bodies and forbid caching on every route of ``bp``.

    The cap is per request (``request.max_content_length``) rather than the app-wide
    ``MAX_CONTENT_LENGTH``, and never above the app's own. ``no-store``: a certifyUrl is a
    single-use bearer link and results are personal, so no cache anywhere may keep an answer.
    """

    @bp.before_request
    def cap_body() -> None:
        cap = max_body_size()
        app_cap = current_app.config.get("MAX_CONTENT_LENGTH")
        request.max_content_length = cap if app_cap is None else min(cap, app_cap)

    @bp.after_request
    def no_store(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response


def json_body() -> Any:
    """The parsed JSON body, or a 415/400 error; reading past the body cap raises 413."""
    if not request.is_json:
        raise UnsupportedMediaType()
    raw = request.get_data(cache=True)
    _refuse_unbounded_overflow(len(raw))
    if not raw.strip():
        raise InvalidInput(
            "请求体不能为空", "The request body is empty.", fields={"_body": ["Expected a JSON object."]}
        )
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidInput(
            "请求体嵌套层数过多",
            "The request body is nested too deeply.",
            fields={"_body": ["Nested too deeply."]},
        ) from None
    except ValueError:
        raise InvalidInput(
            "请求体不是有效的 JSON",
            "The request body is not valid JSON.",
            fields={"_body": ["Invalid JSON."]},
        ) from None


def _refuse_unbounded_overflow(read: int) -> None:
    """413 for a streamed body (chunked, no ``Content-Length``) longer than the cap.

    Werkzeug caps such a body by reading at most ``max_content_length`` bytes, and a read that
    ends exactly there is not an error: the body was silently cut at the cap and processed.
    One more byte from the server's stream tells a body of exactly the cap from a longer one.
    """
    cap = request.max_content_length
    if request.content_length is not None or cap is None or read < cap:
        return
    stream = request.environ.get("wsgi.input")
    if stream is not None and stream.read(1):
        raise RequestEntityTooLarge()


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """``schema`` applied to ``data``; a mismatch is ``invalid_input`` with the field messages."""
    try:
        return schemas.load(schema, data)
    except ValidationError as e:
        raise InvalidInput(fields=field_messages(e.messages)) from None


def field_messages(messages: Any) -> dict[str, Any]:
    """marshmallow's messages as the ``fields`` object (a bare list goes under ``_schema``)."""
    if isinstance(messages, dict):
        return messages
    return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
