"""The sandbox certify page in a real browser: headless Debian chromium driven by Playwright.

One session per outcome: init over HTTP (as the mini-program would), open certifyUrl, click the
outcome's button, read the verifyResult the page shows, post it to /result like the
mini-program, and check that GET /result/<certifyId> reflects the outcome. Against both set-ups:
one process with the in-process fake (the page is on the backend), and gunicorn's 3 workers on
the shared sandbox server (the page is the server's). A screenshot of the
page after a click is saved to artifacts/sandbox-certify.png (git-ignored).

Playwright drives the system chromium (``executable_path``); it never downloads a browser.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from support import skip_or_fail
from support.clients import ROOT
from support.clients import Backend

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "artifacts" / "sandbox-certify.png"

#: outcome, <select> choices, expected resultStatus, expected server status, expected SubCode
CASES = [
    ("pass", {}, "9000", "passed", "200"),
    ("fail", {"#sub-code": "202"}, "4000", "failed", "202"),
    ("cancel", {}, "6001", "abandoned", None),
    ("network_error", {}, "6002", "abandoned", None),
    ("business_error", {"#error-code": "USER_IS_NOT_CERTIFY"}, "4000", "abandoned", None),
]


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        skip_or_fail("chromium is not installed (Debian: apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless chromium with a fresh profile, shared by this module's tests."""
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright (PyPI) is not installed; it drives the system chromium")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            locale="zh-CN",
            viewport={"width": 480, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def _start(backend: Backend, token: str) -> tuple[str, str]:
    """POST /init with the body of Alibaba's mini-program guide; answers (certifyId, absolute certifyUrl)."""
    status, body = backend.request(
        "POST",
        f"{backend.prefix}/init",
        {"serviceParameters": {"certNo": "1******************9", "certName": "张先生"}},
        token=token,
    )
    assert status == 200, body
    return body["certifyId"], urljoin(backend.origin + "/", body["certifyUrl"])


@pytest.fixture(params=["demo_backend", "gunicorn_backend"])
def backend(request: pytest.FixtureRequest) -> Backend:
    found: Backend = request.getfixturevalue(request.param)
    return found


@pytest.mark.parametrize(("outcome", "choices", "result_status", "server_status", "sub_code"), CASES)
def test_outcome_button_reaches_the_backend(
    backend: Backend,
    browser: Any,
    outcome: str,
    choices: dict[str, str],
    result_status: str,
    server_status: str,
    sub_code: str | None,
) -> None:
    token = backend.login(f"chromium-{outcome}")
    certify_id, certify_url = _start(backend, token)
    page_host = urlsplit(backend.page_origin).netloc
    assert urlsplit(certify_url).netloc == page_host, certify_url

    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        response = page.goto(certify_url)
        assert response is not None and response.status == 200
        assert page.text_content("#certify-id") == certify_id
        # masked identity only: the sandbox identity is 张先生 / 11010519491231002X
        assert page.text_content("#masked-name") == "张**"
        assert page.text_content("#masked-cert-no") == "1****************X"
        assert "11010519491231002X" not in page.content()
        buttons = page.eval_on_selector_all("button[data-outcome]", "els => els.map(e => e.dataset.outcome)")
        assert buttons == ["pass", "fail", "cancel", "network_error", "business_error"]

        for selector, value in choices.items():
            page.select_option(selector, value)
        page.click(f'button[data-outcome="{outcome}"]')
        page.wait_for_selector(f'#certify[data-done="{outcome}"]', timeout=15_000)
        verify_result = json.loads(page.text_content("#verify-result") or "null")
        if outcome == "fail":
            SCREENSHOT.parent.mkdir(exist_ok=True)
            SCREENSHOT.unlink(missing_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert SCREENSHOT.stat().st_size > 10_000
        assert page.is_disabled(f'button[data-outcome="{outcome}"]')
    finally:
        page.close()

    # no external assets: every request stayed on the page's own server
    assert requested and all(urlsplit(u).netloc == page_host for u in requested)
    assert verify_result["resultStatus"] == result_status
    if result_status in ("6001", "6002"):
        assert verify_result["result"] is None
    else:
        assert verify_result["result"]["certifyId"] == certify_id

    # what the mini-program does next: post the claim with the certifyId it holds
    status, body = backend.request(
        "POST",
        f"{backend.prefix}/result",
        {
            "certifyId": certify_id,
            "resultStatus": verify_result["resultStatus"],
            "result": verify_result["result"],
        },
        token=token,
    )
    assert status == 200, body
    assert body["status"] == server_status
    status, body = backend.request("GET", f"{backend.prefix}/result/{certify_id}", token=token)
    assert status == 200, body
    assert body["status"] == server_status
    assert body["passed"] is (server_status == "passed")
    assert body["subCode"] == sub_code
    assert body["clientStatus"] == result_status
    if choices.get("#error-code"):
        assert verify_result["result"]["errorCode"] == choices["#error-code"]
