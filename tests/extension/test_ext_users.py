"""Who is calling: user ids of either type, Flask-Login's users, and loaders that return nonsense.

``AliCertify(app, user_loader=lambda: current_user)`` once stored ``str(current_user)`` (the
anonymous user's repr) as the user id: anonymous callers got 200 on the billed Init, the attempt
limit never held and the owner was refused their own result. These tests use real Flask-Login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager
from flask_login import UserMixin
from flask_login import current_user
from flask_login import login_user
from support.ext import CERT_NAME
from support.ext import CERT_NAME_2
from support.ext import CERT_NO
from support.ext import CERT_NO_2
from support.ext import Harness
from support.ext import harness

from flask_alicertify import Record
from flask_alicertify import certify_passed
from flask_alicertify.sandbox.fake import Outcome
from flask_alicertify.state import resolve_user


class User(UserMixin):
    def __init__(self, user_id: int) -> None:
        self.id = user_id


USERS = {1: User(1), 2: User(2)}


def with_flask_login(app: Flask) -> None:
    """A LoginManager and a ``/login/<id>`` route, as an app with Flask-Login has them."""
    manager = LoginManager(app)

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        return USERS.get(int(user_id))

    @app.post("/login/<int:user_id>")
    def login(user_id: int) -> str:
        login_user(USERS[user_id])
        return "ok"


@contextmanager
def login_app(user_loader: Callable[[], Any] | None, **config: Any) -> Iterator[Harness]:
    with harness(user_loader=user_loader, before_init=with_flask_login, **config) as h:
        yield h


def signed_in(h: Harness, user_id: int) -> Any:
    client = h.app.test_client()
    assert client.post(f"/login/{user_id}").status_code == 200
    return client


BODY = {"serviceParameters": {"certNo": CERT_NO, "certName": CERT_NAME}}
LOADERS = [
    pytest.param(lambda: current_user, id="lambda-current_user"),
    pytest.param(None, id="no-loader-flask-login-on-the-app"),
]


@pytest.mark.parametrize("loader", LOADERS)
def test_anonymous_flask_login_user_is_401_on_the_billed_init(loader: Any) -> None:
    with login_app(loader) as h:
        for _ in range(3):
            response = h.app.test_client().post("/alicertify/init", json=BODY)
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "unauthenticated"
        assert h.cloud.calls_for("InitFaceVerify") == []


@pytest.mark.parametrize("loader", LOADERS)
def test_the_attempt_limit_holds_for_flask_login_users(loader: Any) -> None:
    with login_app(loader, ALICERTIFY_MAX_ATTEMPTS_PER_DAY=2) as h:
        client = signed_in(h, 1)
        codes = [client.post("/alicertify/init", json=BODY).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        assert len(h.cloud.calls_for("InitFaceVerify")) == 2
        # Another user has their own attempts.
        assert signed_in(h, 2).post("/alicertify/init", json=BODY).status_code == 200


@pytest.mark.parametrize("loader", LOADERS)
def test_the_owner_gets_their_result_and_nobody_else(loader: Any) -> None:
    with login_app(loader) as h:
        owner = signed_in(h, 1)
        h.cloud.script_next(Outcome.passes())
        certify_id = owner.post("/alicertify/init", json=BODY).get_json()["certifyId"]
        body = {"certifyId": certify_id, "resultStatus": "9000", "result": None}
        assert signed_in(h, 2).post("/alicertify/result", json=body).status_code == 403
        assert h.app.test_client().post("/alicertify/result", json=body).status_code == 401
        answer = owner.post("/alicertify/result", json=body)
        assert (answer.status_code, answer.get_json()["status"]) == (200, "passed")
        record = h.record(certify_id)
        # get_id() gives the text form; that is the id, exactly as Flask-Login produced it.
        assert (record.user_id, record.user_id_type) == ("1", "str")


def test_flask_login_is_used_by_itself_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="flask_alicertify"), login_app(None) as h:
        assert h.ext.state(h.app).hooks.user_loader is None
    assert any("Flask-Login's current_user" in r.getMessage() for r in caplog.records)


def test_a_registered_loader_wins_over_flask_login() -> None:
    with login_app(lambda: "from-the-loader") as h:
        h.cloud.script_next(Outcome.passes())
        certify_id = h.app.test_client().post("/alicertify/init", json=BODY).get_json()["certifyId"]
        assert h.record(certify_id).user_id == "from-the-loader"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("u1", "u1"), (42, 42), (None, None), ("", None), (0, 0)],
)
def test_user_ids_pass_through_with_their_type(value: Any, expected: Any) -> None:
    assert resolve_user(value) == expected
    assert type(resolve_user(value)) is type(expected)


class Shaped:
    def __init__(self, authenticated: bool, user_id: Any) -> None:
        self.is_authenticated = authenticated
        self._id = user_id

    def get_id(self) -> Any:
        return self._id


def test_flask_login_shaped_objects() -> None:
    assert resolve_user(Shaped(True, "7")) == "7"
    assert resolve_user(Shaped(True, 7)) == 7
    assert resolve_user(Shaped(False, "7")) is None


def load_nonsense() -> object:
    return object()


@pytest.mark.parametrize(
    "value",
    [
        object(),
        True,
        4.5,
        b"bytes",
        ["u"],
        {"id": 1},
        Shaped(True, None),
        Shaped(True, True),
        Shaped(True, 1.5),
    ],
    ids=["object", "bool", "float", "bytes", "list", "dict", "get_id-None", "get_id-bool", "get_id-float"],
)
def test_anything_else_is_a_type_error_naming_the_loader(value: Any) -> None:
    with pytest.raises(TypeError, match="load_nonsense") as info:
        resolve_user(value, load_nonsense)
    assert "object at 0x" not in str(info.value)


def test_a_bad_loader_fails_the_request_and_never_reaches_alibaba() -> None:
    with harness(user_loader=load_nonsense) as h:
        with pytest.raises(TypeError, match="test_ext_users.load_nonsense"):
            h.app.test_client().post("/alicertify/init", json=BODY)
        assert h.cloud.calls == []


def test_an_integer_user_id_reaches_the_identity_loader_as_an_int() -> None:
    """With ``lambda: 42`` the identity loader once got '42', missed, and the client's identity won."""
    seen: list[Any] = []
    profiles = {42: (CERT_NAME, CERT_NO)}

    def identity(user_id: Any) -> Any:
        seen.append(user_id)
        return profiles.get(user_id)

    with harness(user_loader=lambda: 42, identity_loader=identity) as h:
        someone_else = {"serviceParameters": {"certNo": CERT_NO_2, "certName": CERT_NAME_2}}
        response = h.app.test_client().post("/alicertify/init", json=someone_else)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "identity_mismatch"
        assert seen == [42] and type(seen[0]) is int
        assert not any(call.params.get("CertNo") == CERT_NO_2 for call in h.cloud.calls_for("InitFaceVerify"))
        own = h.app.test_client().post("/alicertify/init", json={"serviceParameters": {}})
        assert own.status_code == 200
        record = h.record(own.get_json()["certifyId"])
        assert (record.user_id, record.user_id_type, record.typed_user_id) == ("42", "int", 42)


def test_top_level_signals_get_the_typed_user_id_and_the_extension() -> None:
    got: list[tuple[Any, Record, Any, Any]] = []

    def receiver(
        sender: Any, record: Record, extension: Any = None, user_id: Any = None, **extra: Any
    ) -> None:
        got.append((sender, record, extension, user_id))

    with harness(user_loader=lambda: 42) as h:
        certify_passed.connect(receiver, sender=h.app)
        try:
            h.cloud.script_next(Outcome.passes())
            certify_id = h.app.test_client().post("/alicertify/init", json=BODY).get_json()["certifyId"]
            body = {"certifyId": certify_id, "resultStatus": "9000", "result": None}
            assert h.app.test_client().post("/alicertify/result", json=body).get_json()["status"] == "passed"
        finally:
            certify_passed.disconnect(receiver, sender=h.app)
    [(sender, record, extension, user_id)] = got
    assert sender is h.app and extension is h.ext and extension.name == "alicertify"
    assert user_id == 42 and record.certify_id == certify_id
