"""What tests hand the fake cloud and what they read back from it.

Scripting values say what will happen: :class:`Outcome` (how the user's verification ends) and
:class:`Fault` (what goes wrong between the caller and Alibaba). Inspection values say what did
happen: :class:`Call` (one request received) and :class:`Session` (one certify id issued). All
of them are plain data; the rules that move a session along live on :class:`Session` so that
:class:`~flask_alicertify.sandbox.fake.FakeCloud` only has to hold the lock and the clock.

Every repr masks personal data with the one masking rule of :mod:`flask_alicertify.identity`,
so a failing assertion never prints an ID number or a name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from urllib.parse import urlencode

from ..identity import mask_cert_name
from ..identity import mask_cert_no

#: A certify id (and its URL) is valid this long after Init (docs/flow.md, status ``expired``).
SESSION_TTL = 30 * 60.0

#: Parameter names whose values are ID numbers, and names: masked in every repr.
CERT_NO_KEYS: frozenset[str] = frozenset({"CertNo", "certNo"})
CERT_NAME_KEYS: frozenset[str] = frozenset({"CertName", "certName"})
PII_KEYS: frozenset[str] = CERT_NO_KEYS | CERT_NAME_KEYS
#: Secrets that are never shown at all.
SECRET_KEYS: frozenset[str] = frozenset({"CallbackToken", "callbackToken"})

_SUB_CODE = re.compile(r"[0-9A-Za-z_]{1,32}")


def wall_clock() -> float:
    """``time.time()`` looked up on every call, so freezegun or time-machine travel moves the fake.

    A ``time.time`` captured as a default argument would keep the real function after freezegun
    patched the module: the fake and the extension would disagree about the time.
    """
    return time.time()


def safe_params(
    params: Mapping[str, Any], service_parameters: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A copy of ``params`` fit for a repr: PII masked, tokens hidden.

    ``service_parameters`` is SAF's ``ServiceParameters`` already decoded (the fake decodes it
    once per request); it is shown cleaned the same way instead of the raw JSON string.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in CERT_NO_KEYS and isinstance(value, str):
            out[key] = mask_cert_no(value)
        elif key in CERT_NAME_KEYS and isinstance(value, str):
            out[key] = mask_cert_name(value)
        elif key in SECRET_KEYS:
            out[key] = "***"
        elif key == "ServiceParameters" and isinstance(value, str):
            out[key] = safe_params(service_parameters) if service_parameters else "<not a JSON object>"
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Scripting values


OutcomeKind = Literal["passes", "fails", "never"]


@dataclass(frozen=True)
class Outcome:
    """What the user's verification will end as, as DescribeFaceVerify (or SAF query) reports it.

    ``after`` = N makes the first N describes answer "not finished" (Code 424) before the
    verdict appears, like a user still in front of the camera.
    """

    kind: OutcomeKind
    sub_code: str | None = None
    after: int = 0

    def __post_init__(self) -> None:
        if self.after < 0:
            raise ValueError("after must be >= 0")
        if self.kind != "never" and not (self.sub_code and _SUB_CODE.fullmatch(self.sub_code)):
            raise ValueError(f"sub_code must be a short code like '200', got {self.sub_code!r}")

    @classmethod
    def passes(cls, sub_code: str = "200", after: int = 0) -> Outcome:
        return cls("passes", sub_code, after)

    @classmethod
    def fails(cls, sub_code: str = "204", after: int = 0) -> Outcome:
        return cls("fails", sub_code, after)

    @classmethod
    def never_finishes(cls) -> Outcome:
        """Abandoned or never started: every describe answers 424, no callback is ever sent."""
        return cls("never")

    @property
    def passed(self) -> bool | None:
        return None if self.kind == "never" else self.kind == "passes"

    def __str__(self) -> str:
        if self.kind == "never":
            return "Outcome.never_finishes()"
        after = f", after={self.after}" if self.after else ""
        return f"Outcome.{self.kind}(sub_code={self.sub_code!r}{after})"


FaultKind = Literal["http", "code_500", "timeout", "connect_error", "malformed", "throttle", "error"]


@dataclass(frozen=True)
class Fault:
    """Something that goes wrong between the caller and Alibaba, injected with ``FakeCloud.inject``."""

    kind: FaultKind
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    html: bool = False

    @classmethod
    def http(cls, status: int = 503, *, html: bool = False) -> Fault:
        """That HTTP status with the gateway's JSON error body (or a load balancer's HTML page)."""
        if not 400 <= status <= 599:
            raise ValueError("an HTTP fault needs a 4xx or 5xx status")
        return cls("http", status=status, html=html)

    @classmethod
    def code_500(cls) -> Fault:
        """HTTP 200 with business Code 500 系统错误 (the official sample fails over on it)."""
        return cls("code_500", code="500")

    @classmethod
    def timeout(cls) -> Fault:
        """No answer in time: httpx.ReadTimeout in-process; a slow 504 over real HTTP."""
        return cls("timeout")

    @classmethod
    def connect_error(cls) -> Fault:
        """The endpoint cannot be reached: httpx.ConnectError in-process; a dropped socket over HTTP."""
        return cls("connect_error")

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 whose body is not JSON."""
        return cls("malformed")

    @classmethod
    def throttle(cls, retry_after: float = 1.0) -> Fault:
        """HTTP 429 ``Throttling.User`` with ``x-acs-retry-after`` (milliseconds)."""
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        return cls("throttle", status=429, retry_after=retry_after)

    @classmethod
    def error(cls, code: str = "417") -> Fault:
        """HTTP 200 with this business Code and Alibaba's message for it."""
        return cls("error", code=str(code))

    def __str__(self) -> str:
        if self.kind == "http":
            return f"Fault.http({self.status}{', html=True' if self.html else ''})"
        if self.kind == "throttle":
            return f"Fault.throttle(retry_after={self.retry_after})"
        if self.kind == "error":
            return f"Fault.error({self.code!r})"
        return f"Fault.{self.kind}()"


