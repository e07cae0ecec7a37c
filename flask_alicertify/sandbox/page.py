"""The sandbox certify page: a stand-in for the page Alibaba shows behind ``certifyUrl``.

In production the mini-program hands ``certifyUrl`` to ``my.call('startBizService', {name:
'open-certify'})``, Alibaba's page runs the face check, and the mini-program's callback receives a
``verifyResult`` (seed: ``{resultStatus, result: {certifyId, errorCode} | null}``). In sandbox mode
nobody can run a face check, so this page lets a person (or a script, through the same POST) choose
what happens instead. Everything here is framework-free: the Flask routes only glue these
functions to :class:`~flask_alicertify.sandbox.fake.FakeCloud`.

Four functions, one job each:

* :func:`parse_outcome_body` validates the POST body of ``{prefix}/sandbox/certify/<certifyId>``;
* :func:`cloud_completion` says what the fake cloud must record for an outcome (the server-side
  truth ``DescribeFaceVerify`` will later report);
* :func:`outcome_to_verify_result` builds what the mini-program's callback would receive (the
  client-side claim, which the server never trusts);
* :func:`render_certify_page` renders the HTML page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from ..records import CLIENT_ERROR_CODES
from ..records import SUBCODES

#: The outcomes a sandbox user can choose, in the order the page shows them.
OUTCOMES: tuple[str, ...] = ("pass", "fail", "cancel", "network_error", "business_error")

#: SubCodes that mean "passed" (210 is an undocumented policy pass, reference §2.3).
PASS_SUB_CODES: frozenset[str] = frozenset({"200", "210"})

#: SubCodes a failed check may end with: every known code that is not a pass.
FAIL_SUB_CODES: frozenset[str] = frozenset(SUBCODES) - PASS_SUB_CODES

#: The documented failing SubCodes (201-206) the page offers, with their Chinese text.
PAGE_SUB_CODES: Mapping[str, str] = {
    code: row.message_zh for code, row in SUBCODES.items() if row.documented and code not in PASS_SUB_CODES
}

#: The SubCode a ``fail`` without ``subCode`` ends with (face mismatch, like ``Outcome.fails()``).
DEFAULT_FAIL_SUB_CODE = "204"

#: The client ``errorCode`` used when none is given (the one documented code that claims nothing).
DEFAULT_ERROR_CODE = "UNKNOWN_ERROR"

# The seed's errorCode list is "部分错误码" (partial): accept any code-shaped string so scripts
# can exercise a client's handling of codes nobody documented yet.
_ERROR_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

_ALLOWED_FIELDS: Mapping[str, frozenset[str]] = {
    "pass": frozenset({"outcome", "subCode"}),
    "fail": frozenset({"outcome", "subCode", "errorCode"}),
    "cancel": frozenset({"outcome"}),
    "network_error": frozenset({"outcome"}),
    "business_error": frozenset({"outcome", "errorCode"}),
}


class OutcomeError(ValueError):
    """The POST body is not a valid outcome; ``fields`` maps each bad field to a message.

    A ``ValueError`` so framework-free callers can catch the usual type; the view turns
    ``fields`` into the ``{"error": {"fields": ...}}`` part of the 400 answer.
    """

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields: dict[str, str] = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


def parse_outcome_body(body: object) -> tuple[str, str | None, str | None]:
    """Validate a sandbox POST body and return ``(outcome, sub_code, error_code)`` with defaults applied.

    * ``pass`` -> ``("pass", "200" | "210", None)``
    * ``fail`` -> ``("fail", <failing SubCode, default "204">, <errorCode, default "UNKNOWN_ERROR">)``
    * ``cancel`` / ``network_error`` -> ``(outcome, None, None)``
    * ``business_error`` -> ``("business_error", None, <errorCode, default "UNKNOWN_ERROR">)``

    Fields that do not apply to the chosen outcome are rejected rather than ignored: a script
    sending ``{"outcome": "cancel", "subCode": "204"}`` has a bug it should hear about.

    :raises OutcomeError: with one message per bad field.
    """
    if not isinstance(body, Mapping):
        raise OutcomeError({"body": "must be a JSON object"})
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise OutcomeError({"outcome": f"must be one of {', '.join(OUTCOMES)}"})
    errors: dict[str, str] = {}
    for key in body:
        if key not in _ALLOWED_FIELDS[outcome]:
            errors[str(key)] = f"not allowed with outcome {outcome!r}"

    sub_code: str | None = None
    error_code: str | None = None
    raw_sub = body.get("subCode")
    raw_err = body.get("errorCode")
    if outcome == "pass":
        sub_code = "200"
        if "subCode" in body:
            if raw_sub not in PASS_SUB_CODES:
                errors["subCode"] = f"a passing SubCode: one of {', '.join(sorted(PASS_SUB_CODES))}"
            else:
                sub_code = str(raw_sub)
    elif outcome == "fail":
        sub_code = DEFAULT_FAIL_SUB_CODE
        if "subCode" in body:
            if raw_sub not in FAIL_SUB_CODES:
                errors["subCode"] = f"a failing SubCode: one of {', '.join(sorted(FAIL_SUB_CODES))}"
            else:
                sub_code = str(raw_sub)
    if outcome in ("fail", "business_error"):
        error_code = DEFAULT_ERROR_CODE
        if "errorCode" in body:
            if not isinstance(raw_err, str) or not _ERROR_CODE_RE.match(raw_err):
                errors["errorCode"] = (
                    "an upper-case code such as UNKNOWN_ERROR, SYSTEM_ERROR, USER_IS_NOT_CERTIFY"
                )
            else:
                error_code = raw_err
    if errors:
        raise OutcomeError(errors)
    return outcome, sub_code, error_code


def cloud_completion(outcome: str, *, sub_code: str | None = None) -> tuple[bool, str] | None:
    """What the fake cloud must record for ``outcome``: ``(passed, sub_code)``, or None for nothing.

    Only ``pass`` and ``fail`` finish the face check. Cancel, network error and business error
    leave the session unfinished, so ``DescribeFaceVerify`` keeps answering Code 424 (certify
    record not found / not finished), exactly what Alibaba does when the user never completes.
    """
    if outcome == "pass":
        return True, sub_code or "200"
    if outcome == "fail":
        return False, sub_code or DEFAULT_FAIL_SUB_CODE
    if outcome in OUTCOMES:
        return None
    raise ValueError(f"unknown outcome {outcome!r}")


def outcome_to_verify_result(
    outcome: str,
    *,
    certify_id: str,
    sub_code: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """The ``verifyResult`` the mini-program's ``open-certify`` callback receives for ``outcome``.

    ============== ============================================================================
    pass           ``{"resultStatus": "9000", "result": {"certifyId": id}}``
    fail           ``{"resultStatus": "4000", "result": {"certifyId": id, "errorCode": code}}``
    cancel         ``{"resultStatus": "6001", "result": None}``
    network_error  ``{"resultStatus": "6002", "result": None}``
    business_error ``{"resultStatus": "4000", "result": {"certifyId": id, "errorCode": code}}``
    ============== ============================================================================

    Why a failed face check is 4000 and not 9000: the seed defines 9000 as "认证通过" (passed) and
    lists no other terminal status, so a page that ends without a pass can only report 4000 (业务
    异常). Its ``errorCode`` defaults to ``UNKNOWN_ERROR``, the one documented code that asserts
    nothing Alibaba has not documented (``USER_IS_NOT_CERTIFY`` may just as well mean "the Alipay
    account has no real-name certification"). Either way the verdict comes from the server:
    ``DescribeFaceVerify`` reports ``Passed = "F"`` with the chosen SubCode, and a forged 9000 is
    the pytest kit's job (``9000 forged``), not this page's. ``sub_code`` is accepted for symmetry
    but never appears in the client payload: Alibaba's callback carries no SubCode.

    The seed says ``result`` is empty for 6001/6002, so both give ``None``; tests that want a
    null ``result`` for 9000/4000 null it themselves.
    """
    del sub_code  # the client never sees the SubCode
    if outcome == "pass":
        return {"resultStatus": "9000", "result": {"certifyId": certify_id}}
    if outcome in ("fail", "business_error"):
        return {
            "resultStatus": "4000",
            "result": {"certifyId": certify_id, "errorCode": error_code or DEFAULT_ERROR_CODE},
        }
    if outcome == "cancel":
        return {"resultStatus": "6001", "result": None}
    if outcome == "network_error":
        return {"resultStatus": "6002", "result": None}
    raise ValueError(f"unknown outcome {outcome!r}")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _options(codes: Mapping[str, str], selected: str | None) -> str:
    return "".join(
        f'<option value="{_e(code)}"{" selected" if code == selected else ""}>{_e(code)} {_e(label)}</option>'
        for code, label in codes.items()
    )


_STYLE = """\
  :root { --blue: #1677ff; --green: #00a870; --red: #e34d59; --grey: #6b7280; --line: #e5e7eb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 -apple-system, "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei",
         "Microsoft YaHei",
         sans-serif; background: #f5f6f8; color: #1f2937; }
  main { max-width: 440px; margin: 0 auto; padding: 16px; }
  h1 { font-size: 20px; margin: 8px 0 4px; }
  .en { color: var(--grey); font-size: 12px; font-weight: normal; }
  .banner { background: #fff7e6; border: 1px solid #ffd591; border-radius: 8px; padding: 8px 12px;
            font-size: 13px; margin: 12px 0; }
  .card { background: #fff; border-radius: 12px; padding: 12px 16px; margin: 12px 0;
          box-shadow: 0 1px 2px rgba(0,0,0,.06); }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 12px; margin: 0; }
  dt { color: var(--grey); }
  dd { margin: 0; font-family: ui-monospace, Menlo, monospace; word-break: break-all; }
  .row { display: flex; gap: 8px; align-items: center; margin: 10px 0; }
  .row > button, .row > select { flex: 1 1 0; min-width: 0; }
  button { border: 0; border-radius: 8px; padding: 10px 12px; font-size: 15px; color: #fff;
           background: var(--blue); cursor: pointer; text-align: left; }
  button[data-outcome="pass"] { background: var(--green); width: 100%; }
  button[data-outcome="fail"] { background: var(--red); }
  button[data-outcome="cancel"], button[data-outcome="network_error"] { background: var(--grey); }
  button:disabled { opacity: .45; cursor: default; }
  button small { display: block; font-size: 11px; opacity: .85; }
  select { padding: 9px 6px; border: 1px solid var(--line); border-radius: 8px; background: #fff;
           font-size: 13px; }
  pre { background: #0f172a; color: #e2e8f0; border-radius: 8px; padding: 10px; font-size: 13px;
        white-space: pre-wrap; word-break: break-all; min-height: 2.5em; margin: 8px 0; }
  #status { font-size: 13px; color: var(--grey); }
  #status.error { color: var(--red); }
  .note { font-size: 12px; color: var(--grey); }
"""

_SCRIPT = """\
(function () {
  "use strict";
  var root = document.getElementById("certify");
  var statusEl = document.getElementById("status");
  var out = document.getElementById("verify-result");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-outcome]"));
  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "";
  }
  function choose(outcome) {
    var body = { outcome: outcome };
    if (outcome === "fail") body.subCode = document.getElementById("sub-code").value;
    if (outcome === "business_error") body.errorCode = document.getElementById("error-code").value;
    buttons.forEach(function (b) { b.disabled = true; });
    setStatus("提交中… Sending…", false);
    fetch(root.dataset.actionUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) {
          var msg = data && data.error && data.error.message ? data.error.message : "HTTP " + res.status;
          throw new Error(msg);
        }
        out.textContent = JSON.stringify(data, null, 2);
        root.dataset.done = outcome;
        setStatus("已完成：" + outcome + " · Done. The mini-program receives:", false);
      });
    }).catch(function (err) {
      buttons.forEach(function (b) { b.disabled = false; });
      setStatus("失败 Failed: " + err.message, true);
    });
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { choose(b.getAttribute("data-outcome")); });
  });
})();
"""


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
    result_hint = f"<code>{_e(result_url)}</code>" if result_url else "<code>/result</code>"
    sub_options = _options(sub_codes, DEFAULT_FAIL_SUB_CODE)
    error_options = _options(error_codes, DEFAULT_ERROR_CODE)
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>实人认证（沙箱） · Sandbox ID verification</title>
<style>
{_STYLE}</style>
</head>
<body>
<main id="certify" data-action-url="{_e(action_url)}" data-certify-id="{_e(certify_id)}">
  <h1>实人认证 <span class="en">ID verification · sandbox</span></h1>
  <div class="banner">沙箱页面：代替阿里云认证页面，不会进行真实刷脸。请选择本次认证的结果。<br>
    <span class="en">Stand-in for Alibaba's certify page: no real face check.
    Choose how this session ends.</span></div>
  <section class="card">
    <dl>
      <dt>姓名 <span class="en">Name</span></dt>
      <dd id="masked-name">{_e(masked_name)}</dd>
      <dt>身份证号 <span class="en">ID number</span></dt>
      <dd id="masked-cert-no">{_e(masked_cert_no)}</dd>
      <dt>认证流水号 <span class="en">certifyId</span></dt>
      <dd id="certify-id">{_e(certify_id)}</dd>
    </dl>
  </section>
  <section class="card" id="outcomes">
    <div class="row">
      <button type="button" data-outcome="pass">认证通过 <small>Pass · SubCode 200 → 9000</small></button>
    </div>
    <div class="row">
      <button type="button" data-outcome="fail">认证不通过 <small>Fail → 4000</small></button>
      <select id="sub-code" name="subCode" aria-label="SubCode">{sub_options}</select>
    </div>
    <div class="row">
      <button type="button" data-outcome="cancel">用户取消 <small>Cancel → 6001</small></button>
      <button type="button" data-outcome="network_error">网络异常 <small>Network error → 6002</small></button>
    </div>
    <div class="row">
      <button type="button" data-outcome="business_error">业务异常
        <small>Business error → 4000</small></button>
      <select id="error-code" name="errorCode" aria-label="errorCode">{error_options}</select>
    </div>
  </section>
  <section class="card">
    <div id="status" role="status">请选择结果 <span class="en">Choose an outcome</span></div>
    <pre id="verify-result" aria-label="verifyResult"></pre>
    <p class="note">小程序的 open-certify 回调将收到上面的 verifyResult，随后会连同它持有的 certifyId 一起
      POST 到 {result_hint}，由服务端查询最终结果。<br>
      <span class="en">The mini-program's open-certify callback receives this verifyResult; it would now post
      it, with the certifyId it holds, to {result_hint}, and the server confirms the verdict.</span></p>
  </section>
</main>
<script>
{_SCRIPT}</script>
</body>
</html>
"""
