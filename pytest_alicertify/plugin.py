"""The pytest11 entry point: fixtures ``alicertify_cloud``, ``verify_result``, ``alicertify_case``
and the ``alicertify`` marker.

Only :mod:`pytest` is imported at module level. The fake cloud, httpx and pytest-httpx are
imported inside the fixtures, so a suite that never uses them pays nothing and a suite without
pytest-httpx still loads (and is told which extra to install only when it asks for the cloud).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import pytest

if TYPE_CHECKING:
    from .cases import Case
    from .cloud import AliCertifyCloud

MARKER_DOC = (
    "alicertify(*, api='cloudauth', scene_id='1000000006', strict=True, "
    "access_key_id='LTAI5tKitAccessKeyId00001', access_key_secret='alicertify-kit-secret', seed=None): "
    "configure the alicertify_cloud fixture (test, class, module or suite level)."
)


@dataclass(frozen=True)
class Options:
    """Marker options, merged from every level: the closest marker wins, key by key."""

    api: str = "cloudauth"
    scene_id: str = "1000000006"
    strict: bool = True
    access_key_id: str = "LTAI5tKitAccessKeyId00001"
    access_key_secret: str = "alicertify-kit-secret"
    seed: int | None = None


def read_options(node: pytest.Item | pytest.Collector) -> Options:
    merged: dict[str, Any] = {}
    for marker in node.iter_markers("alicertify"):  # closest first
        if marker.args:
            pytest.fail("@pytest.mark.alicertify takes keyword arguments only", pytrace=False)
        merged = {**marker.kwargs, **merged}
    known = set(Options.__dataclass_fields__)
    unknown = sorted(set(merged) - known)
    if unknown:
        pytest.fail(
            f"@pytest.mark.alicertify got unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}",
            pytrace=False,
        )
    options = Options(**merged)
    if options.api not in ("cloudauth", "saf"):
        pytest.fail(f"@pytest.mark.alicertify(api={options.api!r}): use 'cloudauth' or 'saf'", pytrace=False)
    return options


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "alicertify_case" in metafunc.fixturenames:
        from .cases import CASES

        metafunc.parametrize("alicertify_case", CASES, ids=[c.id for c in CASES], indirect=True)


@pytest.fixture
def alicertify_cloud(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AliCertifyCloud]:
    """A stateful fake of Alibaba Cloud, served to every httpx request to ``*.aliyuncs.com``.

    It checks each request's V3 signature against its own key pair (also exported as
    ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` for the test, and as :attr:`app_config`), keeps
    sessions, and answers as scripted. Strict by default: outcomes or faults scripted but never
    used, and requests the fake had to reject, fail the test at teardown.
    """
    options = read_options(request.node)
    if not _have_pytest_httpx():
        pytest.fail(
            "the alicertify_cloud fixture needs pytest-httpx: pip install 'flask-alicertify[pytest]'",
            pytrace=False,
        )
    from .cloud import AliCertifyCloud

    cloud = AliCertifyCloud(
        api=options.api,
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
    """One row of :data:`pytest_alicertify.cases.CASES`; a test using it runs once per row."""
    case: Case = request.param
    return case
