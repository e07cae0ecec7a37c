"""The example mini-program page, run by Node against the demo backend over real HTTP.

tests/clients/node/harness.js loads examples/miniprogram/pages/certify/logic.js with a simulated
``my`` (my.request is real HTTP; open-certify opens the certifyUrl and chooses the outcome on
that page) and runs every client outcome end to end; this test starts the backend and checks
that every scenario passed. Twice: against one process with the in-process fake, and against
gunicorn's 3 workers on the shared sandbox server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import skip_or_fail
from support.clients import Backend

HARNESS = Path(__file__).parent / "node" / "harness.js"

#: Scenarios the harness must run: every resultStatus, each errorCode, null results, a failed
#: SubCode, a network failure, an HTTP error and a retry.
REQUIRED = {
    "pass_9000",
    "pass_9000_result_null",
    "fail_subcode_201",
    "cancel_6001",
    "network_6002",
    "business_4000_UNKNOWN_ERROR",
    "business_4000_SYSTEM_ERROR",
    "business_4000_USER_IS_NOT_CERTIFY",
    "business_4000_result_null",
    "unknown_result_status",
    "forged_9000_unfinished",
    "network_failure_unreachable_port",
    "http_error_identity_mismatch",
    "retry_after_retryable",
}


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        skip_or_fail("node is not installed (Debian: apt-get install nodejs)")
    assert node is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"v(\d+)", version.strip())
    if match is None or int(match.group(1)) < 18:
        skip_or_fail(f"node {version.strip()} is too old; the harness needs Node 18+")
    return node


def test_harness_lists_every_required_scenario() -> None:
    node = _node()
    out = subprocess.run(
        [node, str(HARNESS), "--list"], capture_output=True, text=True, timeout=60, check=True
    )
    assert REQUIRED <= set(out.stdout.split())


@pytest.mark.parametrize("setup", ["demo_backend", "gunicorn_backend"])
def test_every_scenario_passes(setup: str, request: pytest.FixtureRequest) -> None:
    node = _node()
    backend: Backend = request.getfixturevalue(setup)
    proc = subprocess.run(
        [node, str(HARNESS), backend.origin, "--prefix", backend.prefix],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    results: list[dict[str, Any]] = [json.loads(line) for line in lines if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    report = "\n".join(
        json.dumps({k: r[k] for k in ("scenario", "failures", "shown")}, ensure_ascii=False) for r in failed
    )
    assert not failed, f"{len(failed)} scenario(s) failed:\n{report}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, proc.stderr
    assert lines and lines[-1] == f"{len(results)} passed, 0 failed"
    names = {r["scenario"] for r in results}
    assert REQUIRED <= names, f"missing scenarios: {sorted(REQUIRED - names)}"
    by_name = {r["scenario"]: r for r in results}
    # Spot checks on what the page showed, beyond the harness's own assertions.
    assert by_name["pass_9000"]["serverStatus"] == "passed"
    assert by_name["forged_9000_unfinished"]["serverStatus"] != "passed"
    assert by_name["cancel_6001"]["shown"]["toasts"] == [{"content": "认证已取消", "type": "none"}]
    assert by_name["network_failure_unreachable_port"]["shown"]["alerts"][-1]["title"] == "网络错误"
    for result in results:
        for verify_result in result["verifyResults"]:
            assert verify_result is None or set(verify_result) == {"resultStatus", "result"}
