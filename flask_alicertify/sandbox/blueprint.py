"""The sandbox's own blueprint: ``GET``/``POST {prefix}/sandbox/certify/<certifyId>``.

The stand-in for Alibaba's certify page. GET renders the page (masked identity only); POST
records the chosen outcome in the fake cloud (what DescribeFaceVerify will report) and answers
the ``verifyResult`` the mini-program's ``open-certify`` callback would receive: a claim the
server still confirms on ``/result``.

The extension registers this blueprint in sandbox mode only, next to its main one, so outside it
the routes do not exist (404) rather than existing and refusing. It follows the main blueprint's
rules: JSON errors from the one catalogue (:func:`flask_alicertify.responses.install_error_handlers`),
``Cache-Control: no-store`` on every answer (a certify URL is a single-use bearer link), and the
instance's body cap (``ALICERTIFY_MAX_BODY_SIZE``) per request.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from werkzeug.exceptions import NotFound

from ..errors import InvalidInput
from ..errors import SandboxConflict
from ..records import Record
from ..responses import install_error_handlers
from ..responses import install_request_policy
from ..responses import json_body
from ..schemas import MAX_CERTIFY_ID
from ..state import get_state
from .fake import FakeCloud
from .openapi import openapi_paths
from .outcomes import OutcomeError
from .outcomes import cloud_completion
from .outcomes import outcome_to_verify_result
from .outcomes import parse_outcome_body
from .page import render_certify_page
from .values import SessionDecided
from .values import SessionExpired

__all__ = ["make_sandbox_blueprint", "openapi_paths"]


def make_sandbox_blueprint(
    name: str,
    url_prefix: str,
    *,
    cloud: FakeCloud,
    find_record: Callable[[str], Record | None],
    result_url: Callable[[], str],
    language: str,
) -> Blueprint:
    """The sandbox routes of the extension instance called ``name``, below ``url_prefix``.

    The blueprint is ``f"{name}_sandbox"`` and its one endpoint ``page``, so
    ``url_for(f"{name}_sandbox.page", certify_id=...)`` is a session's certify URL.

    :param cloud: the fake cloud sandbox mode talks to; only its sessions have a page.
    :param find_record: the stored record of a certify id (its masked identity is shown).
    :param result_url: the URL of ``POST {prefix}/result``, named on the page.
    :param language: the default language of error messages (``ALICERTIFY_LANGUAGE``).
    """
    bp = Blueprint(f"{name}_sandbox", __name__, url_prefix=url_prefix.rstrip("/") + "/sandbox")
    install_error_handlers(bp, language)

    install_request_policy(bp, lambda: get_state(name).settings.max_body_size)

    def session_record(certify_id: str) -> Record:
        """The record of a session this fake issued; 404 for anything else."""
        if len(certify_id) > MAX_CERTIFY_ID or certify_id not in cloud.sessions:
            raise NotFound()
        record = find_record(certify_id)
        if record is None:
            raise NotFound()
        return record

    @bp.route("/certify/<certify_id>", methods=["GET", "POST"], endpoint="page")
    def page(certify_id: str) -> Response:
        record = session_record(certify_id)
        if request.method == "GET":
            html = render_certify_page(
                certify_id,
                masked_name=record.cert_name_masked,
                masked_cert_no=record.cert_no_masked,
                action_url=request.path,
                result_url=result_url(),
            )
            return Response(html, mimetype="text/html")
        try:
            outcome, sub_code, error_code = parse_outcome_body(json_body())
        except OutcomeError as e:
            raise InvalidInput(fields=e.fields) from None
        done = cloud_completion(outcome, sub_code=sub_code)
        if done is not None:
            try:
                cloud.complete(certify_id, passed=done[0], sub_code=done[1])
            except SessionExpired:
                raise SandboxConflict("expired") from None
            except SessionDecided:
                raise SandboxConflict("decided") from None
        return jsonify(outcome_to_verify_result(outcome, certify_id=certify_id, error_code=error_code))

    return bp
