"""The blueprint: parse the request, call the service, answer JSON. Nothing else lives here.

The routes are the HTTP contract of docs/flow.md. Errors are answered by the handlers of
:func:`flask_alicertify.responses.install_error_handlers`, registered on this blueprint only.
Bodies are capped per request (``request.max_content_length``, Flask ≥ 3.1) rather than through
the app-wide ``MAX_CONTENT_LENGTH``. The sandbox page is not here: in sandbox mode the extension
registers the sandbox's own blueprint next to this one.

Routing errors under the prefix are JSON too. Werkzeug raises them before any blueprint is
chosen, so only app-wide handlers would see them; instead the blueprint owns them as routes:
each path also answers its other methods with 405 (:data:`METHOD_ENDPOINT`), and a catch-all
path answers 404 (:data:`NOT_FOUND_ENDPOINT`). Both raise the Werkzeug error inside the
blueprint, where its JSON handlers answer. With an empty prefix there is no catch-all: the whole
URL space is the app's.

Who is calling is settled before anything is read from the request: an anonymous caller gets
401, whatever the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound

from . import schemas
from .errors import InvalidInput
from .errors import Unauthenticated
from .openapi import PathContributor
from .openapi import build_openapi
from .records import Record
from .records import Status
from .responses import LANGUAGES as LANGUAGES
from .responses import choose_language
from .responses import install_error_handlers
from .responses import install_request_policy
from .responses import json_body
from .responses import load
from .results import result_body
from .state import State
from .state import get_state
from .state import require_user as require_user

__all__ = [
    "LANGUAGES",
    "METHOD_ENDPOINT",
    "NOT_FOUND_ENDPOINT",
    "make_blueprint",
    "require_user",
    "status_body",
]

#: Endpoint (below the blueprint's name) of the routes that answer a path's other methods with 405.
METHOD_ENDPOINT = "method_not_allowed"
#: Endpoint of the catch-all route that answers unknown paths under the prefix with 404.
NOT_FOUND_ENDPOINT = "not_found"
#: Every method a route under the prefix answers, with 405 where the route does not serve it.
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def status_body(record: Record | None) -> dict[str, Any]:
    """The body of ``GET {prefix}/status`` for the record :meth:`AliCertify.verification` found."""
    if record is None:
        return {"verified": False, "status": None, "certifyId": None, "verifiedAt": None}
    passed = record.status == Status.PASSED
    return {
        "verified": passed,
        "status": record.status.value,
        "certifyId": record.certify_id,
        "verifiedAt": record.updated_at.isoformat() if passed else None,
    }


def make_blueprint(
    name: str,
    url_prefix: str,
    *,
    openapi: bool = True,
    openapi_paths: PathContributor | None = None,
    language: str = "zh",
    before_request: Callable[[], Any] | None = None,
) -> Blueprint:
    """The routes of the extension instance called ``name``, mounted at ``url_prefix``.

    ``openapi`` adds ``GET {prefix}/openapi.json``; ``openapi_paths`` contributes the operations
    of routes served by another blueprint (the sandbox's) to that document. ``language`` is the
    default language of error messages (``ALICERTIFY_LANGUAGE``). ``before_request`` runs before
    every route of the blueprint (the in-process sandbox's refusal of multi-process servers).
    """
    bp = Blueprint(name, __name__, url_prefix=url_prefix or None)
    served: dict[str, set[str]] = {}

    def route(rule: str, method: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        served.setdefault(rule, set()).add(method)
        # Automatic OPTIONS would list the 405 route's methods as allowed; it answers OPTIONS.
        return bp.route(rule, methods=[method], provide_automatic_options=False)

    def state() -> State:
        return get_state(name)

    install_request_policy(bp, lambda: state().settings.max_body_size)
    if before_request is not None:
        bp.before_request(before_request)

    @route("/init", "POST")
    def init() -> Response:
        st = state()
        user_id = st.user_id()
        params = load(schemas.INIT, json_body())["service_parameters"]
        started = st.service.start(
            user_id=user_id,
            cert_no=params["cert_no"],
            cert_name=params["cert_name"],
            return_url=params["return_url"],
            meta_info=params["meta_info"],
            profile=st.profile(user_id),
        )
        certify_id = started.record.certify_id
        certify_url = started.certify_url
        if st.certify_url is not None and certify_id is not None:
            certify_url = st.certify_url(certify_id, certify_url)
        return jsonify(certifyId=certify_id, certifyUrl=certify_url)

    @route("/result", "POST")
    def result() -> Response:
        st = state()
        user_id = st.user_id()
        data = load(schemas.RESULT, json_body())
        client = data["result"] or {}
        record = st.service.submit_result(
            user_id=user_id,
            certify_id=data["certify_id"],
            client_status=data["result_status"],
            client_error_code=client.get("error_code"),
            client_certify_id=client.get("certify_id"),
        )
        return jsonify(result_body(record, choose_language(st.settings.language)))

    @route("/result/<certify_id>", "GET")
    def current(certify_id: str) -> Response:
        st = state()
        user_id = st.user_id()
        if len(certify_id) > schemas.MAX_CERTIFY_ID:
            raise InvalidInput(fields={"certifyId": ["Longer than maximum length 128."]})
        if not schemas.is_clean(certify_id):
            raise InvalidInput(fields={"certifyId": [schemas.UNSAFE_MESSAGE]})
        record = st.service.current(user_id=user_id, certify_id=certify_id)
        return jsonify(result_body(record, choose_language(st.settings.language)))

    @route("/status", "GET")
    def status() -> Response:
        st = state()
        user_id = st.current_user_id()
        if user_id is None:
            # Even with anonymous use allowed: an anonymous record belongs to nobody.
            raise Unauthenticated()
        return jsonify(status_body(st.extension.verification(user_id, app=None)))

    @route("/callback", "GET")
    def callback() -> Response:
        st = state()
        data = load(schemas.CALLBACK, request.args.to_dict(flat=True))
        st.service.handle_callback(
            certify_id=data["certify_id"],
            token=data["callback_token"] or data["callback_token_upper"],
            passed=data["passed"],
        )
        return jsonify(ok=True)

    if openapi:
        built: list[dict[str, Any]] = []

        @route("/openapi.json", "GET")
        def openapi_document() -> Response:
            # Built on first use, once: the schemas cannot change while the process runs.
            if not built:
                built.append(build_openapi(url_prefix, extra_paths=openapi_paths))
            return jsonify(built[0])

    _add_routing_errors(bp, served, catch_all=bool(url_prefix))
    install_error_handlers(bp, language)
    return bp


def _add_routing_errors(bp: Blueprint, served: dict[str, set[str]], *, catch_all: bool) -> None:
    """The 405 route of every path (its other methods) and, under a prefix, the 404 catch-all."""

    def method_not_allowed(**kwargs: Any) -> Response:
        allowed = served_methods(request.url_rule.rule if request.url_rule else "")
        if request.method == "OPTIONS":
            response = Response(status=200)
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        raise MethodNotAllowed(valid_methods=sorted(allowed))

    prefix = (bp.url_prefix or "").rstrip("/")
    by_full_rule: dict[str, set[str]] = {}

    def served_methods(full_rule: str) -> set[str]:
        return by_full_rule.get(full_rule, set())

    for rule, methods in served.items():
        allowed = set(methods) | ({"HEAD"} if "GET" in methods else set()) | {"OPTIONS"}
        by_full_rule[prefix + rule] = allowed
        others = [m for m in ALL_METHODS if m not in allowed or m == "OPTIONS"]
        bp.add_url_rule(
            rule,
            endpoint=METHOD_ENDPOINT,
            view_func=method_not_allowed,
            methods=others,
            provide_automatic_options=False,
        )

    if catch_all:

        def not_found(unknown: str = "") -> Response:
            raise NotFound()

        for rule in ("", "/", "/<path:unknown>"):
            bp.add_url_rule(
                rule,
                endpoint=NOT_FOUND_ENDPOINT,
                view_func=not_found,
                methods=list(ALL_METHODS),
                provide_automatic_options=False,
            )
