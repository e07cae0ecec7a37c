"""README.md's quickstart works as written, from the default install.

The README follows the docs pages' block markers (see :mod:`support.docs_blocks`): every Python
block is marked; a block whose first line is ``# <name>.py`` is that file of the reader's project.
Two checks run the blocks in a subprocess whose imports are limited to what ``pip install`` puts
in a fresh environment (every other installed distribution is made unimportable):

* with the core dependencies only, the app module serves a whole verification (the network
  replaced by the sandbox's fake Alibaba Cloud at the httpx transport) and keeps its records in
  the default storage;
* with the ``pytest`` extra added, the README's ``conftest.py`` and test pass, unchanged.

A real fresh virtual environment would say the same more slowly (building the wheel and
installing it takes about 20 s here, and needs a package index); the import limit checks the
same thing: that nothing outside the declared dependencies is needed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from support.docs_blocks import blocks

from pytest_alicertify.flow import DEFAULT_CERT_NAME
from pytest_alicertify.flow import DEFAULT_CERT_NO
from pytest_alicertify.options import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCKS = blocks(README)
PROJECT = "flask-alicertify"
OUR_PACKAGES = ("flask_alicertify", "pytest_alicertify")

#: Started first in the subprocess (``sitecustomize``): every top-level module of an installed
#: distribution outside the allowed set becomes unimportable, as if it were not installed.
SITECUSTOMIZE = """
import json, os, sys
for name in json.loads(os.environ["ALICERTIFY_TEST_BLOCKED"]):
    if name not in sys.modules:  # what site's .pth files loaded already stays
        sys.modules[name] = None  # "import name" raises ModuleNotFoundError; find_spec() says None
"""

#: The app module of the quickstart serving one verification, with only the core dependencies.
SERVE_ONE = f"""
import json, sys
import httpx
from flask_alicertify.sandbox.fake import FakeCloud

fake = FakeCloud({DEFAULTS.access_key_id!r}, {DEFAULTS.access_key_secret!r})
to_fake = fake.transport()
httpx.HTTPTransport.handle_request = lambda self, request: to_fake.handle_request(request)

from app import create_app

app = create_app()
client = app.test_client()
with client.session_transaction() as session:
    session["user_id"] = 42
body = {{"serviceParameters": {{"certNo": {DEFAULT_CERT_NO!r}, "certName": {DEFAULT_CERT_NAME!r}}}}}
init = client.post("/alicertify/init", json=body)
assert init.status_code == 200, init.get_json()
certify_id = init.get_json()["certifyId"]
fake.complete(certify_id, passed=True)
claim = {{"certifyId": certify_id, "resultStatus": "9000", "result": None}}
answer = client.post("/alicertify/result", json=claim)
print(json.dumps({{"answer": answer.get_json(), "status": client.get("/alicertify/status").get_json()}}))
"""


def named_files() -> dict[str, str]:
    """The README's blocks that are files of the reader's project (``# app.py``, ``# conftest.py``)."""
    files = {}
    for block in BLOCKS:
        first = block.code.lstrip().splitlines()[0] if block.code.strip() else ""
        match = re.match(r"^#\s*(\w+\.py)\s*$", first)
        if block.is_python and match:
            files[match.group(1)] = block.code
    return files


def _requirements(distribution: str, extras: frozenset[str]) -> list[str]:
    found = []
    for text in metadata.requires(distribution) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
            found.append(requirement.name)
    return found


@lru_cache
def closure(extras: frozenset[str]) -> frozenset[str]:
    """The normalised names of the distributions ``pip install flask-alicertify[extras]`` installs."""
    seen: set[str] = set()
    todo = [(PROJECT, extras)]
    while todo:
        name, wanted = todo.pop()
        key = _normalise(name)
        if key in seen:
            continue
        seen.add(key)
        todo.extend((dependency, frozenset()) for dependency in _requirements(name, wanted))
    return frozenset(seen)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def blocked_modules(allowed: frozenset[str]) -> list[str]:
    """Top-level modules provided only by installed distributions outside ``allowed``."""
    blocked = []
    for module, distributions in metadata.packages_distributions().items():
        if module in OUR_PACKAGES or module in sys.stdlib_module_names:
            continue
        if not any(_normalise(d) in allowed for d in distributions):
            blocked.append(module)
    return sorted(blocked)


def run_limited(
    project: Path, allowed: frozenset[str], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    site = project / "_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "ALICERTIFY_", "PYTEST_"))}
    environ.update(
        PYTHONPATH=os.pathsep.join([str(site), str(project)]),
        ALICERTIFY_TEST_BLOCKED=json.dumps(blocked_modules(allowed)),
        ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULTS.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULTS.access_key_secret,
        **env,
    )
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=environ, capture_output=True, text=True, timeout=120
    )


def test_every_python_block_is_marked():
    unmarked = [b.id for b in BLOCKS if b.is_python and b.marker is None]
    assert not unmarked, f"README.md blocks that no test runs: {unmarked}"
    assert {"app.py", "conftest.py", "test_certify.py"} <= set(named_files())


def test_the_import_limit_works(tmp_path):
    # A check that cannot fail proves nothing: the limit must hide an installed package.
    done = run_limited(tmp_path, closure(frozenset()), "-c", "import redis")
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, done.stderr
    assert "sqlalchemy" in closure(frozenset()) and "pytest-httpx" not in closure(frozenset())
    assert "pytest-httpx" in closure(frozenset({"pytest"}))


@pytest.fixture
def project(tmp_path) -> Path:
    for name, code in named_files().items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    return tmp_path


def test_the_quickstart_runs_on_the_core_dependencies_and_its_test_passes(project):
    (project / "serve_one.py").write_text(SERVE_ONE, encoding="utf-8")
    with ThreadPoolExecutor(2) as pool:
        served = pool.submit(run_limited, project, closure(frozenset()), "serve_one.py")
        tested = pool.submit(
            run_limited,
            project,
            closure(frozenset({"pytest"})),
            *("-m", "pytest", "-q", "-p", "pytest_alicertify.plugin", "-p", "pytest_httpx"),
            *("-p", "no:cacheprovider", "test_certify.py"),
            PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        )
        served_done, tested_done = served.result(), tested.result()

    assert served_done.returncode == 0, served_done.stderr
    out = json.loads(served_done.stdout.strip().splitlines()[-1])
    assert (out["answer"]["status"], out["status"]["verified"]) == ("passed", True)
    # No Flask-SQLAlchemy here: the records are in the default SQLite file of the instance folder.
    assert (project / "instance" / "alicertify.sqlite3").is_file()

    assert tested_done.returncode == 0, tested_done.stdout + tested_done.stderr
    passed = re.search(r"(\d+) passed", tested_done.stdout)
    assert passed and int(passed.group(1)) >= 20, tested_done.stdout
    assert not re.search(r"\d+ (failed|errors?|skipped)", tested_done.stdout), tested_done.stdout


def test_run_blocks_execute(project, monkeypatch):
    """The ``run`` blocks, in one namespace like a reader following the page (the app module)."""
    monkeypatch.chdir(project)
    namespace: dict[str, object] = {"__name__": "readme"}
    run = [b for b in BLOCKS if b.marker == "run"]
    assert run
    for block in run:
        exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)
    assert callable(namespace["create_app"])
