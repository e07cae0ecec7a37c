"""The kit and an app's personal-data settings: SM2 on the wire, deletion at Alibaba, and the
shared sandbox server fixture."""

from __future__ import annotations

import pytest
from support.kit import APP_CONFTEST

pytest_plugins = ["pytester"]


def test_an_sm2_init_is_decrypted_by_the_fake_to_the_right_name_and_number(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(APP_CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        from pytest_alicertify import run_flow
        from pytest_alicertify.cases import case_by_id
        from pytest_alicertify.flow import DEFAULT_CERT_NAME, DEFAULT_CERT_NO

        def test_app_config_carries_the_fakes_public_key(alicertify_cloud):
            assert alicertify_cloud.app_config["ALICERTIFY_SM2_PUBLIC_KEY"] == alicertify_cloud.sm2_public_key

        @pytest.mark.parametrize("api", ["cloudauth", "saf"])
        def test_sm2(make_app, alicertify_cloud, api):
            client = make_app(ALICERTIFY_API=api, ALICERTIFY_ENCRYPT_TYPE="SM2").test_client()
            flow = run_flow(client, case_by_id("9000-confirmed"), alicertify_cloud)
            assert flow.body["status"] == "passed"
            sent = alicertify_cloud.last_init
            assert sent.encrypt_type == "SM2"
            assert (sent.cert_name, sent.cert_no) == (DEFAULT_CERT_NAME, DEFAULT_CERT_NO)
            wire = str(sent.params)
            assert DEFAULT_CERT_NO not in wire and DEFAULT_CERT_NAME not in wire
            assert DEFAULT_CERT_NO not in repr(sent) and "encrypt_type='SM2'" in repr(sent)

        def test_a_ciphertext_for_another_key_is_refused_like_alibaba_does(make_app, alicertify_cloud):
            other = "02cd77e007bdc86eeaf9a479ba7a2c22bc0a517ccb3a6975c3f94b4ac93347dea6"
            app = make_app(ALICERTIFY_ENCRYPT_TYPE="SM2", ALICERTIFY_SM2_PUBLIC_KEY=other)
            response = app.test_client().post(
                "/alicertify/init",
                json={"serviceParameters": {"certNo": DEFAULT_CERT_NO, "certName": DEFAULT_CERT_NAME}},
            )
            assert response.status_code >= 500
            assert [c.code for c in alicertify_cloud.init_calls] == ["501"]
            assert alicertify_cloud.fake.sessions == {}
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4)


def test_the_kit_asserts_what_was_deleted_after_the_verdict(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(APP_CONFTEST)
    pytester.makepyfile(
        """
        from flask_alicertify.records import Status
        from pytest_alicertify import run_flow
        from pytest_alicertify.cases import case_by_id

        def test_redact_deletes_at_alibaba(make_app, alicertify_cloud):
            app = make_app(ALICERTIFY_DELETE_AT_ALIBABA=True)
            flow = run_flow(app.test_client(), case_by_id("9000-confirmed"), alicertify_cloud)
            assert flow.body["status"] == "passed"
            assert alicertify_cloud.deleted == []
            result = app.test_cli_runner().invoke(args=["alicertify", "redact"])
            assert result.exit_code == 0, result.output
            alicertify_cloud.assert_deleted(flow.certify_id)
            assert alicertify_cloud.deleted == [flow.certify_id]
            assert [c.params["DeleteAfterQuery"] for c in alicertify_cloud.delete_calls] == ["Y"]
            record = app.extensions["alicertify"]["alicertify"].storage.get_by_certify_id(flow.certify_id)
            assert record.status == Status.PASSED and record.deleted_at is not None

        def test_assert_deleted_says_what_is_missing(alicertify_cloud):
            try:
                alicertify_cloud.assert_deleted("0" * 32)
            except AssertionError as e:
                assert "never deleted" in str(e) and "0 delete call(s)" in str(e)
            else:
                raise AssertionError("assert_deleted passed for a session never deleted")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_the_sandbox_url_fixture_serves_a_shared_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import urllib.request

        def test_one(alicertify_sandbox_url, alicertify_sandbox):
            assert alicertify_sandbox_url == alicertify_sandbox.url
            assert alicertify_sandbox_url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(alicertify_sandbox_url + "/_sandbox/health") as response:
                assert json.loads(response.read()) == {"ok": True}
            assert alicertify_sandbox.sessions() == []

        def test_two_shares_it(alicertify_sandbox_url, alicertify_sandbox):
            assert alicertify_sandbox.process.poll() is None
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
