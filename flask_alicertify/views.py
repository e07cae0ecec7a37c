"""The blueprint: parse the request, call the service, answer JSON. Nothing else lives here.

The routes are the HTTP contract of docs/flow.md. Errors are answered by the handlers of
:func:`flask_alicertify.responses.install_error_handlers`, registered on this blueprint only.
Bodies are capped per request (``request.max_content_length``, Flask ≥ 3.1) rather than through
the app-wide ``MAX_CONTENT_LENGTH``. The sandbox page is not here: in sandbox mode the extension
registers the sandbox's own blueprint next to this one.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request

from . import schemas
from .errors import InvalidInput
from .openapi import PathContributor
from .openapi import build_openapi
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

__all__ = ["LANGUAGES", "make_blueprint", "require_user"]


def make_blueprint(
    name: str,
    url_prefix: str,
    *,
    openapi: bool = True,
    openapi_paths: PathContributor | None = None,
    language: str = "zh",
) -> Blueprint:
    """The routes of the extension instance called ``name``, mounted at ``url_prefix``.

    ``openapi`` adds ``GET {prefix}/openapi.json``; ``openapi_paths`` contributes the operations
    of routes served by another blueprint (the sandbox's) to that document. ``language`` is the
    default language of error messages (``ALICERTIFY_LANGUAGE``).
    """
    bp = Blueprint(name, __name__, url_prefix=url_prefix or None)

    def state() -> State:
        return get_state(name)

    install_request_policy(bp, lambda: state().settings.max_body_size)

    @bp.post("/init")
    def init() -> Response:
        st = state()
        params = load(schemas.INIT, json_body())["service_parameters"]
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
        certify_id = started.record.certify_id
        certify_url = started.certify_url
        if st.certify_url is not None and certify_id is not None:
            certify_url = st.certify_url(certify_id, certify_url)
        return jsonify(certifyId=certify_id, certifyUrl=certify_url)

    @bp.post("/result")
    def result() -> Response:
        st = state()
        data = load(schemas.RESULT, json_body())
        user_id = st.user_id()
        client = data["result"] or {}
        record = st.service.submit_result(
            user_id=user_id,
            certify_id=data["certify_id"],
            client_status=data["result_status"],
            client_error_code=client.get("error_code"),
            client_certify_id=client.get("certify_id"),
        )
        return jsonify(result_body(record, choose_language(st.settings.language)))

    @bp.get("/result/<certify_id>")
    def current(certify_id: str) -> Response:
        st = state()
        if len(certify_id) > schemas.MAX_CERTIFY_ID:
            raise InvalidInput(fields={"certifyId": ["Longer than maximum length 128."]})
        if not schemas.is_clean(certify_id):
            raise InvalidInput(fields={"certifyId": [schemas.UNSAFE_MESSAGE]})
        user_id = st.user_id()
        record = st.service.current(user_id=user_id, certify_id=certify_id)
        return jsonify(result_body(record, choose_language(st.settings.language)))

    @bp.get("/callback")
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

        @bp.get("/openapi.json")
        def openapi_document() -> Response:
            # Built on first use, once: the schemas cannot change while the process runs.
            if not built:
                built.append(build_openapi(url_prefix, extra_paths=openapi_paths))
            return jsonify(built[0])

    install_error_handlers(bp, language)
    return bp
