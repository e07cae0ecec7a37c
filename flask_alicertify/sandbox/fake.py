"""A stateful fake of Alibaba Cloud's ID-verification APIs that speaks the real wire protocol.

One :class:`FakeCloud` serves cloudauth ``InitFaceVerify``/``DescribeFaceVerify`` (2019-03-07)
and SAF ``ExecuteRequest`` ``fin_face_verify``, checks the V3 signature of every request like
Alibaba's gateway, and answers with Alibaba's envelopes and codes. Tests script what the user
does (:class:`Outcome`) and what goes wrong on the way (:class:`Fault`), then inspect every
call. It is reachable three ways: :meth:`FakeCloud.handle` / :meth:`FakeCloud.transport` for
httpx, :attr:`FakeCloud.wsgi`, and :meth:`FakeCloud.serve` for real HTTP on loopback (the
official SDK talks to that). No Flask here: the extension, the pytest plugin and the CLI share it.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx

from . import protocol
from .protocol import GatewayError
from .protocol import WireRequest

#: A certify id (and its URL) is valid this long after Init (reference §1.2, §8).
SESSION_TTL = 30 * 60.0
DEFAULT_ACCESS_KEY_ID = "LTAI5tFakeAccessKeyId0001"
DEFAULT_ACCESS_KEY_SECRET = "fake-secret"
DEFAULT_CERTIFY_URL = "https://sandbox.alicertify.invalid/certify/{certify_id}"

#: Parameter names whose values are personal data: masked in every repr.
PII_KEYS: frozenset[str] = frozenset({"CertName", "CertNo", "certName", "certNo"})
#: Secrets that are never shown at all.
SECRET_KEYS: frozenset[str] = frozenset({"CallbackToken", "callbackToken"})

PRODUCT_CODES: frozenset[str] = frozenset({"ID_PRO", "ID_PLUS", "PV_FV", "LR_FR", "MFVC", "PV_FC", "ID_MIN"})
CERT_TYPES: frozenset[str] = frozenset({"IDENTITY_CARD", "PASSPORT"})
MODELS: frozenset[str] = frozenset(
    {"LIVENESS", "PHOTINUS_LIVENESS", "MULTI_ACTION", "MOVE_ACTION", "MOVE_PHOTINUS", "MULTI_FAPTCHA"}
)
SAF_BIZ_CODES: frozenset[str] = frozenset({"FACE", "FACE_SDK"})
INIT_REQUIRED = ("SceneId", "OuterOrderNo", "ProductCode", "CertType", "CertName", "CertNo")
DESCRIBE_REQUIRED = ("SceneId", "CertifyId")
SAF_INIT_REQUIRED = ("sceneId", "outerOrderNo", "bizCode", "identityType", "certType", "certNo", "certName")
SAF_QUERY_REQUIRED = ("certifyId", "sceneId")

_OUTER_ORDER_NO = re.compile(r"[A-Za-z0-9]{1,32}")
_CERT_NO = re.compile(r"[0-9]{15}|[0-9]{17}[0-9Xx]")
_SCENE_ID = re.compile(r"[0-9]{1,20}")
_SUB_CODE = re.compile(r"[0-9A-Za-z_]{1,32}")


def mask(value: str) -> str:
    """Keep the first and last character, star the rest: enough to tell records apart, no more."""
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def _safe_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` fit for a repr: PII masked, tokens hidden, nested JSON cleaned too."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in PII_KEYS and isinstance(value, str):
            out[key] = mask(value)
        elif key in SECRET_KEYS:
            out[key] = "***"
        elif key == "ServiceParameters" and isinstance(value, str):
            try:
                inner = json.loads(value)
            except ValueError:
                out[key] = "<not JSON>"
            else:
                out[key] = _safe_params(inner) if isinstance(inner, dict) else "<not an object>"
        else:
            out[key] = value
    return out


def _text(value: Any) -> str | None:
    """A JSON value as the string Alibaba would read it (numbers allowed for ids)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value)


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
    """Something that goes wrong between the caller and Alibaba, injected with :meth:`FakeCloud.inject`."""

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
            f"params={_safe_params(self.params)!r}",
            f"status_code={self.status_code!r}",
            f"code={self.code!r}",
            f"certify_id={self.certify_id!r}",
        ]
        if self.fault:
            parts.append(f"fault={self.fault!r}")
        if self.detail:
            parts.append(f"detail={self.detail!r}")
        return f"Call({', '.join(parts)})"


