"""The pytest kit, exercised the way a user's suite meets it: through pytester."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

APP_FIXTURE = textwrap.dedent(
    """
    import pytest
    from flask import Flask
    from flask_alicertify import AliCertify

    @pytest.fixture
    def app(alicertify_cloud):
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SECRET_KEY="kit-tests",
            ALICERTIFY_ALLOW_ANONYMOUS=True,
            # The tests here post twice in a row; no describe budget between the posts.
            ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
            **alicertify_cloud.app_config,
        )
        AliCertify(app)
        return app
    """
)


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_alicertify.plugin, pytest_alicertify; "
        "print(sorted(m for m in ('flask', 'httpx', 'pytest_httpx', 'flask_alicertify') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_whole_matrix_against_an_app(pytester: pytest.Pytester) -> None:
    from pytest_alicertify.cases import CASES

    pytester.makeconftest(APP_FIXTURE)
    pytester.makepyfile(
        """
        from pytest_alicertify import run_flow

        def test_every_outcome(app, alicertify_cloud, alicertify_case):
            flow = run_flow(app.test_client(), alicertify_case, alicertify_cloud)
            assert flow.result_response.status_code == 200
            alicertify_case.check(flow.body)
            alicertify_cloud.assert_confirmed(flow.certify_id)
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=len(CASES))
    result.stdout.fnmatch_lines(["*test_every_outcome?9000-confirmed? PASSED*", "*unknown-status? PASSED*"])


def test_verify_result_factory_shapes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_shapes(verify_result):
            assert verify_result("9000", "c1") == {
                "certifyId": "c1", "resultStatus": "9000", "result": {"certifyId": "c1"}}
            assert verify_result("6001", "c1", result=None)["result"] is None
            assert verify_result("4000", "c1", error_code="SYSTEM_ERROR")["result"] == {
                "certifyId": "c1", "errorCode": "SYSTEM_ERROR"}
            assert verify_result("9000", "c1", result_certify_id="other")["result"]["certifyId"] == "other"
            assert verify_result(7777, "c1")["resultStatus"] == "7777"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_scripting_and_inspection(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(APP_FIXTURE)
    pytester.makepyfile(
        """
        from flask_alicertify.sandbox.fake import Fault
        from pytest_alicertify.flow import start, DEFAULT_CERT_NO

        def test_pending_then_pass(app, alicertify_cloud, verify_result):
            client = app.test_client()
            alicertify_cloud.pass_next(after=1)
            certify_id, url, _ = start(client)
            first = client.post("/alicertify/result", json=verify_result("9000", certify_id)).get_json()
            assert first["status"] == "pending"
            second = client.post("/alicertify/result", json=verify_result("9000", certify_id)).get_json()
            assert second["status"] == "passed" and second["passed"] is True
            assert alicertify_cloud.described(certify_id) == 2
            init = alicertify_cloud.last_init
            assert init.cert_no == DEFAULT_CERT_NO
            assert DEFAULT_CERT_NO not in repr(init)

        def test_upstream_down_keeps_the_record(app, alicertify_cloud, verify_result):
            client = app.test_client()
            alicertify_cloud.pass_next()
            certify_id, url, _ = start(client)
            alicertify_cloud.fail_with(Fault.http(503), times=2)
            answer = client.post("/alicertify/result", json=verify_result("9000", certify_id))
            assert answer.status_code == 503
            again = client.post("/alicertify/result", json=verify_result("9000", certify_id))
            assert again.get_json()["status"] == "passed"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_leftovers_fail_with_the_documented_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_forgets_its_script(alicertify_cloud):
            alicertify_cloud.pass_next()

        @pytest.mark.alicertify(strict=False)
        def test_relaxed(alicertify_cloud):
            alicertify_cloud.pass_next()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*alicertify_cloud: the test left these behind:*", "*@pytest.mark.alicertify(strict=False)*"]
    )


def test_rejected_requests_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_wrong_secret(alicertify_cloud):
            with httpx.Client() as client:
                r = client.post(
                    "https://cloudauth.cn-shanghai.aliyuncs.com/?CertifyId=x&SceneId=1",
                    headers={"x-acs-action": "DescribeFaceVerify", "authorization": "ACS3-HMAC-SHA256 bogus"},
                )
            assert r.status_code >= 400
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*was rejected*"])


def test_marker_levels(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        # A marker on the session node is the farthest, so module, class and test markers
        # still override it key by key (the alicertify_options fixture is the documented form).
        def pytest_collection_modifyitems(session, items):
            session.add_marker(pytest.mark.alicertify(scene_id="111"))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.alicertify(seed=7)

        def test_module_level(alicertify_cloud):
            assert alicertify_cloud.fake.seed == 7
            assert alicertify_cloud.scene_id == "111"

        @pytest.mark.alicertify(seed=8, scene_id="222")
        def test_function_wins(alicertify_cloud):
            assert alicertify_cloud.fake.seed == 8
            assert alicertify_cloud.app_config["ALICERTIFY_SCENE_ID"] == "222"

        class TestClassLevel:
            pytestmark = pytest.mark.alicertify(scene_id="333")

            def test_class_between_module_and_test(self, alicertify_cloud):
                assert (alicertify_cloud.scene_id, alicertify_cloud.fake.seed) == ("333", 7)

        @pytest.mark.alicertify(bogus=1)
        def test_unknown_option(alicertify_cloud):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) bogus*"])


def test_plugin_loads_without_pytest_httpx(pytester: pytest.Pytester) -> None:
    # A module named pytest_httpx that fails to import stands in for the missing package.
    pytester.makepyfile(pytest_httpx="raise ImportError('simulated: pytest-httpx is not installed')")
    pytester.makepyfile(
        test_suite="""
        def test_unrelated():
            assert 1 + 1 == 2

        def test_needs_the_cloud(alicertify_cloud):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:pytest_httpx", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*needs pytest-httpx: pip install 'flask-alicertify?pytest?'*"])
    result.stdout.no_fnmatch_line("*During handling*")