# ---------------------------------------------------------------------------------------------
# Inspection values


@dataclass(frozen=True, repr=False)
class Call:
    """One request the fake received, whatever became of it.

    ``params`` are the wire parameters (query and form merged) including personal data, so tests
    can assert on exactly what was sent; the repr masks it. ``certify_id`` is the id Init issued,
    or the id a describe/query asked about (even when refused). ``status_code`` is None when the
    call ended in an injected transport fault (``fault`` says which). ``code`` is the gateway or
    business Code answered. ``detail`` says why a request was refused, without personal data.
    """

    action: str
    host: str
    params: dict[str, str]
    status_code: int | None
    code: str | None
    request_id: str | None
    certify_id: str | None = None
    fault: str | None = None
    detail: str | None = None
    service_parameters: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0

    def __repr__(self) -> str:
        parts = [
            f"action={self.action!r}",
            f"host={self.host!r}",
            f"params={safe_params(self.params, self.service_parameters)!r}",
            f"status_code={self.status_code!r}",
            f"code={self.code!r}",
            f"certify_id={self.certify_id!r}",
        ]
        if self.fault:
            parts.append(f"fault={self.fault!r}")
        if self.detail:
            parts.append(f"detail={self.detail!r}")
        return f"Call({', '.join(parts)})"


class SessionExpired(ValueError):
    """The user can no longer finish this session: its 30 minutes are over."""


class SessionDecided(ValueError):
    """A describe already reported this session's verdict: Alibaba's verdicts never change."""


