"""The package's shape: imports go one way (core <- Flask layer <- sandbox), modules stay small.

The import graph is read from the source with :mod:`ast`, counting every import statement:
module level, inside functions (lazy imports) and under ``if TYPE_CHECKING:`` (a type-only
back edge is still a design cycle). Only edges between modules of the two packages count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flask_alicertify", "pytest_alicertify")
MAX_LINES = 450

#: Framework-free modules: no Flask, no Werkzeug, no sandbox, not even lazily.
CORE = (
    "flask_alicertify.config_values",
    "flask_alicertify.deletion",
    "flask_alicertify.delivery",
    "flask_alicertify.errors",
    "flask_alicertify.identity",
    "flask_alicertify.jobs",
    "flask_alicertify.policy",
    "flask_alicertify.purge",
    "flask_alicertify.reconcile",
    "flask_alicertify.records",
    "flask_alicertify.request_log",
    "flask_alicertify.results",
    "flask_alicertify.schemas",
    "flask_alicertify.service",
    "flask_alicertify.settings",
    "flask_alicertify.signals",
    "flask_alicertify.starting",
    "flask_alicertify.translations",
)
CORE_PACKAGES = ("flask_alicertify.storage", "flask_alicertify.cloud")
#: The Flask layer: may use Flask, never the sandbox (the extension plugs it in lazily).
FLASK_LAYER = (
    "flask_alicertify.app_database",
    "flask_alicertify.cli",
    "flask_alicertify.openapi",
    "flask_alicertify.responses",
    "flask_alicertify.state",
    "flask_alicertify.views",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _targets(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package modules one import statement of module ``name`` loads by name."""
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    else:
        if node.level:
            base = name.split(".")
            if not _is_package(name):
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        # ``from a import b`` loads the module a.b when there is one, else it reads a's attribute b.
        candidates = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
    targets = set()
    for candidate in candidates:
        # ``import a.b.c`` names a.b.c; ``from a.b import f`` names a.b (f is not a module).
        while candidate and candidate not in MODULES:
            candidate = candidate.rpartition(".")[0]
        if candidate and candidate != name:
            targets.add(candidate)
    return targets


def _imports(name: str) -> set[str]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= _targets(name, node)
    return found


def _external_imports(name: str) -> set[str]:
    """Top-level names of every non-relative import in the module (``flask``, ``werkzeug``...)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_relative_lazy_and_type_checking_imports() -> None:
    """The parser itself: a cycle test that saw nothing would pass for the wrong reason."""
    assert "flask_alicertify.storage.loader" in GRAPH["flask_alicertify.settings"]
    assert "flask_alicertify.signals" in GRAPH["flask_alicertify.service"]  # from . import signals
    assert "flask_alicertify.sandbox.plugin" in GRAPH["flask_alicertify.extension"]  # lazy
    assert "flask_alicertify.extension" in GRAPH["flask_alicertify"]  # under TYPE_CHECKING
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in a ring here, so the layer checks below cover it."""
    placed = set(CORE) | set(FLASK_LAYER) | {"flask_alicertify", "flask_alicertify.extension"}
    unplaced = sorted(
        name
        for name in MODULES
        if name.startswith("flask_alicertify")
        and name not in placed
        and not any(
            name == p or name.startswith(p + ".") for p in (*CORE_PACKAGES, "flask_alicertify.sandbox")
        )
    )
    assert not unplaced, f"add these modules to CORE or FLASK_LAYER: {unplaced}"


def test_no_import_cycle() -> None:
    assert _cycle(GRAPH) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_too_long(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines"


def _core_modules() -> list[str]:
    return sorted(
        name
        for name in MODULES
        if name in CORE or any(name.startswith(p + ".") or name == p for p in CORE_PACKAGES)
    )


@pytest.mark.parametrize("name", _core_modules())
def test_the_core_imports_neither_flask_nor_the_sandbox(name: str) -> None:
    assert not {"flask", "werkzeug"} & _external_imports(name)
    assert not {t for t in GRAPH[name] if t.startswith("flask_alicertify.sandbox")}
    layer = set(FLASK_LAYER) | {"flask_alicertify.extension", "flask_alicertify.views"}
    assert not GRAPH[name] & layer


@pytest.mark.parametrize("name", FLASK_LAYER)
def test_the_flask_layer_never_imports_the_sandbox_or_the_extension(name: str) -> None:
    assert not {t for t in GRAPH[name] if t.startswith("flask_alicertify.sandbox")}
    assert "flask_alicertify.extension" not in GRAPH[name]


def test_errors_is_a_leaf() -> None:
    assert GRAPH["flask_alicertify.errors"] <= {"flask_alicertify.cloud.errors", "flask_alicertify.identity"}
    assert GRAPH["flask_alicertify.identity"] == set()


def test_a_production_app_never_loads_the_sandbox() -> None:
    code = textwrap.dedent(
        """
        import sys

        import flask_alicertify.extension
        import flask_alicertify.views
        from flask import Flask
        from flask_alicertify import AliCertify

        app = Flask("production")
        app.config.update(
            TESTING=True,
            SECRET_KEY="layers-test",
            ALICERTIFY_ALLOW_ANONYMOUS=True,
            ALICERTIFY_SCENE_ID="1000000006",
            ALICERTIFY_ACCESS_KEY_ID="LTAI5tLayersTestKey01",
            ALICERTIFY_ACCESS_KEY_SECRET="layers-test-secret",
        )
        AliCertify(app)
        client = app.test_client()
        assert client.get("/alicertify/openapi.json").status_code == 200
        assert client.get("/alicertify/result/" + "0" * 32).status_code == 404
        assert client.post("/alicertify/init", data="x", content_type="text/plain").status_code == 415
        sandbox = "flask_alicertify.sandbox"
        loaded = [m for m in sys.modules if m == sandbox or m.startswith(sandbox + ".")]
        print(",".join(sorted(loaded)) or "none")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