@dataclass(repr=False)
class Session:
    """One certify id the fake issued, and where the (simulated) user stands with it."""

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

    @property
    def expires_at(self) -> float:
        return self.created_at + self.ttl

    def __repr__(self) -> str:
        return (
            f"Session(certify_id={self.certify_id!r}, api={self.api!r}, scene_id={self.scene_id!r}, "
            f"outer_order_no={self.outer_order_no!r}, cert_name={mask(self.cert_name)!r}, "
            f"cert_no={mask(self.cert_no)!r}, outcome={str(self.outcome) if self.outcome else None}, "
            f"describes={self.describes}, finished={self.finished}, passed={self.passed}, "
            f"sub_code={self.sub_code!r})"
        )


class SessionExpired(ValueError):
    """The user can no longer finish this session: its 30 minutes are over."""


@dataclass
class _FaultEntry:
    fault: Fault
    times: int
    remaining: int
    action: str | None
    host: str | None

    def describe(self) -> str:
        where = "".join(
            f", {name}={value!r}" for name, value in (("action", self.action), ("host", self.host)) if value
        )
        return f"inject({self.fault}, times={self.times}{where}): {self.remaining} of {self.times} not used"


def _normalise_host(value: str) -> str:
    """Accept ``host``, ``host:port`` or a full URL wherever a host is named."""
    value = value.strip()
    if "://" in value:
        return urlsplit(value).netloc.lower()
    return value.rstrip("/").lower()


def _host_matches(pattern: str, host: str) -> bool:
    """A pattern without a port matches the host on any port."""
    host = host.lower()
    return pattern == host or (":" not in pattern and pattern == host.rsplit(":", 1)[0])


def _action_matches(pattern: str, action: str) -> bool:
    """``"ExecuteRequest"`` names both SAF methods; anything else must match exactly."""
    return pattern == action or (pattern == protocol.SAF_ACTION and action.startswith(pattern + ":"))


# ---------------------------------------------------------------------------------------------
# The fake


