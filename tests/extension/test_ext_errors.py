"""The error catalogue: every exception takes its code, status and messages from one row."""

from __future__ import annotations

import pytest

from flask_alicertify import errors
from flask_alicertify.errors import CATALOGUE
from flask_alicertify.errors import CloudBusinessError
from flask_alicertify.errors import CloudMalformedResponse
from flask_alicertify.errors import CloudRejected
from flask_alicertify.errors import CloudThrottled
from flask_alicertify.errors import CloudUnavailable
from flask_alicertify.errors import CredentialsMissing
from flask_alicertify.errors import SandboxConflict
from flask_alicertify.errors import ServiceError
from flask_alicertify.errors import describe_error
from flask_alicertify.errors import http_error_spec
from flask_alicertify.errors import init_error

SERVICE_ERRORS = sorted(
    (
        value
        for name in errors.__all__
        if isinstance(value := getattr(errors, name), type) and issubclass(value, ServiceError)
    ),
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", SERVICE_ERRORS, ids=lambda cls: cls.__name__)
def test_each_error_class_is_a_catalogue_row(cls: type[ServiceError]) -> None:
    spec = CATALOGUE[cls.code]
    assert (cls.status, cls.message_zh, cls.message_en) == (spec.status, spec.message_zh, spec.message_en)


def test_sandbox_conflict_is_closed_or_expired() -> None:
    decided, expired = SandboxConflict("decided"), SandboxConflict("expired")
    assert (decided.code, decided.status, decided.reason) == ("sandbox_session_closed", 409, "decided")
    assert (expired.code, expired.status, expired.reason) == ("sandbox_session_expired", 410, "expired")
    assert expired.message("en") == CATALOGUE["sandbox_session_expired"].message_en
    assert isinstance(expired, SandboxConflict)


@pytest.mark.parametrize(
    ("cloud_error", "code"),
    [
        (CloudThrottled("slow down", retry_after=2.5), "upstream_throttled"),
        (CloudUnavailable("down"), "upstream_unavailable"),
        (CredentialsMissing("no key"), "upstream_unavailable"),
        (CloudBusinessError("too many", code="418"), "too_many_failures"),
        (CloudBusinessError("under 14", code="405"), "identity_not_verifiable"),
        (CloudBusinessError("no source", code="417"), "identity_not_verifiable"),
        (CloudBusinessError("arrears", code="412"), "upstream_error"),
        (CloudRejected("bad signature", http_status=400), "upstream_error"),
        (CloudMalformedResponse("not json"), "upstream_malformed"),
    ],
)
def test_init_errors(cloud_error: errors.CloudError, code: str) -> None:
    answer = init_error(cloud_error)
    assert (answer.code, answer.status) == (code, CATALOGUE[code].status)


def test_a_throttled_init_is_429_and_a_throttled_describe_is_503() -> None:
    throttled = CloudThrottled("slow down", retry_after=2.5)
    assert (init_error(throttled).status, init_error(throttled).retry_after) == (429, 2.5)
    answer = describe_error(throttled)
    assert (answer.code, answer.status, answer.retry_after) == ("upstream_unavailable", 503, 2.5)
    assert describe_error(CloudThrottled("slow down")).retry_after == 1.0
    assert describe_error(CloudMalformedResponse("x")).code == "upstream_unavailable"
    assert describe_error(CloudMalformedResponse("x")).retry_after is None


def test_http_errors_get_their_catalogue_code() -> None:
    assert http_error_spec(413, "Request Entity Too Large").code == "body_too_large"
    assert http_error_spec(405, "Method Not Allowed").code == "method_not_allowed"
    assert http_error_spec(404, "Not Found").code == "not_found"
    legal = http_error_spec(451, "Unavailable For Legal Reasons")
    assert (legal.code, legal.status) == ("unavailable_for_legal_reasons", 451)
    assert legal.message_zh == legal.message_en == "Unavailable For Legal Reasons"
