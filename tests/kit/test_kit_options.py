"""The kit's options: defaults written once, suite-wide options from conftest.py, removed options."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from pytest_alicertify.options import DEFAULTS
from pytest_alicertify.options import MARKER_DOC
from pytest_alicertify.options import Options

pytest_plugins = ["pytester"]


def test_the_defaults_are_written_once() -> None:
    from pytest_alicertify.cloud import AliCertifyCloud

    parameters = inspect.signature(AliCertifyCloud).parameters
    for option in dataclasses.fields(Options):
        assert f"{option.name}={option.default!r}" in MARKER_DOC
        if option.name in parameters:
            assert parameters[option.name].default == getattr(DEFAULTS, option.name), option.name
    assert set(parameters) == {f.name for f in dataclasses.fields(Options)} - {"strict"}


def test_plugin_names_still_import() -> None:
    from pytest_alicertify import plugin

    assert plugin.Options is Options
    assert plugin.MARKER_DOC == MARKER_DOC
    assert callable(plugin.read_options)


def test_suite_options_from_a_conftest_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def alicertify_options():
            return {"scene_id": "111", "seed": 5, "strict": False}
        """
    )
    pytester.makepyfile(
        test_top="""
        import pytest

        def test_suite_wide(alicertify_cloud):
            assert (alicertify_cloud.scene_id, alicertify_cloud.fake.seed) == ("111", 5)
            alicertify_cloud.pass_next()  # strict=False from the fixture: no teardown error

        @pytest.mark.alicertify(scene_id="222", strict=True)
        def test_a_marker_wins_key_by_key(alicertify_cloud):
            assert (alicertify_cloud.scene_id, alicertify_cloud.fake.seed) == ("222", 5)
            alicertify_cloud.pass_next()  # strict again: this one errors at teardown
        """
    )
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def alicertify_options(alicertify_options):\n"
        '    return {**alicertify_options, "scene_id": "333"}\n'
    )
    (sub / "test_sub.py").write_text(
        "import pytest\n\n"
        "pytestmark = pytest.mark.alicertify(seed=6)\n\n"
        "def test_closest_conftest_then_module(alicertify_cloud):\n"
        '    assert (alicertify_cloud.scene_id, alicertify_cloud.fake.seed) == ("333", 6)\n'
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a_marker_wins_key_by_key*"])


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ('{"bogus": 1}', "*the alicertify_options fixture got unknown option(s) bogus*"),
        ('["strict", False]', "*the alicertify_options fixture must return a dict, got list*"),
    ],
)
def test_a_bad_options_fixture_says_what_is_wrong(
    pytester: pytest.Pytester, returned: str, message: str
) -> None:
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture
        def alicertify_options():
            return {returned}
        """
    )
    pytester.makepyfile("def test_it(alicertify_cloud):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_pytestmark_in_a_conftest_is_refused_not_ignored(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        pytestmark = pytest.mark.alicertify(strict=False)
        """
    )
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*conftest.py: pytest ignores pytestmark in a conftest.py*", "*def alicertify_options():*"]
    )


def test_other_pytestmarks_in_a_conftest_are_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('import pytest\n\npytestmark = [pytest.mark.filterwarnings("ignore")]\n')
    pytester.makepyfile("def test_it():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("where", ["marker", "fixture"])
def test_the_api_option_is_gone_with_a_clear_error(pytester: pytest.Pytester, where: str) -> None:
    if where == "fixture":
        pytester.makeconftest(
            """
            import pytest

            @pytest.fixture
            def alicertify_options():
                return {"api": "saf"}
            """
        )
        pytester.makepyfile("def test_it(alicertify_cloud):\n    pass\n")
    else:
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.alicertify(api="saf")
            def test_it(alicertify_cloud):
                pass
            """
        )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the api= option was removed: the fake answers cloudauth and SAF at once*ALICERTIFY_API='saf'*"]
    )


def test_case_by_id() -> None:
    from pytest_alicertify import cases

    assert cases.case_by_id("9000-confirmed") is cases.CASES[0]
    assert cases.case_by_id("nope") is None
