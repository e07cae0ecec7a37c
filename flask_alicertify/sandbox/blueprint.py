"""The in-process sandbox's blueprint: ``GET``/``POST {prefix}/sandbox/certify/<certifyId>?token=…``.

The stand-in for Alibaba's certify page when ``ALICERTIFY_SANDBOX = True``. GET renders the page
(masked identity only); POST records the chosen outcome in the fake cloud (what
DescribeFaceVerify will report) and answers the ``verifyResult`` the mini-program's
``open-certify`` callback would receive: a claim the server still confirms on ``/result``.

Only the holder of the link decides: both need the session's secret (``token``), which travels
in the ``certifyUrl`` Init answered with, as Alibaba's real URL is a single-use bearer link. The
certify id alone, or a wrong token, is a 404 that changes nothing.

The extension registers this blueprint in sandbox mode only, next to its main one, so outside it
the routes do not exist (404) rather than existing and refusing. It follows the main blueprint's
rules: JSON errors from the one catalogue (:func:`flask_alicertify.responses.install_error_handlers`),
``Cache-Control: no-store`` on every answer, the instance's body cap per request, and the refusal
to run under a multi-process server (:func:`refuse_multiprocess`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import quote

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import has_request_context
from flask import jsonify
from flask import request
from flask import url_for
from werkzeug.exceptions import NotFound

from ..errors import InvalidInput
from ..errors import SandboxConflict
from ..errors import SandboxNeedsSharedServer
from ..records import Record
from ..responses import install_error_handlers
from ..responses import install_request_policy
from ..responses import json_body
from ..schemas import MAX_CERTIFY_ID
from ..state import get_state
from .fake import FakeCloud
from .links import TOKEN_PARAM
from .links import token_of
from .openapi import openapi_paths
from .outcomes import OutcomeError
from .outcomes import cloud_completion
from .outcomes import outcome_to_verify_result
from .outcomes import parse_outcome_body
from .page import render_certify_page
from .values import SessionDecided
from .values import SessionExpired

__all__ = ["local_certify_url", "make_sandbox_blueprint", "openapi_paths", "refuse_multiprocess"]


def refuse_multiprocess() -> None:
    """``before_request``: the in-process fake cannot serve a multi-process server.

    Each worker process would hold its own fake, so a session opened in one is unknown to the
    next (the page 404s, the verdict never comes). Answer every request with a clear 503
    ``sandbox_needs_shared_server`` naming the shared server instead of failing at random.
    """
    if request.environ.get("wsgi.multiprocess"):
        raise SandboxNeedsSharedServer()


def _is_loopback(host: str) -> bool:
    """``host`` (``name``, ``name:port``, ``[v6]:port``) names this machine's loopback."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def external_base() -> str:
    """``scheme://host`` for absolute certify URLs, or ``""`` for a root-relative one.

    ``SERVER_NAME`` (with ``PREFERRED_URL_SCHEME``) when set. Otherwise the request's own host
    only where a forged ``Host`` header cannot matter: a loopback host (it can only point the
    caller at their own machine), or a host Flask's ``TRUSTED_HOSTS`` vouched for (an untrusted
    one is refused with 400 before this runs). Anywhere else the URL stays root-relative, and
    the client resolves it against the backend URL it called.
    """
    app = current_app
    server_name = app.config.get("SERVER_NAME")
    if server_name:
        return f"{app.config.get('PREFERRED_URL_SCHEME') or 'http'}://{server_name}"
    if has_request_context() and (app.config.get("TRUSTED_HOSTS") or _is_loopback(request.host)):
        return request.host_url.rstrip("/")
    return ""


def local_certify_url(name: str, cloud: FakeCloud) -> Callable[[str, str], str]:
    """The certify-URL rule of the in-process sandbox: the page on this server, with its secret.

    Given the certify id and the URL the fake issued (whose ``token`` is the session's secret),
    answer ``{base}{prefix}/sandbox/certify/<id>?token=…`` (see :func:`external_base`).
    """

    def certify_url(certify_id: str, gateway_url: str) -> str:
        token = token_of(gateway_url) or cloud.links.secret(certify_id)
        page = url_for(f"{name}_sandbox.page", certify_id=certify_id, _external=False)
        path = f"{page}?{TOKEN_PARAM}={quote(token)}"
        return external_base() + path

    return certify_url


def make_sandbox_blueprint(
    name: str,
    url_prefix: str,
    *,
    cloud: FakeCloud,
    find_record: Callable[[str], Record | None] | None = None,
    result_url: Callable[[], str] | None = None,
    language: str = "zh",
) -> Blueprint:
    """The sandbox routes of the extension instance called ``name``, below ``url_prefix``.

    The blueprint is ``f"{name}_sandbox"`` and its one endpoint ``page``.

    :param cloud: the fake cloud sandbox mode talks to; only its sessions have a page.
    :param find_record: the stored record of a certify id (its masked identity is shown);
        by default the instance's storage, looked up at request time.
    :param result_url: the URL of ``POST {prefix}/result``, named on the page; by default
        ``url_for(f"{name}.result")``.
    :param language: the default language of error messages (``ALICERTIFY_LANGUAGE``).
    """
    bp = Blueprint(f"{name}_sandbox", __name__, url_prefix=url_prefix.rstrip("/") + "/sandbox")
    install_error_handlers(bp, language)
    install_request_policy(bp, lambda: get_state(name).settings.max_body_size)
    bp.before_request(refuse_multiprocess)

    def record_of(certify_id: str) -> Record | None:
        if find_record is not None:
            return find_record(certify_id)
        return get_state(name).storage.get_by_certify_id(certify_id)

    def session_record(certify_id: str) -> Record:
        """The record of a session this fake issued, opened with its secret; 404 for anything else."""
        token = request.args.get(TOKEN_PARAM)
        if len(certify_id) > MAX_CERTIFY_ID or not cloud.check_link(certify_id, token):
            raise NotFound()
        record = record_of(certify_id)
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
                action_url=request.full_path,
                result_url=result_url() if result_url is not None else url_for(f"{name}.result"),
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
