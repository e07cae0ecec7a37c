"""The shared sandbox server's routes: Alibaba's APIs, the certify page, and a control API.

One :class:`SharedSandbox` answers every request the loopback server (:mod:`.server`) receives:

=========================================== =====================================================
``POST /`` (``x-acs-action``: any action)    the fake's APIs, V3-signed with the sandbox key pair
``GET /sandbox/certify/<id>?token=…``        the stand-in certify page (masked identity only)
``POST /sandbox/certify/<id>?token=…``       the page's outcome ``{"outcome", "subCode"?,
                                             "errorCode"?}`` → the ``verifyResult``
``GET /_sandbox/health``                     ``{"ok": true}`` (no token: for readiness checks)
``GET /_sandbox/sessions``                   every session, masked (control token)
``GET /_sandbox/sessions/<id>``              one session (control token)
``POST /_sandbox/sessions/<id>/outcome``     decide one, same body as the page (control token)
``POST /_sandbox/reset``                     forget every session and call (control token)
=========================================== =====================================================

The control API wants ``Authorization: Bearer <control token>``: it decides any session by id,
so it is for the operator and the end-to-end tests, not for whoever can reach the port. Errors
are the extension's JSON error body with its catalogue codes. Nothing here logs a request.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx

from ..errors import CATALOGUE
from ..identity import mask_cert_name
from ..identity import mask_cert_no
from . import protocol
from .fake import FakeCloud
from .links import TOKEN_PARAM
from .outcomes import OutcomeError
from .outcomes import cloud_completion
from .outcomes import outcome_to_verify_result
from .outcomes import parse_outcome_body
from .page import render_certify_page
from .values import Session
from .values import SessionDecided
from .values import SessionExpired

PAGE_PATH = re.compile(r"^/sandbox/certify/([0-9A-Za-z_-]{1,64})$")
SESSION_PATH = re.compile(r"^/_sandbox/sessions/([0-9A-Za-z_-]{1,64})(/outcome)?$")
#: Largest body the page and the control API read (the API's own bodies are not capped here).
MAX_BODY = 16 * 1024


class _Answer(Exception):
    """An error answer in the catalogue's shape, raised from deep inside a route."""

    def __init__(self, code: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.fields = fields


class SharedSandbox:
    """The request router of ``python -m flask_alicertify.sandbox`` (a ``ServedCloud``)."""

    def __init__(self, cloud: FakeCloud, *, control_token: str, language: str = "zh") -> None:
        if not control_token:
            raise ValueError("the control API needs a token")
        self.cloud = cloud
        self.control_token = control_token
        self.language = language
        self.timeout_seconds = cloud.timeout_seconds

    def connection_accepted(self) -> None:
        self.cloud.connection_accepted()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not (path.startswith("/sandbox/") or path.startswith("/_sandbox/")):
            return self.cloud.handle(request)
        try:
            if path.startswith("/_sandbox/"):
                return self._control(request, path)
            return self._page(request, path)
        except _Answer as e:
            return self._error(e.code, e.fields)

    # -- the certify page ---------------------------------------------------------------------

    def _page(self, request: httpx.Request, path: str) -> httpx.Response:
        match = PAGE_PATH.match(path)
        if match is None:
            raise _Answer("not_found")
        certify_id = match.group(1)
        token = parse_qs(request.url.query.decode("ascii", "replace")).get(TOKEN_PARAM, [None])[0]
        if not self.cloud.check_link(certify_id, token):
            raise _Answer("not_found")
        if request.method == "GET":
            session = self.cloud.sessions[certify_id]
            html = render_certify_page(
                certify_id,
                masked_name=mask_cert_name(session.cert_name),
                masked_cert_no=mask_cert_no(session.cert_no),
                action_url=f"{path}?{request.url.query.decode('ascii', 'replace')}",
            )
            return _response(200, html.encode("utf-8"), "text/html; charset=utf-8")
        if request.method != "POST":
            raise _Answer("method_not_allowed")
        return _json(200, self._decide(certify_id, _json_body(request)))

    def _decide(self, certify_id: str, body: Any) -> dict[str, Any]:
        try:
            outcome, sub_code, error_code = parse_outcome_body(body)
        except OutcomeError as e:
            raise _Answer("invalid_input", e.fields) from None
        done = cloud_completion(outcome, sub_code=sub_code)
        if done is not None:
            try:
                self.cloud.complete(certify_id, passed=done[0], sub_code=done[1])
            except SessionExpired:
                raise _Answer("sandbox_session_expired") from None
            except SessionDecided:
                raise _Answer("sandbox_session_closed") from None
        return outcome_to_verify_result(outcome, certify_id=certify_id, error_code=error_code)

    # -- the control API ----------------------------------------------------------------------

    def _control(self, request: httpx.Request, path: str) -> httpx.Response:
        if path == "/_sandbox/health":
            return _json(200, {"ok": True})
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), self.control_token.encode("utf-8")
        ):
            raise _Answer("unauthenticated")
        if path == "/_sandbox/reset":
            _require(request, "POST")
            self.cloud.reset()
            return _json(200, {"ok": True})
        if path == "/_sandbox/sessions":
            _require(request, "GET")
            sessions = sorted(self.cloud.sessions.values(), key=lambda s: s.created_at)
            return _json(200, {"sessions": [session_json(s, self.cloud.clock()) for s in sessions]})
        match = SESSION_PATH.match(path)
        if match is None:
            raise _Answer("not_found")
        certify_id, decide = match.group(1), bool(match.group(2))
        if certify_id not in self.cloud.sessions:
            raise _Answer("unknown_certify_id")
        if decide:
            _require(request, "POST")
            verify_result = self._decide(certify_id, _json_body(request))
            shown = session_json(self.cloud.sessions[certify_id], self.cloud.clock())
            return _json(200, {"session": shown, "verifyResult": verify_result})
        _require(request, "GET")
        return _json(200, {"session": session_json(self.cloud.sessions[certify_id], self.cloud.clock())})

    def _error(self, code: str, fields: Mapping[str, Any] | None = None) -> httpx.Response:
        spec = CATALOGUE[code]
        error: dict[str, Any] = {"code": spec.code, "message": spec.message(self.language)}
        if fields:
            error["fields"] = dict(fields)
        return _json(spec.status, {"error": error})


