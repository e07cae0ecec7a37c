"""Time travel with time-machine: the fake cloud and the extension read the same clock.

A record that outlives its certify id (30 minutes, plus ``ALICERTIFY_EXPIRE_GRACE``) is settled
by ``flask alicertify reconcile``; these tests get there by moving the clock, with no sleeping
and no SQL.
"""

from __future__ import annotations

import importlib.util

import pytest
from support import skip_or_fail

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from flask import Flask
from flask_alicertify import AliCertify
from flask_alicertify.storage import MemoryStorage


@pytest.fixture
def storage():
    return MemoryStorage()


@pytest.fixture
def make_app(alicertify_cloud, storage):
    def make(**config):
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SECRET_KEY="kit-tests",
            ALICERTIFY_ALLOW_ANONYMOUS=True,
            ALICERTIFY_STORAGE=storage,
            **alicertify_cloud.app_config,
            **config,
        )
        AliCertify(app)
        return app
    return make
"""

TESTS = """
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from flask_alicertify.records import Record, Status
from flask_alicertify.signals import certify_expired
from pytest_alicertify.flow import start

LIFETIME = timedelta(minutes=30)  # a certify id's life at Alibaba
GRACE = timedelta(minutes=5)  # ALICERTIFY_EXPIRE_GRACE's default
LIFETIME_AND_GRACE = LIFETIME + GRACE


def reconcile(app, *options):
    result = app.test_cli_runner().invoke(args=["alicertify", "reconcile", *options])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("api", ["cloudauth", "saf"])
def test_pending_past_its_lifetime_expires(make_app, storage, alicertify_cloud, time_machine, api):
    time_machine.move_to(datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc), tick=False)
    app = make_app(ALICERTIFY_API=api)
    client = app.test_client()
    alicertify_cloud.pending_next()  # the user walks away
    certify_id, _, _ = start(client)
    expired = []

    time_machine.shift(LIFETIME - timedelta(seconds=1))
    assert not alicertify_cloud.fake.is_expired(certify_id)
    time_machine.shift(timedelta(seconds=1))
    assert alicertify_cloud.fake.is_expired(certify_id)  # the fake's clock moved too
    # Alibaba's side is dead now, but the extension waits out the grace before it says so.
    assert "outcome: unchanged" in reconcile(app)
    assert storage.get_by_certify_id(certify_id).status == Status.PENDING

    time_machine.shift(GRACE)
    # That run touched the record 5 minutes ago; look at records untouched for one minute.
    with certify_expired.connected_to(lambda sender, record, **kw: expired.append(record.id), app):
        output = reconcile(app, "--older-than", "1m")
    assert "outcome: expired" in output and "status now: expired" in output
    record = storage.get_by_certify_id(certify_id)
    assert (record.status, record.passed) == (Status.EXPIRED, False)
    assert expired == [record.id]
    assert client.get(f"/alicertify/result/{certify_id}").get_json()["status"] == "expired"
    assert alicertify_cloud.described(certify_id) == 2


def test_an_init_that_never_came_back_becomes_init_failed(make_app, storage, alicertify_cloud, time_machine):
    time_machine.move_to(datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc), tick=False)
    app = make_app()
    now = datetime.now(timezone.utc)
    # What a worker killed in the middle of InitFaceVerify leaves behind: the record is written
    # before Alibaba is called, and nothing moved it on.
    died = Record(id=uuid.uuid4().hex, status=Status.INITIATING, created_at=now, updated_at=now, user_id="42")
    storage.create(died)

    time_machine.shift(timedelta(minutes=20))
    assert "outcome: skipped" in reconcile(app)  # it might still be running
    assert storage.get(died.id).status == Status.INITIATING

    time_machine.shift(LIFETIME_AND_GRACE - timedelta(minutes=20))
    output = reconcile(app)
    assert "outcome: interrupted" in output and "status now: init_failed" in output
    record = storage.get(died.id)
    assert (record.status, record.passed, record.error_code) == (Status.INIT_FAILED, False, "interrupted")
    assert alicertify_cloud.calls == []  # nothing to ask Alibaba: there is no certify id
"""


def test_time_travel_reaches_expired_and_init_failed(pytester: pytest.Pytester) -> None:
    if importlib.util.find_spec("time_machine") is None:
        skip_or_fail("time-machine is not installed (it is in the 'tests' dependency group)")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_travel=TESTS)
    result = pytester.runpytest("-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=3)