@dataclass(repr=False)
class Session:
    """One certify id the fake issued, and where the (simulated) user stands with it.

    The methods taking ``now`` are the session's rules; the fake calls them under its lock.
    """

    certify_id: str
    outer_order_no: str
    scene_id: str
    cert_name: str
    cert_no: str
    return_url: str | None
    callback_url: str | None
    callback_token: str | None
    api: Literal["cloudauth", "saf"]
    outcome: Outcome | None = None
    describes: int = 0
    finished: bool = False
    passed: bool | None = None
    sub_code: str | None = None
    created_at: float = 0.0
    ttl: float = SESSION_TTL
    certify_url: str = ""
    product_code: str | None = None
    meta_info: str | None = None
    #: True while ``outcome`` came from script()/script_next() (not from complete()).
    scripted: bool = False
    #: "not finished" answers given under the current outcome (counts towards ``after``).
    waited: int = 0
    #: A describe has reported the verdict: it can no longer change.
    verdict_described: bool = False
    #: ``"SM2"`` when the init sent the identity encrypted (``cert_*`` hold the decrypted values).
    encrypt_type: str | None = None
    #: When DeleteFaceVerifyResult removed the session's personal data (None: not deleted).
    deleted_at: float | None = None

    @property
    def expires_at(self) -> float:
        return self.created_at + self.ttl

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def settle(self, now: float) -> None:
        """Finish the session if its outcome says the user is done by now."""
        outcome = self.outcome
        if self.finished or outcome is None or outcome.kind == "never" or self.expired(now):
            return
        if self.waited >= outcome.after:
            self.finished, self.passed, self.sub_code = True, outcome.passed, outcome.sub_code

    def describe(self, now: float) -> bool:
        """Count one describe; True when it reports the verdict, False for "not finished"."""
        self.describes += 1
        self.settle(now)
        if self.finished:
            self.verdict_described = True
            return True
        if self.outcome is not None and self.outcome.kind != "never" and not self.expired(now):
            self.waited += 1
        return False

    def rescript(self, outcome: Outcome, now: float) -> None:
        """From now on the session ends as ``outcome`` (``FakeCloud.script``)."""
        if self.verdict_described or self.deleted_at is not None:
            raise self._decided()
        self.outcome, self.scripted, self.waited = outcome, True, 0
        self.finished, self.passed, self.sub_code = False, None, None
        self.settle(now)

    def complete(self, outcome: Outcome, now: float) -> None:
        """The user finishes now as ``outcome`` (``FakeCloud.complete``); the same verdict is a no-op."""
        if self.finished and self.passed == outcome.passed and self.sub_code == outcome.sub_code:
            return
        if self.verdict_described or self.deleted_at is not None:
            raise self._decided()
        if self.expired(now):
            raise SessionExpired(f"session {self.certify_id!r} expired; the user can no longer finish it")
        self.outcome, self.scripted = outcome, False
        self.finished, self.passed, self.sub_code = True, outcome.passed, outcome.sub_code

    def delete(self, after_query: bool, now: float) -> str | None:
        """DeleteFaceVerifyResult: forget the identity now; else the ``FailReason`` Alibaba gives.

        The verdict stays (Alibaba deletes the name, ID number, images and device data, not the
        result), so a describe after deletion still reports ``Passed``/``SubCode``.
        """
        if self.deleted_at is not None:
            return "NOT_DELETE_REPEATEDLY"
        if after_query and self.describes == 0:
            return "NEED_QUERY_VERIFY_RESULT"
        self.deleted_at = now
        self.cert_name = self.cert_no = ""
        self.meta_info = None
        return None

    def _decided(self) -> SessionDecided:
        return SessionDecided(f"the verdict of {self.certify_id!r} was already described; it cannot change")

    def callback_request_url(self) -> str | None:
        """The GET Alibaba would send to the CallbackUrl once the user finished, else None."""
        if not self.finished or not self.callback_url:
            return None
        query: dict[str, str] = {"certifyId": self.certify_id, "passed": self.sub_code or ""}
        if self.callback_token:
            query["callbackToken"] = self.callback_token
        sep = "&" if "?" in self.callback_url else "?"
        return self.callback_url + sep + urlencode(query)

    def unconsumed(self) -> str | None:
        """What a test scripted for this session but the code under test never asked for."""
        if not self.scripted or self.outcome is None:
            return None
        if self.outcome.kind == "never":
            if self.describes == 0:
                return f"script({self.certify_id!r}, {self.outcome}): the session was never described"
            return None
        if not self.verdict_described:
            return (
                f"script({self.certify_id!r}, {self.outcome}): the verdict was never described "
                f"({self.describes} describe(s) so far)"
            )
        return None

    def __repr__(self) -> str:
        return (
            f"Session(certify_id={self.certify_id!r}, api={self.api!r}, scene_id={self.scene_id!r}, "
            f"outer_order_no={self.outer_order_no!r}, cert_name={mask_cert_name(self.cert_name)!r}, "
            f"cert_no={mask_cert_no(self.cert_no)!r}, outcome={str(self.outcome) if self.outcome else None}, "
            f"describes={self.describes}, finished={self.finished}, passed={self.passed}, "
            f"sub_code={self.sub_code!r})"
        )
