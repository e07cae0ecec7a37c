"""The pytest11 entry point: fixtures ``alicertify_cloud``, ``alicertify_options``,
``verify_result``, ``alicertify_case``, ``alicertify_sandbox`` / ``alicertify_sandbox_url`` and
the ``alicertify`` marker.

Only :mod:`pytest` is imported at module level. The fake cloud, httpx and pytest-httpx are
imported inside the fixtures, so a suite that never uses them pays nothing and a suite without
pytest-httpx still loads (and is told which extra to install only when it asks for the cloud).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import pytest

from .options import MARKER_DOC
from .options import Options
from .options import merge_options

if TYPE_CHECKING:
    from .cases import Case
    from .cloud import AliCertifyCloud
    from .sandbox_server import SandboxServer

_CASE_MODULE = f"{__package__}.cases"


def read_options(node: pytest.Item | pytest.Collector, suite: dict[str, Any] | None = None) -> Options:
    """The options for ``node``: ``suite`` (the ``alicertify_options`` dict), then its markers."""
    return merge_options(suite, node.iter_markers("alicertify"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    """Refuse ``pytestmark = pytest.mark.alicertify(...)`` in a conftest.py.

    pytest applies ``pytestmark`` of test modules only; in a conftest it is silently ignored,
    so a suite would run with options it never asked for.
    """
    name = getattr(plugin, "__name__", "")
    if name != "conftest" and not name.endswith(".conftest"):
        return
    marks = getattr(plugin, "pytestmark", None)
    marks = marks if isinstance(marks, (list, tuple)) else [marks]
    if any(getattr(mark, "name", None) == "alicertify" for mark in marks):
        where = getattr(plugin, "__file__", None) or name
        raise pytest.UsageError(
            f"{where}: pytest ignores pytestmark in a conftest.py, so this"
            " @pytest.mark.alicertify(...) would never apply. For options across a directory,"
            " override the alicertify_options fixture there instead:\n\n"
            "    @pytest.fixture\n"
            "    def alicertify_options():\n"
            '        return {"strict": False}\n'
        )


def _parametrized_by_the_test(metafunc: pytest.Metafunc, argname: str) -> bool:
    """True when the test's own ``@pytest.mark.parametrize`` names ``argname``."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames: Any = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if isinstance(argnames, Sequence) and argname in argnames:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "alicertify_case" in metafunc.fixturenames and not _parametrized_by_the_test(
        metafunc, "alicertify_case"
    ):
        from .cases import CASES

        metafunc.parametrize("alicertify_case", CASES, ids=[c.id for c in CASES], indirect=True)


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """A :class:`~pytest_alicertify.cases.Case` in a test's own parametrize gets its id."""
    if type(val).__module__ == _CASE_MODULE and type(val).__name__ == "Case":
        case_id = getattr(val, "id", None)
        return case_id if isinstance(case_id, str) else None
    return None


@pytest.fixture
def alicertify_options() -> dict[str, Any]:
    """Options for every ``alicertify_cloud`` in scope; ``{}`` (the defaults) unless overridden.

    Override it in a ``conftest.py`` for a whole suite or directory (pytest ignores
    ``pytestmark`` there). ``@pytest.mark.alicertify(...)`` on a module, class or test still
    wins, key by key.
    """
    return {}


@pytest.fixture
def alicertify_cloud(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, alicertify_options: dict[str, Any]
) -> Iterator[AliCertifyCloud]:
    """A stateful fake of Alibaba Cloud, served to every httpx request to ``*.aliyuncs.com``.

    It answers cloudauth and SAF at once, so the app under test calls whichever API its own
    ``ALICERTIFY_API`` names. It checks each request's V3 signature against its own key pair
    (also exported as ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` for the test, and as
    :attr:`~pytest_alicertify.cloud.AliCertifyCloud.app_config`), keeps sessions, and answers as
    scripted. Strict by default: outcomes or faults scripted but never used, and requests the
    fake had to reject, fail the test at teardown.
    """
    options = read_options(request.node, alicertify_options)
    if not _have_pytest_httpx():
        pytest.fail(
            "the alicertify_cloud fixture needs pytest-httpx: pip install 'flask-alicertify[pytest]'",
            pytrace=False,
        )
    from .cloud import AliCertifyCloud

    cloud = AliCertifyCloud(
        scene_id=options.scene_id,
        access_key_id=options.access_key_id,
        access_key_secret=options.access_key_secret,
        seed=options.seed,
    )
    cloud.install(request.getfixturevalue("httpx_mock"))
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", options.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", options.access_key_secret)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    yield cloud
    if options.strict:
        problems = cloud.leftovers()
        if problems:
            pytest.fail(
                "alicertify_cloud: the test left these behind:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + "\nIf that is intended, relax the check with @pytest.mark.alicertify(strict=False).",
                pytrace=False,
            )


def _have_pytest_httpx() -> bool:
    try:
        import pytest_httpx  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def verify_result() -> Callable[..., dict[str, Any]]:
    """Factory for the body the mini-program posts to ``/result``.

    ``verify_result("9000", certify_id)`` → ``{"certifyId", "resultStatus", "result"}``; pass
    ``result=None`` for the documented ``result: null``, ``result_certify_id=`` for a result whose
    certifyId differs, ``error_code=`` for 4000's errorCode, and any string as the status.
    """
    from .payloads import make_verify_result

    return make_verify_result


@pytest.fixture
def alicertify_case(request: pytest.FixtureRequest) -> Case:
    """One row of :data:`pytest_alicertify.cases.CASES`; a test using it runs once per row.

    A test may choose its own rows: ``@pytest.mark.parametrize("alicertify_case", CASES[:3],
    indirect=True)``, or by id, ``@pytest.mark.parametrize("alicertify_case", ["6001-cancelled"],
    indirect=True)``.
    """
    from .cases import case_by_id

    param: Any = request.param
    if isinstance(param, str):
        found = case_by_id(param)
        if found is None:
            from .cases import CASES

            pytest.fail(
                f"alicertify_case: no case {param!r}; known: {', '.join(c.id for c in CASES)}",
                pytrace=False,
            )
        return found
    case: Case = param
    return case


@pytest.fixture(scope="session")
def alicertify_sandbox() -> Iterator[SandboxServer]:
    """The shared sandbox server (``python -m flask_alicertify.sandbox``) on a free loopback port.

    Started once per test session in a subprocess and stopped (SIGTERM) at its end. Its
    ``url`` goes into the app's ``ALICERTIFY_SANDBOX``; ``sessions()``, ``decide(certify_id,
    "fail", subCode="205")`` and ``reset()`` drive its control API.
    """
    from .sandbox_server import SandboxServer

    server = SandboxServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def alicertify_sandbox_url(alicertify_sandbox: SandboxServer) -> str:
    """``http://127.0.0.1:PORT`` of the shared sandbox server: set ``ALICERTIFY_SANDBOX`` to it.

    For tests of a live server (gunicorn workers, a Node client, a browser): every process of the
    app under test then talks to the same fake Alibaba Cloud.
    """
    return alicertify_sandbox.url