class FakeCloud:
    """The fake Alibaba Cloud. Thread-safe: one lock guards all state.

    :param access_key_id: the only key the gateway knows; others get 404 InvalidAccessKeyId.NotFound.
    :param access_key_secret: the secret V3 signatures must be made with.
    :param security_token: when set, requests must carry it in ``x-acs-security-token`` (STS).
    :param seed: makes certify ids and request ids deterministic.
    :param certify_url: ``str.format`` template with ``{certify_id}``.
    :param saf_style: ``"upper"`` (``Code``/``Data``) or ``"lower"`` (``code``/``data``) SAF envelopes;
        Alibaba's pages show both, so clients must read both.
    :param saf_data_as_string: SAF ``Data`` as a JSON string (seen in third-party code) instead of an object.
    :param scene_ids: when given, any other SceneId answers Code 404 认证场景配置不存在.
    :param clock: seconds since the epoch; inject one to test the 30-minute expiry.
    :param timeout_seconds: how long the loopback server stalls for :meth:`Fault.timeout`.
    :param https_callbacks_only: Alibaba refuses a CallbackUrl that is not https (Code 401);
        switch off for a local demo whose callback is plain http.
    """

    def __init__(
        self,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
        *,
        security_token: str | None = None,
        seed: int | None = None,
        certify_url: str = DEFAULT_CERTIFY_URL,
        saf_style: Literal["upper", "lower"] = "upper",
        saf_data_as_string: bool = False,
        scene_ids: Collection[str | int] | None = None,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 2.0,
        https_callbacks_only: bool = True,
    ) -> None:
        if saf_style not in ("upper", "lower"):
            raise ValueError("saf_style must be 'upper' or 'lower'")
        if "{certify_id}" not in certify_url:
            raise ValueError("certify_url must contain '{certify_id}'")
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.seed = seed
        self.certify_url = certify_url
        self.saf_style = saf_style
        self.saf_data_as_string = saf_data_as_string
        self.scene_ids: frozenset[str] | None = (
            None if scene_ids is None else frozenset(str(s) for s in scene_ids)
        )
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.https_callbacks_only = https_callbacks_only
        self._lock = threading.RLock()
        self._reset_state()

    def _reset_state(self) -> None:
        self._ids = random.Random(self.seed)
        self._request_ids = random.Random(None if self.seed is None else f"request-ids:{self.seed}")
        self._sessions: dict[str, Session] = {}
        self._calls: list[Call] = []
        self._next: deque[Outcome] = deque()
        self._faults: list[_FaultEntry] = []
        self._down: set[str] = set()
        self._connections_opened = 0

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"<FakeCloud key={self.access_key_id!r} sessions={len(self._sessions)} "
                f"calls={len(self._calls)}>"
            )

    # -- inspection -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request received, oldest first (a copy: the fake keeps recording)."""
        with self._lock:
            return list(self._calls)

    def calls_for(self, action: str) -> list[Call]:
        """Calls of one action: ``InitFaceVerify``, ``DescribeFaceVerify``, ``ExecuteRequest:init``,
        ``ExecuteRequest:query`` (or ``ExecuteRequest`` for both)."""
        with self._lock:
            return [c for c in self._calls if _action_matches(action, c.action)]

    @property
    def sessions(self) -> dict[str, Session]:
        """Issued certify ids → live :class:`Session` objects (the dict is a copy)."""
        with self._lock:
            return dict(self._sessions)

    @property
    def connections_opened(self) -> int:
        """TCP connections the loopback server accepted (see :meth:`serve`)."""
        with self._lock:
            return self._connections_opened

    def _connection_accepted(self) -> None:
        with self._lock:
            self._connections_opened += 1

    def is_expired(self, certify_id: str) -> bool:
        with self._lock:
            return self._expired(self._session(certify_id))

    def callback_url(self, certify_id: str) -> str | None:
        """The GET Alibaba would send to the CallbackUrl once the user finished, else None.

        ``passed`` carries the SubCode, as the cloudauth docs say (reference §3).
        """
        with self._lock:
            session = self._session(certify_id)
            if not session.finished or not session.callback_url:
                return None
            query: dict[str, str] = {"certifyId": session.certify_id, "passed": session.sub_code or ""}
            if session.callback_token:
                query["callbackToken"] = session.callback_token
            sep = "&" if "?" in session.callback_url else "?"
            return session.callback_url + sep + urlencode(query)

    def unconsumed(self) -> list[str]:
        """Scripted outcomes and faults a test set up but the code under test never reached."""
        with self._lock:
            out = [f"script_next({outcome}): no Init created a session for it" for outcome in self._next]
            for s in self._sessions.values():
                if not s.scripted or s.outcome is None:
                    continue
                if s.outcome.kind == "never":
                    if s.describes == 0:
                        out.append(f"script({s.certify_id!r}, {s.outcome}): the session was never described")
                elif not s.verdict_described:
                    out.append(
                        f"script({s.certify_id!r}, {s.outcome}): the verdict was never described "
                        f"({s.describes} describe(s) so far)"
                    )
            out.extend(entry.describe() for entry in self._faults if entry.remaining)
            return out

    # -- scripting --------------------------------------------------------------------------

    def script_next(self, outcome: Outcome) -> None:
        """The next session an Init creates ends as ``outcome`` (FIFO when called repeatedly)."""
        with self._lock:
            self._next.append(outcome)

    def script(self, certify_id: str, outcome: Outcome) -> None:
        """Session ``certify_id`` ends as ``outcome``; refused once its verdict has been described."""
        with self._lock:
            session = self._session(certify_id)
            if session.verdict_described:
                raise ValueError(f"the verdict of {certify_id!r} was already described; it cannot change")
            session.outcome = outcome
            session.scripted = True
            session.waited = 0
            session.finished, session.passed, session.sub_code = False, None, None
            self._settle(session)

    def complete(self, certify_id: str, passed: bool = True, sub_code: str | None = None) -> Session:
        """The user finishes now (the sandbox certify page calls this).

        Raises :class:`SessionExpired` after 30 minutes, and ValueError when a different verdict
        was already described (Alibaba's verdicts never change). Repeating the same verdict is a no-op.
        """
        sub = sub_code or ("200" if passed else "204")
        outcome = Outcome.passes(sub) if passed else Outcome.fails(sub)
        with self._lock:
            session = self._session(certify_id)
            if session.finished and session.passed == passed and session.sub_code == sub:
                return session
            if session.verdict_described:
                raise ValueError(f"the verdict of {certify_id!r} was already described; it cannot change")
            if self._expired(session):
                raise SessionExpired(f"session {certify_id!r} expired; the user can no longer finish it")
            session.outcome, session.scripted = outcome, False
            session.finished, session.passed, session.sub_code = True, passed, sub
            return session

    def inject(
        self, fault: Fault, times: int = 1, action: str | None = None, host: str | None = None
    ) -> None:
        """The next ``times`` calls matching ``action``/``host`` fail with ``fault`` (in injection order)."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append(
                _FaultEntry(fault, times, times, action, None if host is None else _normalise_host(host))
            )

    def endpoint_down(self, host: str) -> None:
        """Every call to ``host`` fails to connect until :meth:`endpoint_up`."""
        with self._lock:
            self._down.add(_normalise_host(host))

    def endpoint_up(self, host: str) -> None:
        with self._lock:
            self._down.discard(_normalise_host(host))

    def reset(self) -> None:
        """Forget everything: sessions, calls, scripts, faults, downed endpoints; re-seed ids."""
        with self._lock:
            self._reset_state()

    # -- ways in ------------------------------------------------------------------------------

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport answering from this fake: ``httpx.Client(transport=cloud.transport())``."""
        return FakeTransport(self)

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The same protocol as a plain WSGI application.

        Injected timeouts stall ``timeout_seconds`` and answer 504; a WSGI app cannot drop its
        connection, so injected connect errors and downed endpoints answer 502 with an empty body.
        """
        from .server import wsgi_app

        return wsgi_app(self, environ, start_response)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> AbstractContextManager[str]:
        """Serve over real HTTP/1.1 (keep-alive) on loopback; yields ``"http://127.0.0.1:PORT"``."""
        from .server import serve

        return serve(self, host=host, port=port)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request exactly as Alibaba would, or raise the httpx error of an injected fault."""
        wire = protocol.read_request(request)
        with self._lock:
            request_id = str(uuid.UUID(int=self._request_ids.getrandbits(128), version=4)).upper()
            action = self._action_name(wire)
            call = _CallDraft(wire, action, request_id, self.clock(), dict(wire.headers))
            host = _normalise_host(wire.host)
            if any(_host_matches(down, host) for down in self._down):
                self._record(call, None, None, fault="endpoint_down")
                raise httpx.ConnectError(f"[fake] endpoint {wire.host} is down", request=request)
            fault = self._take_fault(action, host)
            if fault is not None:
                return self._apply_fault(fault, request, wire, call)
            try:
                protocol.verify_signature(
                    request,
                    wire,
                    access_key_id=self.access_key_id,
                    access_key_secret=self.access_key_secret,
                    security_token=self.security_token,
                )
                protocol.check_version(wire)
                if wire.method not in ("GET", "POST"):
                    raise GatewayError(405, "UnsupportedHTTPMethod", "Only GET and POST are supported.")
            except GatewayError as exc:
                self._record(call, exc.status, exc.code, detail=exc.message)
                return self._answer(
                    protocol.gateway_error(exc.status, exc.code, exc.message, request_id, wire.host), request
                )
            if wire.action == "InitFaceVerify":
                response = self._init_face_verify(call)
            elif wire.action == "DescribeFaceVerify":
                response = self._describe_face_verify(call)
            else:
                response = self._execute_request(call)
            return self._answer(response, request)

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _answer(response: httpx.Response, request: httpx.Request) -> httpx.Response:
        response.request = request
        return response

    def _session(self, certify_id: str) -> Session:
        try:
            return self._sessions[certify_id]
        except KeyError:
            raise KeyError(f"the fake cloud never issued certify id {certify_id!r}") from None

    def _expired(self, session: Session) -> bool:
        return self.clock() >= session.expires_at

    def _settle(self, session: Session) -> None:
        """Finish the session if its outcome says the user is done by now."""
        outcome = session.outcome
        if session.finished or outcome is None or outcome.kind == "never" or self._expired(session):
            return
        if session.waited >= outcome.after:
            session.finished, session.passed, session.sub_code = True, outcome.passed, outcome.sub_code

    def _describe(self, session: Session) -> bool:
        """Count one describe; True when it reports the verdict, False for "not finished"."""
        session.describes += 1
        self._settle(session)
        if session.finished:
            session.verdict_described = True
            return True
        if session.outcome is not None and session.outcome.kind != "never" and not self._expired(session):
            session.waited += 1
        return False

    @staticmethod
    def _saf_method(wire: WireRequest) -> str | None:
        raw = wire.params.get("ServiceParameters")
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        method = data.get("method") if isinstance(data, dict) else None
        return method if isinstance(method, str) else None

    def _action_name(self, wire: WireRequest) -> str:
        if wire.action == protocol.SAF_ACTION:
            method = self._saf_method(wire)
            return f"{protocol.SAF_ACTION}:{method}" if method else protocol.SAF_ACTION
        return wire.action or "<no action>"

    def _take_fault(self, action: str, host: str) -> Fault | None:
        for entry in self._faults:
            if entry.remaining <= 0:
                continue
            if entry.action is not None and not _action_matches(entry.action, action):
                continue
            if entry.host is not None and not _host_matches(entry.host, host):
                continue
            entry.remaining -= 1
            return entry.fault
        return None

    def _apply_fault(
        self, fault: Fault, request: httpx.Request, wire: WireRequest, call: _CallDraft
    ) -> httpx.Response:
        name = str(fault)
        if fault.kind == "timeout":
            self._record(call, None, None, fault=name)
            raise httpx.ReadTimeout("[fake] injected read timeout", request=request)
        if fault.kind == "connect_error":
            self._record(call, None, None, fault=name)
            raise httpx.ConnectError("[fake] injected connect error", request=request)
        if fault.kind == "malformed":
            response = protocol.malformed_response()
            code: str | None = None
        elif fault.kind == "http":
            status = fault.status or 503
            if fault.html:
                response, code = protocol.html_error(status), None
            else:
                code, message = (
                    protocol.SERVER_ERROR
                    if status >= 500
                    else protocol.HTTP_ERROR_CODES.get(status, (f"Http{status}", "The request failed."))
                )
                response = protocol.gateway_error(status, code, message, call.request_id, wire.host)
        elif fault.kind == "throttle":
            code, message = protocol.HTTP_ERROR_CODES[429]
            response = protocol.gateway_error(429, code, message, call.request_id, wire.host)
            response.headers["x-acs-retry-after"] = str(round((fault.retry_after or 0.0) * 1000))
        else:  # code_500, error: a business answer in the action's own envelope
            code = fault.code or "500"
            response = self._business(call, code)
        self._record(call, response.status_code, code, fault=name)
        return self._answer(response, request)

    def _business(self, call: _CallDraft, code: str, data: Mapping[str, Any] | None = None) -> httpx.Response:
        """A business answer (HTTP 200) in the envelope of the call's API."""
        message = protocol.business_message(code)
        if call.wire.action == protocol.SAF_ACTION:
            wire_code: int | str = int(code) if code.isdigit() else code
            keys = ("Code", "Message", "RequestId", "Data")
            if self.saf_style == "lower":
                keys = ("code", "message", "requestId", "data")
            payload: dict[str, Any] = {keys[0]: wire_code, keys[1]: message, keys[2]: call.request_id}
            if data is not None:
                payload[keys[3]] = (
                    json.dumps(data, ensure_ascii=False) if self.saf_data_as_string else dict(data)
                )
            return protocol.json_response(200, payload)
        payload = {"Code": code, "Message": message, "RequestId": call.request_id}
        if data is not None:
            payload["ResultObject"] = dict(data)
        return protocol.json_response(200, payload)

    def _refuse(self, call: _CallDraft, code: str, detail: str) -> httpx.Response:
        self._record(call, 200, code, detail=detail)
        return self._business(call, code)

    def _record(
        self,
        call: _CallDraft,
        status: int | None,
        code: str | None,
        *,
        certify_id: str | None = None,
        fault: str | None = None,
        detail: str | None = None,
    ) -> None:
        self._calls.append(
            Call(
                action=call.action,
                host=call.wire.host,
                params=call.wire.params,
                status_code=status,
                code=code,
                request_id=call.request_id,
                certify_id=certify_id or call.requested_certify_id(),
                fault=fault,
                detail=detail,
                service_parameters=call.service_parameters(),
                headers=call.headers,
                at=call.at,
            )
        )

    def _new_certify_id(self) -> str:
        while True:
            certify_id = f"{self._ids.getrandbits(128):032x}"
            if certify_id not in self._sessions:
                return certify_id

    def _create_session(self, **fields: Any) -> Session:
        certify_id = self._new_certify_id()
        outcome = self._next.popleft() if self._next else None
        session = Session(
            certify_id=certify_id,
            outcome=outcome,
            scripted=outcome is not None,
            created_at=self.clock(),
            certify_url=self.certify_url.format(certify_id=certify_id),
            **fields,
        )
        self._sessions[certify_id] = session
        self._settle(session)
        return session

    def _check_common(
        self,
        scene_id: str,
        outer_order_no: str,
        cert_no: str,
        encrypt_type: str | None,
        callback_url: str | None,
    ) -> tuple[str, str] | None:
        """``(code, detail)`` when an init parameter shared by both APIs is illegal."""
        if not _SCENE_ID.fullmatch(scene_id):
            return "401", "SceneId must be a number"
        if not _OUTER_ORDER_NO.fullmatch(outer_order_no):
            return "401", "OuterOrderNo must be 1-32 letters or digits"
        if (encrypt_type or "").upper() != "SM2" and not _CERT_NO.fullmatch(cert_no):
            return "401", "CertNo must be 15 digits, or 17 digits and a digit or X"
        if encrypt_type is not None and encrypt_type.upper() != "SM2":
            return "401", "EncryptType must be SM2"
        if callback_url is not None:
            scheme = urlsplit(callback_url).scheme.lower()
            allowed = ("https",) if self.https_callbacks_only else ("https", "http")
            if scheme not in allowed:
                return "401", "CallbackUrl must be an https URL"
        if self.scene_ids is not None and scene_id not in self.scene_ids:
            return "404", "unknown SceneId"
        return None

    def _init_face_verify(self, call: _CallDraft) -> httpx.Response:
        p = call.wire.params
        missing = [name for name in INIT_REQUIRED if not p.get(name)]
        if missing:
            return self._refuse(call, "400", f"missing {', '.join(missing)}")
        problem = self._check_common(
            p["SceneId"], p["OuterOrderNo"], p["CertNo"], p.get("EncryptType"), p.get("CallbackUrl")
        )
        if problem is None:
            if p["ProductCode"] not in PRODUCT_CODES:
                problem = ("401", "unknown ProductCode")
            elif p["CertType"] not in CERT_TYPES:
                problem = ("401", "CertType must be IDENTITY_CARD")
            elif p.get("Model") is not None and p["Model"] not in MODELS:
                problem = ("401", "unknown Model")
            elif p.get("MetaInfo") is not None and not _is_json_object(p["MetaInfo"]):
                problem = ("401", "MetaInfo must be a JSON object")
        if problem is not None:
            return self._refuse(call, *problem)
        session = self._create_session(
            outer_order_no=p["OuterOrderNo"],
            scene_id=p["SceneId"],
            cert_name=p["CertName"],
            cert_no=p["CertNo"],
            return_url=p.get("ReturnUrl"),
            callback_url=p.get("CallbackUrl"),
            callback_token=p.get("CallbackToken"),
            api="cloudauth",
            product_code=p["ProductCode"],
            meta_info=p.get("MetaInfo"),
        )
        self._record(call, 200, "200", certify_id=session.certify_id)
        return self._business(
            call, "200", {"CertifyId": session.certify_id, "CertifyUrl": session.certify_url}
        )

    def _lookup(self, call: _CallDraft, certify_id: str, scene_id: str, api: str) -> Session | httpx.Response:
        if self.scene_ids is not None and scene_id not in self.scene_ids:
            return self._refuse(call, "404", "unknown SceneId")
        session = self._sessions.get(certify_id)
        if session is None or session.api != api or session.scene_id != scene_id:
            return self._refuse(call, "406", "certify id not issued for this scene and API")
        return session

    def _verdict(
        self, call: _CallDraft, found: Session, data: Callable[[], dict[str, Any]]
    ) -> httpx.Response:
        """Code 424 while the session is not finished, else Code 200 with the verdict ``data()``."""
        if not self._describe(found):
            self._record(call, 200, "424", certify_id=found.certify_id, detail="not finished")
            return self._business(call, "424")
        self._record(call, 200, "200", certify_id=found.certify_id)
        return self._business(call, "200", data())

    def _describe_face_verify(self, call: _CallDraft) -> httpx.Response:
        p = call.wire.params
        missing = [name for name in DESCRIBE_REQUIRED if not p.get(name)]
        if missing:
            return self._refuse(call, "400", f"missing {', '.join(missing)}")
        found = self._lookup(call, p["CertifyId"], p["SceneId"], "cloudauth")
        if not isinstance(found, Session):
            return found
        return self._verdict(
            call,
            found,
            lambda: {
                "Passed": "T" if found.passed else "F",
                "SubCode": found.sub_code,
                "MaterialInfo": _material_info(found),
                "IdentityInfo": "null",
                "DeviceToken": f"sandbox-device-{found.certify_id[:12]}",
                "Success": "True",
                "UserInfo": "",
            },
        )

    def _execute_request(self, call: _CallDraft) -> httpx.Response:
        p = call.wire.params
        if not p.get("Service") or p.get("ServiceParameters") is None:
            return self._refuse(call, "400", "missing Service or ServiceParameters")
        if p["Service"] != protocol.SAF_SERVICE:
            return self._refuse(call, "401", f"Service must be {protocol.SAF_SERVICE}")
        sp = call.service_parameters()
        if not sp:
            return self._refuse(call, "401", "ServiceParameters must be a JSON object")
        method = sp.get("method")
        if method == "init":
            return self._saf_init(call, sp)
        if method == "query":
            return self._saf_query(call, sp)
        if method is None:
            return self._refuse(call, "400", "missing method")
        return self._refuse(call, "401", "method must be init or query")

    def _saf_init(self, call: _CallDraft, sp: dict[str, Any]) -> httpx.Response:
        values = {key: _text(value) for key, value in sp.items()}
        missing = [name for name in SAF_INIT_REQUIRED if not values.get(name)]
        if missing:
            return self._refuse(call, "400", f"missing {', '.join(missing)}")
        scene_id = values["sceneId"] or ""
        order = values["outerOrderNo"] or ""
        cert_no = values["certNo"] or ""
        problem = self._check_common(
            scene_id, order, cert_no, values.get("encryptType"), values.get("callbackUrl") or None
        )
        if problem is None:
            if values["bizCode"] not in SAF_BIZ_CODES:
                problem = ("401", "bizCode must be FACE")
            elif values["identityType"] != "CERT_INFO":
                problem = ("401", "identityType must be CERT_INFO")
            elif values["certType"] not in CERT_TYPES:
                problem = ("401", "certType must be IDENTITY_CARD")
        if problem is not None:
            return self._refuse(call, *problem)
        session = self._create_session(
            outer_order_no=order,
            scene_id=scene_id,
            cert_name=values["certName"] or "",
            cert_no=cert_no,
            return_url=values.get("returnUrl"),
            callback_url=values.get("callbackUrl") or None,
            callback_token=values.get("callbackToken") or None,
            api="saf",
            meta_info=values.get("metaInfo"),
        )
        self._record(call, 200, "200", certify_id=session.certify_id)
        data = {"certifyId": session.certify_id, "certifyUrl": session.certify_url}
        return self._business(call, "200", data)

    def _saf_query(self, call: _CallDraft, sp: dict[str, Any]) -> httpx.Response:
        values = {key: _text(value) for key, value in sp.items()}
        missing = [name for name in SAF_QUERY_REQUIRED if not values.get(name)]
        if missing:
            return self._refuse(call, "400", f"missing {', '.join(missing)}")
        found = self._lookup(call, values["certifyId"] or "", values["sceneId"] or "", "saf")
        if not isinstance(found, Session):
            return found
        return self._verdict(
            call,
            found,
            lambda: {
                "passed": "T" if found.passed else "F",
                "subCode": found.sub_code,
                "materialInfo": _material_info(found),
            },
        )


