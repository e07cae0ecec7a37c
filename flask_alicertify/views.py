"""The blueprint: parse the request, call the service, answer JSON. Nothing else lives here.

Error handlers are registered on this blueprint only, so an app's own 404 pages and error
handlers are untouched; every error this blueprint produces has the body
``{"error": {"code", "message", "fields"?}}``. Bodies are capped per request (``request.
max_content_length``, Flask ≥ 3.1) rather than through the app-wide ``MAX_CONTENT_LENGTH``, and
JSON is parsed here (not with ``request.get_json``) so that every malformed, deeply nested or
wrongly typed body is a 400 with a field message, never a 500.

Language: messages are Chinese by default (``ALICERTIFY_LANGUAGE = "zh"``); a request whose
``Accept-Language`` prefers English over Chinese gets English, and ``"en"`` makes English the
default.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask import url_for
from marshmallow import Schema
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound

from . import schemas
from .errors import InvalidInput
from .errors import SandboxConflict
from .errors import ServiceError
from .errors import Unauthenticated
from .sandbox.fake import SessionExpired
from .sandbox.page import OutcomeError
from .sandbox.page import cloud_completion
from .sandbox.page import outcome_to_verify_result
from .sandbox.page import parse_outcome_body
from .sandbox.page import render_certify_page
from .service import result_body

if TYPE_CHECKING:
    from .extension import State

#: Stable codes for the HTTP errors raised by Flask/Werkzeug inside this blueprint.
HTTP_CODES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "请求格式不正确", "The request is malformed."),
    405: ("method_not_allowed", "不支持该请求方法", "This method is not allowed here."),
    413: ("body_too_large", "请求体过大", "The request body is too large."),
    415: ("unsupported_media_type", "请使用 application/json 提交", "Send the body as application/json."),
}

LANGUAGES = ("zh", "en")


def make_blueprint(name: str, url_prefix: str, *, sandbox: bool = False, openapi: bool = True) -> Blueprint:
    """The routes of DESIGN §2 for the extension instance called ``name``.

    The sandbox page routes are only added in sandbox mode, so outside it they do not exist
    (404), rather than existing and refusing. ``openapi`` adds ``GET {prefix}/openapi.json``.
    """
    bp = Blueprint(name, __name__, url_prefix=url_prefix or None)

    def state() -> State:
        found: State = current_app.extensions["alicertify"][name]
        return found

    @bp.before_request
    def cap_body() -> None:
        cap = state().settings.max_body_size
        app_cap = current_app.config.get("MAX_CONTENT_LENGTH")
        request.max_content_length = cap if app_cap is None else min(cap, app_cap)

    @bp.after_request
    def no_store(response: Response) -> Response:
        # certifyUrl is a single-use bearer link and results are personal: no caching anywhere.
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.post("/init")
    def init() -> Response:
        st = state()
        params = _load(schemas.INIT, _json_body())["service_parameters"]
        user_id = st.user_id()
        profile = st.profile(user_id)
        started = st.service.start(
            user_id=user_id,
            cert_no=params["cert_no"],
            cert_name=params["cert_name"],
            return_url=params["return_url"],
            meta_info=params["meta_info"],
            profile=profile,
        )
        certify_url = started.certify_url
        if st.sandbox is not None:
            # The fake cloud cannot know this server's address; its page lives on this blueprint.
            page = f"{name}.sandbox_page"
            certify_url = url_for(page, certify_id=started.record.certify_id, _external=True)
        return jsonify(certifyId=started.record.certify_id, certifyUrl=certify_url)

    @bp.post("/result")
    def result() -> Response:
        st = state()
        data = _load(schemas.RESULT, _json_body())
        user_id = st.user_id()
        client = data["result"] or {}
        record = st.service.submit_result(
            user_id=user_id,
            certify_id=data["certify_id"],
            client_status=data["result_status"],
            client_error_code=client.get("error_code"),
            client_certify_id=client.get("certify_id"),
        )
        return jsonify(result_body(record, _lang(st)))

    @bp.get("/result/<certify_id>")
    def current(certify_id: str) -> Response:
        st = state()
        if len(certify_id) > schemas.MAX_CERTIFY_ID:
            raise InvalidInput(fields={"certifyId": ["Longer than maximum length 128."]})
        if not schemas.is_clean(certify_id):
            raise InvalidInput(fields={"certifyId": [schemas.UNSAFE_MESSAGE]})
        user_id = st.user_id()
        record = st.service.current(user_id=user_id, certify_id=certify_id)
        return jsonify(result_body(record, _lang(st)))

    @bp.get("/callback")
    def callback() -> Response:
        st = state()
        data = _load(schemas.CALLBACK, request.args.to_dict(flat=True))
        st.service.handle_callback(
            certify_id=data["certify_id"],
            token=data["callback_token"] or data["callback_token_upper"],
            passed=data["passed"],
        )
        return jsonify(ok=True)

    if sandbox:
        _add_sandbox_routes(bp, state)

    if openapi:

        @bp.get("/openapi.json")
        def openapi_document() -> Response:
            return jsonify(_openapi_document(url_prefix, sandbox))

    @bp.errorhandler(ServiceError)
    def service_error(e: ServiceError) -> tuple[Response, int]:
        response = _error_body(e.code, e.message(_lang(state())), e.fields)
        if e.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(e.retry_after)))
        return response, e.status

    @bp.errorhandler(ValidationError)
    def validation_error(e: ValidationError) -> tuple[Response, int]:
        return service_error(InvalidInput(fields=_fields(e.messages)))

    @bp.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response | tuple[Response, int]:
        status = e.code or 500
        code, zh, en = HTTP_CODES.get(status, (_snake(e.name), e.name, e.name))
        response = _error_body(code, zh if _lang(state()) == "zh" else en, None)
        return response, status

    return bp


def _add_sandbox_routes(bp: Blueprint, state: Callable[[], State]) -> None:
    """``GET``/``POST {prefix}/sandbox/certify/<certifyId>``: the stand-in for Alibaba's page.

    GET renders the page (masked identity only); POST records the chosen outcome in the fake
    cloud (what DescribeFaceVerify will report) and answers the ``verifyResult`` the mini-program's
    ``open-certify`` callback would receive — a claim the server still confirms on ``/result``.
    """

    def session_record(certify_id: str) -> Any:
        st = state()
        if len(certify_id) > schemas.MAX_CERTIFY_ID or certify_id not in st.sandbox.sessions:
            raise NotFound()
        record = st.storage.get_by_certify_id(certify_id)
        if record is None:
            raise NotFound()
        return record

    @bp.get("/sandbox/certify/<certify_id>", endpoint="sandbox_page")
    def sandbox_page(certify_id: str) -> Response:
        record = session_record(certify_id)
        page = render_certify_page(
            certify_id,
            masked_name=record.cert_name_masked,
            masked_cert_no=record.cert_no_masked,
            action_url=request.path,
            result_url=url_for(f"{bp.name}.result"),
        )
        return Response(page, mimetype="text/html")

    @bp.post("/sandbox/certify/<certify_id>")
    def sandbox_complete(certify_id: str) -> Response:
        session_record(certify_id)
        try:
            outcome, sub_code, error_code = parse_outcome_body(_json_body())
        except OutcomeError as e:
            raise InvalidInput(fields=e.fields) from None
        done = cloud_completion(outcome, sub_code=sub_code)
        if done is not None:
            try:
                state().sandbox.complete(certify_id, passed=done[0], sub_code=done[1])
            except SessionExpired:
                raise SandboxConflict("expired") from None
            except ValueError:
                raise SandboxConflict("decided") from None
        return jsonify(
            outcome_to_verify_result(outcome, certify_id=certify_id, sub_code=sub_code, error_code=error_code)
        )


@functools.cache
def _openapi_document(url_prefix: str, sandbox: bool) -> dict[str, Any]:
    """Built once per (prefix, sandbox): the schemas cannot change while the process runs."""
    from .openapi import build_openapi

    return build_openapi(url_prefix, sandbox=sandbox)


def _lang(st: State) -> str:
    default = st.settings.language
    ordered = [default] + [lang for lang in LANGUAGES if lang != default]
    match = request.accept_languages.best_match(ordered)
    return match if match in LANGUAGES else default


def _error_body(code: str, message: str, fields: Any) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return jsonify(error=error)


def _json_body() -> Any:
    """The parsed JSON body, or a 415/400 error; reading past the body cap raises 413."""
    if not request.is_json:
        raise ServiceError(
            status=415,
            code="unsupported_media_type",
            message_zh=HTTP_CODES[415][1],
            message_en=HTTP_CODES[415][2],
        )
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidInput(
            "请求体不能为空", "The request body is empty.", fields={"_body": ["Expected a JSON object."]}
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput(
            "请求体不是有效的 JSON",
            "The request body is not valid JSON.",
            fields={"_body": ["Invalid JSON."]},
        ) from None


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        return schemas.load(schema, data)
    except ValidationError as e:
        raise InvalidInput(fields=_fields(e.messages)) from None


def _fields(messages: Any) -> dict[str, Any]:
    if isinstance(messages, dict):
        return messages
    return {"_schema": messages if isinstance(messages, list) else [str(messages)]}


def _snake(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split()) or "error"


def require_user(loader: Callable[[], Any] | None, allow_anonymous: bool) -> str | None:
    """The caller's user id from ``loader``: None is anonymous (if allowed) or 401."""
    if loader is None:
        return None
    user = loader()
    if user is None or user == "":
        if allow_anonymous:
            return None
        raise Unauthenticated()
    return str(user)
