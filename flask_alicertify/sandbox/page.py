"""The sandbox certify page: a stand-in for the page Alibaba shows behind ``certifyUrl``.

The page is the Jinja template ``templates/certify.html`` with autoescaping on, so every value
is escaped by Jinja rather than by hand. Its style and script are the package files
``static/certify.css`` and ``static/certify.js``, inlined by the template: the page needs no
asset route and loads nothing from anywhere else. A plain :class:`jinja2.Environment` renders
it, so this module needs no Flask app; the routes are in :mod:`.blueprint`.

What the page's buttons mean lives in :mod:`.outcomes`; those names are importable from here too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources

from jinja2 import Environment
from jinja2 import PackageLoader
from jinja2 import Template
from markupsafe import Markup

from ..records import CLIENT_ERROR_CODES
from ..records import SUBCODES as SUBCODES
from .outcomes import DEFAULT_ERROR_CODE
from .outcomes import DEFAULT_FAIL_SUB_CODE
from .outcomes import FAIL_SUB_CODES
from .outcomes import OUTCOMES
from .outcomes import PAGE_SUB_CODES
from .outcomes import PASS_SUB_CODES
from .outcomes import OutcomeError
from .outcomes import cloud_completion
from .outcomes import outcome_to_verify_result
from .outcomes import parse_outcome_body

TEMPLATE = "certify.html"
_PACKAGE = "flask_alicertify.sandbox"


@functools.cache
def _template() -> Template:
    env = Environment(
        loader=PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE)


@functools.cache
def _static(name: str) -> Markup:
    """A file of ``static/``, trusted as markup: it is the package's own CSS or JS, not input."""
    return Markup((resources.files(_PACKAGE) / "static" / name).read_text("utf-8"))


def render_certify_page(
    certify_id: str,
    *,
    masked_name: str,
    masked_cert_no: str,
    action_url: str,
    sub_codes: Mapping[str, str] = PAGE_SUB_CODES,
    error_codes: Mapping[str, str] = CLIENT_ERROR_CODES,
    result_url: str | None = None,
) -> str:
    """A self-contained HTML page (inline CSS and script, no external assets) for one session.

    ``masked_name`` / ``masked_cert_no`` must already be masked: this page never sees clear
    personal data. ``action_url`` receives ``POST {"outcome", "subCode"?, "errorCode"?}`` as JSON;
    its answer (the ``verifyResult``) is shown in ``#verify-result``. Every value is HTML-escaped,
    and no value is interpolated into the script: the script reads them from ``data-`` attributes.
    """
    return _template().render(
        certify_id=certify_id,
        masked_name=masked_name,
        masked_cert_no=masked_cert_no,
        action_url=action_url,
        sub_codes=sub_codes,
        error_codes=error_codes,
        result_url=result_url,
        default_sub_code=DEFAULT_FAIL_SUB_CODE,
        default_error_code=DEFAULT_ERROR_CODE,
        style=_static("certify.css"),
        script=_static("certify.js"),
    )


__all__ = [
    "DEFAULT_ERROR_CODE",
    "DEFAULT_FAIL_SUB_CODE",
    "FAIL_SUB_CODES",
    "OUTCOMES",
    "PAGE_SUB_CODES",
    "PASS_SUB_CODES",
    "OutcomeError",
    "cloud_completion",
    "outcome_to_verify_result",
    "parse_outcome_body",
    "render_certify_page",
]
