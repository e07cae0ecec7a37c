"""A staging-like set-up end to end: gunicorn with 3 workers, one SQL database, the shared sandbox.

Each flow is what a mini-program and a user do, over real HTTP: log in, POST /init (any worker),
open the certifyUrl (the shared sandbox server's page), choose the outcome there, post the
verifyResult to /result (any worker), read /result/<id> and /me (any worker). With the
in-process fake this failed at random (a session opened in one worker was unknown to the next);
with the shared server every flow must end as chosen. The CLI, run as another process, sees the
same sessions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from support.clients import BACKEND
from support.clients import Backend

from pytest_alicertify.sandbox_server import SandboxServer

#: outcome body, expected resultStatus, server status, SubCode
FLOWS: list[tuple[dict[str, Any], str, str, str | None]] = [
    ({"outcome": "pass"}, "9000", "passed", "200"),
    *(
        ({"outcome": "fail", "subCode": code}, "4000", "failed", code)
        for code in ("201", "202", "203", "204")
    ),
    *(({"outcome": "fail", "subCode": code}, "4000", "failed", code) for code in ("205", "206")),
    ({"outcome": "cancel"}, "6001", "abandoned", None),
    ({"outcome": "network_error"}, "6002", "abandoned", None),
    ({"outcome": "business_error", "errorCode": "SYSTEM_ERROR"}, "4000", "abandoned", None),
    ({"outcome": "pass", "subCode": "210"}, "9000", "passed", "210"),
]


def _page(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if method == "POST" else raw.decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()


def test_every_flow_completes_across_three_workers(
    gunicorn_backend: Backend, alicertify_sandbox: SandboxServer
) -> None:
    backend = gunicorn_backend
    assert len(FLOWS) >= 10
    done: list[str] = []
    for index, (body, result_status, status, sub_code) in enumerate(FLOWS):
        token = backend.login(f"gunicorn-{index}")
        code, started = backend.request(
            "POST",
            f"{backend.prefix}/init",
            {"serviceParameters": {"certNo": "1******************9", "certName": "张先生"}},
            token=token,
        )
        assert code == 200, started
        certify_id, certify_url = started["certifyId"], started["certifyUrl"]
        assert certify_url.startswith(f"{alicertify_sandbox.url}/sandbox/certify/{certify_id}?token=")

        page_status, page = _page(certify_url)
        assert page_status == 200 and certify_id in page and "11010519491231002X" not in page
        bare_status, _ = _page(certify_url.split("?")[0], "POST", {"outcome": "pass"})
        assert bare_status == 404  # the certify id alone decides nothing

        choice_status, verify_result = _page(certify_url, "POST", body)
        assert choice_status == 200, verify_result
        assert verify_result["resultStatus"] == result_status

        code, answer = backend.request(
            "POST", f"{backend.prefix}/result", {"certifyId": certify_id, **verify_result}, token=token
        )
        assert code == 200, answer
        assert (answer["status"], answer["subCode"]) == (status, sub_code), body
        for _ in range(3):  # whichever worker answers, the state is the stored one
            code, polled = backend.request("GET", f"{backend.prefix}/result/{certify_id}", token=token)
            assert (code, polled["status"]) == (200, status)
        code, me = backend.request("GET", "/me", token=token)
        expected = {"passed": "verified", "failed": "failed", "abandoned": "abandoned"}[status]
        assert (code, me["user"]["verification"]["status"]) == (200, expected)
        done.append(certify_id)

    shown = {s["certifyId"]: s for s in alicertify_sandbox.sessions()}
    assert set(done) <= set(shown)
    assert all(shown[cid]["certNo"] == "1****************X" for cid in done)


def test_the_cli_of_another_process_describes_against_the_shared_server(
    gunicorn_backend: Backend, alicertify_sandbox: SandboxServer, shared_database: str
) -> None:
    token = gunicorn_backend.login("gunicorn-cli")
    code, started = gunicorn_backend.request(
        "POST",
        f"{gunicorn_backend.prefix}/init",
        {"serviceParameters": {"certNo": "1******************9", "certName": "张先生"}},
        token=token,
    )
    assert code == 200, started
    alicertify_sandbox.decide(started["certifyId"], "fail", subCode="205")
    env = {
        **os.environ,
        "ALICERTIFY_SANDBOX": alicertify_sandbox.url,
        "ALICERTIFY_DATABASE_URL": shared_database,
        "ALICERTIFY_STORAGE": "sqlalchemy",
        "SECRET_KEY": "gunicorn-tests-only",
    }
    flask = [sys.executable, "-m", "flask", "--app", str(BACKEND)]
    result = subprocess.run(
        [*flask, "alicertify", "describe", started["certifyId"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(
        line.split(None, 1) if " " in line.strip() else (line, "") for line in result.stdout.splitlines()
    )
    assert lines.get("finished", "").strip() == "yes"
    assert "205" in result.stdout
    assert "张先生" not in result.stdout + result.stderr and "11010519491231002X" not in result.stdout
