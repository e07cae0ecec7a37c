"""The kit against both APIs at once, and tests that choose their own rows of the matrix."""

from __future__ import annotations

import pytest
from support.kit import APP_CONFTEST

pytest_plugins = ["pytester"]


def test_an_app_configured_for_saf_is_tested_against_saf(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(APP_CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        from flask_alicertify.sandbox.fake import Fault
        from pytest_alicertify import run_flow
        from pytest_alicertify.cases import case_by_id
        from pytest_alicertify.flow import DEFAULT_CERT_NO, start

        EXPECTED = {
            "cloudauth": ("InitFaceVerify", "DescribeFaceVerify"),
            "saf": ("ExecuteRequest:init", "ExecuteRequest:query"),
        }

        def test_app_config_leaves_the_api_to_the_app(alicertify_cloud):
            assert "ALICERTIFY_API" not in alicertify_cloud.app_config
            assert alicertify_cloud.api is None  # nothing was called yet

        @pytest.mark.parametrize("api", ["cloudauth", "saf"])
        def test_the_api_the_app_names(make_app, alicertify_cloud, api):
            client = make_app(ALICERTIFY_API=api).test_client()
            case = case_by_id("9000-confirmed")
            flow = run_flow(client, case, alicertify_cloud)
            case.check(flow.body)
            alicertify_cloud.assert_confirmed(flow.certify_id)
            init, describe = EXPECTED[api]
            assert alicertify_cloud.api == api
            assert [c.action for c in alicertify_cloud.calls] == [init, describe]
            assert [c.action for c in alicertify_cloud.init_calls] == [init]
            assert [c.action for c in alicertify_cloud.describe_calls] == [describe]
            assert alicertify_cloud.described(flow.certify_id) == 1
            assert alicertify_cloud.last_init.cert_no == DEFAULT_CERT_NO
            assert alicertify_cloud.fake.sessions[flow.certify_id].api == api

        def test_saf_faults_and_failover(make_app, alicertify_cloud, verify_result):
            # No describe budget: the retry comes right after the failure.
            client = make_app(ALICERTIFY_API="saf", ALICERTIFY_DESCRIBE_MIN_INTERVAL=0).test_client()
            alicertify_cloud.pass_next()
            certify_id, _, _ = start(client)
            alicertify_cloud.fail_with(Fault.http(503), action="ExecuteRequest:query")
            down = client.post("/alicertify/result", json=verify_result("9000", certify_id))
            assert down.status_code == 503
            again = client.post("/alicertify/result", json=verify_result("9000", certify_id))
            assert again.get_json()["status"] == "passed"
            assert alicertify_cloud.described(certify_id) == 2

        def test_never_confirmed_names_the_apis_describe(make_app, alicertify_cloud):
            start(make_app(ALICERTIFY_API="saf").test_client())
            certify_id = alicertify_cloud.init_calls[0].certify_id
            with pytest.raises(AssertionError, match="never confirmed with ExecuteRequest:query"):
                alicertify_cloud.assert_confirmed(certify_id)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=5)


def test_a_test_may_parametrize_alicertify_case_itself(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(APP_CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        from pytest_alicertify import CASES, run_flow

        @pytest.mark.parametrize("alicertify_case", CASES[:3], indirect=True)
        def test_first_three(app, alicertify_cloud, alicertify_case):
            flow = run_flow(app.test_client(), alicertify_case, alicertify_cloud)
            alicertify_case.check(flow.body)

        @pytest.mark.parametrize("alicertify_case", ["6001-cancelled", "4000-SYSTEM_ERROR"], indirect=True)
        def test_by_id(app, alicertify_cloud, alicertify_case):
            flow = run_flow(app.test_client(), alicertify_case, alicertify_cloud)
            alicertify_case.check(flow.body)

        @pytest.mark.parametrize(
            ("alicertify_case", "api"), [(CASES[0], "saf")], indirect=["alicertify_case"]
        )
        def test_with_other_arguments(make_app, alicertify_cloud, alicertify_case, api):
            flow = run_flow(make_app(ALICERTIFY_API=api).test_client(), alicertify_case, alicertify_cloud)
            alicertify_case.check(flow.body)

        @pytest.mark.parametrize("alicertify_case", ["no-such-case"], indirect=True)
        def test_unknown_id(alicertify_case):
            pass

        def test_whole_matrix_still(alicertify_case):
            assert alicertify_case in CASES
        """
    )
    from pytest_alicertify.cases import CASES

    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=3 + 2 + 1 + len(CASES), errors=1)
    ids = [case.id for case in CASES[:3]]
    result.stdout.fnmatch_lines([f"*test_first_three?{case_id}? PASSED*" for case_id in ids])
    result.stdout.fnmatch_lines(
        ["*test_by_id?6001-cancelled? PASSED*", "*test_by_id?4000-SYSTEM_ERROR? PASSED*"]
    )
    result.stdout.fnmatch_lines(["*test_with_other_arguments?9000-confirmed-saf? PASSED*"])
    result.stdout.fnmatch_lines(["*alicertify_case: no case 'no-such-case'; known: 9000-confirmed, *"])
    result.stdout.no_fnmatch_line("*duplicate parametrization*")


def test_init_params_repr_uses_the_one_masking_rule() -> None:
    from flask_alicertify.identity import mask_cert_name
    from flask_alicertify.identity import mask_cert_no
    from pytest_alicertify.cloud import InitParams

    params = InitParams("a" * 32, "1000000006", cert_name="欧阳娜娜", cert_no="11010519491231002X")
    text = repr(params)
    assert f"cert_name={mask_cert_name('欧阳娜娜')!r}" in text and "欧***" in text
    assert f"cert_no={mask_cert_no('11010519491231002X')!r}" in text and "1****************X" in text
    assert "11010519491231002X" not in text and "阳娜" not in text
