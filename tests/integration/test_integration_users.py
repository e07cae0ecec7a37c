"""Who is calling: Flask-Login users, anonymous callers, integer user ids and the identity loader.

The default instance registers no user loader (the extension finds Flask-Login on the app); the
``kyc`` instance returns the integer primary key. A third instance, added in some tests, uses the
common ``user_loader=lambda: current_user``.
"""

from __future__ import annotations

import logging

import pytest
import refapp
from flask import Flask
from flask_login import current_user
from support.integration import OTHER_CERT_NAME
from support.integration import OTHER_CERT_NO
from support.integration import error_code
from support.integration import guide_body
from support.integration import signed_in

from flask_alicertify import AliCertify
from pytest_alicertify import CASES
from pytest_alicertify import run_flow
from pytest_alicertify.options import DEFAULTS

PASSES = CASES[0]
assert PASSES.id == "9000-confirmed"


def with_proxy_loader(app: Flask, **config: object) -> AliCertify:
    """Add an instance whose user loader returns Flask-Login's ``current_user`` proxy itself."""
    app.config.update(
        HABIT_SCENE_ID=DEFAULTS.scene_id, HABIT_URL_PREFIX="/habit", HABIT_STORAGE="memory", **config
    )
    return AliCertify(app, name="habit", config_prefix="HABIT_", user_loader=lambda: current_user)


@pytest.fixture
def habit_app(make_app):
    """A reference app of the test's own, with the third instance added."""
    app = make_app()
    with_proxy_loader(app)
    return app


@pytest.mark.parametrize("prefix", ["/alicertify", "/kyc", "/habit"])
def test_anonymous_init_is_refused_before_alibaba_is_called(habit_app, prefix, alicertify_cloud):
    app = habit_app
    response = app.test_client().post(f"{prefix}/init", json=guide_body())

    assert response.status_code == 401 and error_code(response) == "unauthenticated"
    assert alicertify_cloud.init_calls == []


def test_the_extension_says_it_uses_flask_login(make_app, caplog):
    caplog.set_level(logging.DEBUG, logger="flask_alicertify")
    make_app()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("flask_alicertify")]
    assert any("Flask-Login" in m for m in messages), messages


@pytest.mark.parametrize("prefix", ["/alicertify", "/habit"])
def test_the_daily_attempt_limit_counts_each_flask_login_user(make_app, prefix, alicertify_cloud):
    app = make_app(FLASK_ALICERTIFY_MAX_ATTEMPTS_PER_DAY="2")
    with_proxy_loader(app, HABIT_MAX_ATTEMPTS_PER_DAY=2)
    alice = signed_in(app, 42)

    statuses = []
    for _ in range(4):
        response = alice.post(f"{prefix}/init", json=guide_body())
        statuses.append((response.status_code, error_code(response)))

    assert statuses == [(200, None), (200, None), (429, "attempts_exhausted"), (429, "attempts_exhausted")]
    assert len(alicertify_cloud.init_calls) == 2
    # The limit is Alice's, not everyone's: another user still starts one.
    assert signed_in(app, 7).post(f"{prefix}/init", json=guide_body()).status_code == 200


@pytest.mark.parametrize("prefix", ["/alicertify", "/kyc", "/habit"])
def test_the_owner_reads_their_result_and_nobody_else_does(habit_app, prefix, alicertify_cloud):
    app = habit_app
    owner = signed_in(app, 42)
    flow = run_flow(owner, PASSES, alicertify_cloud, prefix=prefix)
    assert flow.body["status"] == "passed"

    mine = owner.get(f"{prefix}/result/{flow.certify_id}")
    assert mine.status_code == 200 and mine.get_json()["status"] == "passed"
    theirs = signed_in(app, 7).get(f"{prefix}/result/{flow.certify_id}")
    assert theirs.status_code == 403 and error_code(theirs) == "forbidden"
    nobody = app.test_client().get(f"{prefix}/result/{flow.certify_id}")
    assert nobody.status_code == 401 and error_code(nobody) == "unauthenticated"


def test_the_identity_loader_gets_the_integer_user_id(app, monkeypatch, alicertify_cloud):
    seen: list[object] = []

    def spy(user_id):
        seen.append(user_id)
        return refapp.load_identity(user_id)

    monkeypatch.setattr(refapp.kyc.hooks, "identity_loader", spy)
    response = signed_in(app, 42).post("/kyc/init", json=guide_body())

    assert response.status_code == 200, response.get_json()
    assert seen == [42] and type(seen[0]) is int
    with app.app_context():
        record = refapp.kyc.verification(42)
    assert record is not None
    assert (record.user_id, record.user_id_type, record.typed_user_id) == ("42", "int", 42)


def test_someone_elses_identity_is_refused_not_verified(app, alicertify_cloud):
    # User 42 holds 张三's identity; sending 李四's must not start a check of 李四.
    response = signed_in(app, 42).post("/kyc/init", json=guide_body(OTHER_CERT_NO, OTHER_CERT_NAME))

    assert response.status_code == 400 and error_code(response) == "identity_mismatch"
    assert alicertify_cloud.init_calls == []


def test_a_loader_returning_anything_else_is_a_type_error_naming_it(make_app, caplog, alicertify_cloud):
    def user_as_dict():
        return {"id": 42}

    app = make_app()
    app.config.update(BAD_SCENE_ID=DEFAULTS.scene_id, BAD_URL_PREFIX="/bad", BAD_STORAGE="memory")
    AliCertify(app, name="bad", config_prefix="BAD_", user_loader=user_as_dict)
    app.testing = True
    try:
        response = signed_in(app, 42).post("/bad/init", json=guide_body())
    except TypeError as e:
        problem = str(e)
    else:  # answered (a JSON 500) and logged instead of propagated
        assert response.status_code == 500, response.get_json()
        logged = [
            r.exc_info[1] for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], TypeError)
        ]
        assert logged, "the TypeError was neither raised nor logged"
        problem = str(logged[0])
    assert "user_as_dict" in problem
    assert alicertify_cloud.init_calls == []