@dataclass
class _CallDraft:
    """What is known about a call before its answer: enough to record it however it ends."""

    wire: WireRequest
    action: str
    request_id: str
    at: float
    headers: dict[str, str]
    _service_parameters: dict[str, Any] | None = None

    def requested_certify_id(self) -> str | None:
        """The certify id a describe/query asks about, so even refused or faulted calls name it."""
        if self.wire.action == "DescribeFaceVerify":
            return self.wire.params.get("CertifyId") or None
        if self.action == f"{protocol.SAF_ACTION}:query":
            return _text(self.service_parameters().get("certifyId")) or None
        return None

    def service_parameters(self) -> dict[str, Any]:
        """SAF ``ServiceParameters`` decoded (empty when absent or not a JSON object)."""
        if self._service_parameters is None:
            parsed: Any = None
            raw = self.wire.params.get("ServiceParameters")
            if raw is not None:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
            self._service_parameters = parsed if isinstance(parsed, dict) else {}
        return self._service_parameters


def _is_json_object(value: str) -> bool:
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _material_info(session: Session) -> str:
    """``MaterialInfo`` is a JSON *string* on the wire (reference §2.2); scores follow the verdict."""
    passed = bool(session.passed)
    return json.dumps(
        {
            "faceAttack": "F" if passed or session.sub_code != "205" else "T",
            "faceOcclusion": "F",
            "facialPictureFront": {
                "qualityScore": 88.36,
                "verifyScore": 93.2 if passed else 12.5,
                "faceAttackScore": 0.01,
            },
        },
        separators=(",", ":"),
    )


class FakeTransport(httpx.BaseTransport):
    """httpx transport that hands every request to a :class:`FakeCloud` (no sockets involved)."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.cloud.handle(request)


__all__ = [
    "Call",
    "Fault",
    "FakeCloud",
    "FakeTransport",
    "Outcome",
    "Session",
    "SessionExpired",
    "mask",
]
