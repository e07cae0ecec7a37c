"""A stateful fake of Alibaba Cloud's ID-verification APIs that speaks the real wire protocol.

One :class:`FakeCloud` answers both APIs at once, whatever the app under test is configured
for: cloudauth ``InitFaceVerify``/``DescribeFaceVerify``/``DeleteFaceVerifyResult`` (2019-03-07)
and SAF ``ExecuteRequest`` ``fin_face_verify``. It checks the V3 signature of every request like
Alibaba's gateway, decrypts SM2-encrypted identities with its test key pair, can enforce
Alibaba's QPS limits, and answers with Alibaba's envelopes and codes. Tests script what the user
does (:class:`Outcome`) and what goes wrong on the way (:class:`Fault`), then inspect every call
(:class:`Call`).

This module is the cloud itself: its state, one lock, dispatch and fault injection. Each API's
parameters and answers live in :mod:`.cloudauth_api` and :mod:`.saf_api`, the wire rules in
:mod:`.protocol`, the values in :mod:`.values`. The fake is reachable three ways:
:meth:`FakeCloud.handle` / :meth:`FakeCloud.transport` for httpx, :attr:`FakeCloud.wsgi`, and
:meth:`FakeCloud.serve` for real HTTP on loopback (the official SDK talks to that). No Flask
here: the extension, the pytest plugin and the CLI share it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any
from typing import Literal

import httpx

from ..identity import mask_cert_no
from . import cloudauth_api
from . import protocol
from . import saf_api
from . import server
from .api_common import Deletion
from .api_common import Incoming
from .api_common import NewSession
from .api_common import Refusal
from .api_common import check_scene
from .encryption import SANDBOX_SM2_PRIVATE_KEY
from .encryption import SANDBOX_SM2_PUBLIC_KEY
from .faults import FaultPlan
from .faults import action_matches
from .faults import fault_response
from .faults import normalise_host
from .faults import transport_error
from .limits import QpsLimiter
from .links import LinkSigner
from .protocol import GatewayError
from .transport import FakeTransport
from .values import Call
from .values import Fault
from .values import Outcome
from .values import Session
from .values import SessionDecided
from .values import SessionExpired
from .values import wall_clock

#: The ID-number masking rule under its old name: :func:`flask_alicertify.identity.mask_cert_no`
#: (first and last character kept). Names are masked with ``identity.mask_cert_name``.
mask = mask_cert_no

DEFAULT_ACCESS_KEY_ID = "LTAI5tFakeAccessKeyId0001"
DEFAULT_ACCESS_KEY_SECRET = "fake-secret"
DEFAULT_CERTIFY_URL = "https://sandbox.alicertify.invalid/certify/{certify_id}"


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
    :param clock: seconds since the epoch; inject one to test the 30-minute expiry. By default the
        wall clock, read through the standard library at every call (:func:`wall_clock`).
    :param timeout_seconds: how long the loopback server stalls for :meth:`Fault.timeout`.
    :param https_callbacks_only: Alibaba refuses a CallbackUrl that is not https (Code 401);
        switch off for a local demo whose callback is plain http.
    :param sm2_private_key: decrypts ``EncryptType=SM2`` identities (hex); the sandbox's fixed
        test key by default, whose public half is :attr:`sm2_public_key`. None: every encrypted
        init answers Code 501.
    :param sm2_public_key: the public key apps must encrypt to (``ALICERTIFY_SM2_PUBLIC_KEY``);
        give it with your own ``sm2_private_key``.
    :param qps: per-action calls allowed in any one second (e.g. :data:`.limits.ALIBABA_QPS`);
        calls beyond answer HTTP 429 ``Throttling.User``. Off (None) by default.
    :param latency: seconds every API call waits before it is answered (outside the lock), the
        round trip and work of the real service, for load tests.
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
        clock: Callable[[], float] | None = None,
        timeout_seconds: float = 2.0,
        https_callbacks_only: bool = True,
        sm2_private_key: str | None = SANDBOX_SM2_PRIVATE_KEY,
        sm2_public_key: str | None = None,
        qps: Mapping[str, float] | None = None,
        latency: float = 0.0,
    ) -> None:
        if saf_style not in ("upper", "lower"):
            raise ValueError("saf_style must be 'upper' or 'lower'")
        if "{certify_id}" not in certify_url:
            raise ValueError("certify_url must contain '{certify_id}'")
        if latency < 0:
            raise ValueError("latency must be >= 0")
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
        self.clock: Callable[[], float] = clock if clock is not None else wall_clock
        self.timeout_seconds = timeout_seconds
        self.https_callbacks_only = https_callbacks_only
        self.sm2_private_key = sm2_private_key
        self.sm2_public_key = sm2_public_key or (
            SANDBOX_SM2_PUBLIC_KEY if sm2_private_key == SANDBOX_SM2_PRIVATE_KEY else None
        )
        self.latency = latency
        self.links = LinkSigner()
        self._limiter = QpsLimiter(qps) if qps else None
        self._lock = threading.RLock()
        self._reset_state()

    def _reset_state(self) -> None:
        self._ids = random.Random(self.seed)
        self._request_ids = random.Random(None if self.seed is None else f"request-ids:{self.seed}")
        self._sessions: dict[str, Session] = {}
        self._calls: list[Call] = []
        self._next: deque[Outcome] = deque()
        self._faults = FaultPlan()
        self._connections_opened = 0
        self._deleted: list[str] = []

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
            return [c for c in self._calls if action_matches(action, c.action)]

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

    def connection_accepted(self) -> None:
        """Count one TCP connection; the loopback server of :meth:`serve` calls this."""
        with self._lock:
            self._connections_opened += 1

    @property
    def deleted(self) -> list[str]:
        """Certify ids whose data DeleteFaceVerifyResult removed, in the order it happened."""
        with self._lock:
            return list(self._deleted)

    def check_link(self, certify_id: str, token: str | None) -> bool:
        """True when ``token`` is the secret of the certify URL this fake issued for ``certify_id``.

        False for a certify id it never issued, so a guessed id and a guessed token look alike.
        """
        with self._lock:
            known = certify_id in self._sessions
        return known and self.links.check(certify_id, token)

    def is_expired(self, certify_id: str) -> bool:
        with self._lock:
            return self._session(certify_id).expired(self.clock())

    def callback_url(self, certify_id: str) -> str | None:
        """The GET Alibaba would send to the CallbackUrl once the user finished, else None.

        ``passed`` carries the SubCode, as the cloudauth docs describe the callback (docs/apis.md
        lists what is not confirmed about it).
        """
        with self._lock:
            return self._session(certify_id).callback_request_url()

    def unconsumed(self) -> list[str]:
        """Scripted outcomes and faults a test set up but the code under test never reached."""
        with self._lock:
            out = [f"script_next({outcome}): no Init created a session for it" for outcome in self._next]
            out.extend(note for session in self._sessions.values() if (note := session.unconsumed()))
            out.extend(self._faults.unconsumed())
            return out

    # -- scripting --------------------------------------------------------------------------

    def script_next(self, outcome: Outcome) -> None:
        """The next session an Init creates ends as ``outcome`` (FIFO when called repeatedly)."""
        with self._lock:
            self._next.append(outcome)

    def script(self, certify_id: str, outcome: Outcome) -> None:
        """Session ``certify_id`` ends as ``outcome``.

        :raises SessionDecided: (a ``ValueError``) once its verdict has been described.
        """
        with self._lock:
            self._session(certify_id).rescript(outcome, self.clock())

    def complete(self, certify_id: str, passed: bool = True, sub_code: str | None = None) -> Session:
        """The user finishes now (the sandbox certify page calls this).

        Repeating the same verdict is a no-op.

        :raises SessionExpired: after 30 minutes.
        :raises SessionDecided: when a different verdict was already described (Alibaba's
            verdicts never change). Both are ``ValueError`` subclasses.
        """
        sub = sub_code or ("200" if passed else "204")
        outcome = Outcome.passes(sub) if passed else Outcome.fails(sub)
        with self._lock:
            session = self._session(certify_id)
            session.complete(outcome, self.clock())
            return session

    def inject(
        self, fault: Fault, times: int = 1, action: str | None = None, host: str | None = None
    ) -> None:
        """The next ``times`` calls matching ``action``/``host`` fail with ``fault`` (in injection order)."""
        with self._lock:
            self._faults.inject(fault, times, action, host)

    def endpoint_down(self, host: str) -> None:
        """Every call to ``host`` fails to connect until :meth:`endpoint_up`."""
        with self._lock:
            self._faults.endpoint_down(host)

    def endpoint_up(self, host: str) -> None:
        with self._lock:
            self._faults.endpoint_up(host)

    def reset(self) -> None:
        """Forget everything: sessions, calls, scripts, faults, downed endpoints, QPS windows; re-seed ids."""
        with self._lock:
            self._reset_state()
            if self._limiter is not None:
                self._limiter.reset()

    # -- ways in ------------------------------------------------------------------------------

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport answering from this fake: ``httpx.Client(transport=cloud.transport())``."""
        return FakeTransport(self)

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The same protocol as a plain WSGI application.

        Injected timeouts stall ``timeout_seconds`` and answer 504; a WSGI app cannot drop its
        connection, so injected connect errors and downed endpoints answer 502 with an empty body.
        """
        return server.wsgi_app(self, environ, start_response)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> AbstractContextManager[str]:
        """Serve over real HTTP/1.1 (keep-alive) on loopback; yields ``"http://127.0.0.1:PORT"``."""
        return server.serve(self, host=host, port=port)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request exactly as Alibaba would, or raise the httpx error of an injected fault."""
        wire = protocol.read_request(request)
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            request_id = str(uuid.UUID(int=self._request_ids.getrandbits(128), version=4)).upper()
            call = Incoming.read(wire, request_id, self.clock())
            host = normalise_host(wire.host)
            if self._faults.is_down(host):
                self._record(call, None, None, fault="endpoint_down")
                raise httpx.ConnectError(f"[fake] endpoint {wire.host} is down", request=request)
            fault = self._faults.take(call.action, host)
            if fault is not None:
                return self._apply_fault(fault, request, call)
            try:
                protocol.check_gateway(
                    request,
                    wire,
                    access_key_id=self.access_key_id,
                    access_key_secret=self.access_key_secret,
                    security_token=self.security_token,
                )
            except GatewayError as exc:
                self._record(call, exc.status, exc.code, detail=exc.message)
                return self._answer(
                    protocol.gateway_error(exc.status, exc.code, exc.message, request_id, wire.host), request
                )
            wait = self._limiter.take(call.action) if self._limiter is not None else None
            if wait is not None:
                response, code = fault_response(Fault.throttle(wait), call, lambda c: self._business(call, c))
                self._record(call, response.status_code, code, fault="qps_limit")
                return self._answer(response, request)
            return self._answer(self._dispatch(call), request)

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

    def _dispatch(self, call: Incoming) -> httpx.Response:
        """Let the call's API decide, then carry the decision out on the shared state.

        Both APIs are always served: ``check_version`` has already refused any other action.
        """
        handle = saf_api.handle if call.wire.action == protocol.SAF_ACTION else cloudauth_api.handle
        decision = handle(call, self)
        if isinstance(decision, Refusal):
            return self._refuse(call, decision)
        if isinstance(decision, NewSession):
            session = self._open(decision)
            self._record(call, 200, "200", certify_id=session.certify_id)
            return self._business(call, "200", decision.answer(session))
        if isinstance(decision, Deletion):
            return self._delete(call, decision)
        refusal = check_scene(self, decision.scene_id)
        if refusal is not None:
            return self._refuse(call, refusal)
        found = self._sessions.get(decision.certify_id)
        if found is None or found.api != decision.api or found.scene_id != decision.scene_id:
            return self._refuse(call, Refusal("406", "certify id not issued for this scene and API"))
        if not found.describe(self.clock()):
            self._record(call, 200, "424", certify_id=found.certify_id, detail="not finished")
            return self._business(call, "424")
        self._record(call, 200, "200", certify_id=found.certify_id)
        return self._business(call, "200", decision.answer(found))

    def _delete(self, call: Incoming, decision: Deletion) -> httpx.Response:
        session = self._sessions.get(decision.certify_id)
        if session is None or session.api != "cloudauth":
            return self._refuse(call, Refusal("406", "certify id not issued by InitFaceVerify"))
        reason = session.delete(decision.after_query, self.clock())
        if reason is None:
            self._deleted.append(session.certify_id)
        self._record(call, 200, "200", certify_id=session.certify_id, detail=reason)
        return self._business(call, "200", cloudauth_api.delete_answer(session.certify_id, reason))

    def _open(self, decision: NewSession) -> Session:
        while True:
            certify_id = f"{self._ids.getrandbits(128):032x}"
            if certify_id not in self._sessions:
                break
        outcome = self._next.popleft() if self._next else None
        session = decision.open(
            certify_id, created_at=self.clock(), certify_url=self.links.url(self.certify_url, certify_id)
        )
        session.outcome, session.scripted = outcome, outcome is not None
        self._sessions[certify_id] = session
        session.settle(self.clock())
        return session

    def _apply_fault(self, fault: Fault, request: httpx.Request, call: Incoming) -> httpx.Response:
        error = transport_error(fault, request)
        if error is not None:
            self._record(call, None, None, fault=str(fault))
            raise error
        response, code = fault_response(
            fault, call, lambda business_code: self._business(call, business_code)
        )
        self._record(call, response.status_code, code, fault=str(fault))
        return self._answer(response, request)

    def _business(self, call: Incoming, code: str, data: Mapping[str, Any] | None = None) -> httpx.Response:
        """A business answer (HTTP 200) in the envelope of the call's API."""
        if call.wire.action == protocol.SAF_ACTION:
            return saf_api.envelope(
                code,
                call.request_id,
                data,
                lower=self.saf_style == "lower",
                data_as_string=self.saf_data_as_string,
            )
        return cloudauth_api.envelope(code, call.request_id, data)

    def _refuse(self, call: Incoming, refusal: Refusal) -> httpx.Response:
        self._record(call, 200, refusal.code, detail=refusal.detail)
        return self._business(call, refusal.code)

    def _record(
        self,
        call: Incoming,
        status: int | None,
        code: str | None,
        *,
        certify_id: str | None = None,
        fault: str | None = None,
        detail: str | None = None,
    ) -> None:
        self._calls.append(call.recorded(status, code, certify_id=certify_id, fault=fault, detail=detail))


__all__ = ["Call", "FakeCloud", "FakeTransport", "Fault", "Outcome"]
__all__ += ["Session", "SessionDecided", "SessionExpired", "mask", "wall_clock"]