def session_json(session: Session, now: float) -> dict[str, Any]:
    """A session as the control API shows it: no secret, no clear personal data."""
    if session.finished:
        state = "passed" if session.passed else "failed"
    else:
        state = "expired" if session.expired(now) else "pending"
    return {
        "certifyId": session.certify_id,
        "api": session.api,
        "sceneId": session.scene_id,
        "outerOrderNo": session.outer_order_no,
        "certName": mask_cert_name(session.cert_name),
        "certNo": mask_cert_no(session.cert_no),
        "state": state,
        "subCode": session.sub_code,
        "describes": session.describes,
        "encrypted": session.encrypt_type is not None,
        "deleted": session.deleted_at is not None,
        "createdAt": session.created_at,
        "expiresAt": session.expires_at,
    }


def _require(request: httpx.Request, method: str) -> None:
    if request.method != method:
        raise _Answer("method_not_allowed")


def _json_body(request: httpx.Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise _Answer("unsupported_media_type")
    raw = request.read()
    if len(raw) > MAX_BODY:
        raise _Answer("body_too_large")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _Answer("invalid_input", {"_body": ["Invalid JSON."]}) from None


def _response(status: int, body: bytes, content_type: str) -> httpx.Response:
    # no-store: the page's URL is a bearer link and its answers are personal.
    headers = {"content-type": content_type, "cache-control": "no-store"}
    return httpx.Response(status, headers=headers, content=body)


def _json(status: int, payload: Any) -> httpx.Response:
    response = protocol.json_response(status, payload)
    response.headers["cache-control"] = "no-store"
    return response
