"""The object the ``alicertify_cloud`` fixture yields: the sandbox's fake cloud, made readable.

It wraps :class:`flask_alicertify.sandbox.fake.FakeCloud` (the same fake that serves sandbox
mode, so the kit and the demo can never disagree) and plugs it into pytest-httpx with one
optional, reusable callback: the user's own ``httpx_mock`` expectations keep working beside it.

The fake answers cloudauth and SAF at once, so the app under test talks to whichever API its
own ``ALICERTIFY_API`` names; every inspection helper here reads the calls of both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx

from flask_alicertify.identity import mask_cert_name
from flask_alicertify.identity import mask_cert_no
from flask_alicertify.sandbox.fake import Call
from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.sandbox.fake import Fault
from flask_alicertify.sandbox.fake import Outcome

from .options import DEFAULTS

#: Every Alibaba Cloud endpoint the gateways may call (cloudauth and SAF, any region, VPC, dual stack).
ALIYUN_URL = re.compile(r"^https?://(cloudauth|saf)[a-z0-9.-]*\.aliyuncs\.com(:\d+)?(/.*)?$")

#: Each API's (init, describe) actions, as :attr:`Call.action` names them.
ACTIONS = {
    "cloudauth": ("InitFaceVerify", "DescribeFaceVerify"),
    "saf": ("ExecuteRequest:init", "ExecuteRequest:query"),
}
INIT_ACTIONS = frozenset(init for init, _ in ACTIONS.values())
DESCRIBE_ACTIONS = frozenset(describe for _, describe in ACTIONS.values())
_API_OF_ACTION = {action: api for api, actions in ACTIONS.items() for action in actions}


@dataclass(frozen=True)
class InitParams:
    """What the app sent to Init. ``cert_no``/``cert_name`` are readable but never printed."""

    outer_order_no: str
    scene_id: str
    cert_name: str = field(repr=False)
    cert_no: str = field(repr=False)
    return_url: str | None = None
    callback_url: str | None = None
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: ``"SM2"`` when the app sent the identity encrypted; ``cert_name``/``cert_no`` are then
    #: what the fake decrypted (and ``params`` holds the ciphertexts as sent).
    encrypt_type: str | None = None

    def __repr__(self) -> str:
        return (
            f"InitParams(outer_order_no={self.outer_order_no!r}, scene_id={self.scene_id!r}, "
            f"cert_name={mask_cert_name(self.cert_name)!r}, cert_no={mask_cert_no(self.cert_no)!r}, "
            f"return_url={self.return_url!r}, callback_url={self.callback_url!r}, "
            f"encrypt_type={self.encrypt_type!r})"
        )


class AliCertifyCloud:
    """Script what Alibaba answers, then inspect what the app sent.

    Scripting reads as sentences: ``cloud.pass_next()``, ``cloud.fail_next("204")``,
    ``cloud.pending_next()``, ``cloud.fail_with(Fault.timeout())``.
    """

    def __init__(
        self,
        *,
        scene_id: str = DEFAULTS.scene_id,
        access_key_id: str = DEFAULTS.access_key_id,
        access_key_secret: str = DEFAULTS.access_key_secret,
        seed: int | None = DEFAULTS.seed,
    ) -> None:
        self.scene_id = scene_id
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.fake = FakeCloud(access_key_id=access_key_id, access_key_secret=access_key_secret, seed=seed)

    # -- wiring ---------------------------------------------------------------------------

    @property
    def sm2_public_key(self) -> str:
        """The public key of the fake's SM2 test pair: what an app must encrypt CertName/CertNo to."""
        key = self.fake.sm2_public_key
        assert key is not None
        return key

    @property
    def app_config(self) -> dict[str, Any]:
        """``ALICERTIFY_*`` settings that point an app at this fake (merge into your test config).

        The scene id, the key pair, and the fake's SM2 public key (used only when the app sets
        ``ALICERTIFY_ENCRYPT_TYPE = "SM2"``: the fake decrypts with its own private key, as
        Alibaba does with its own). ``ALICERTIFY_API`` stays the app's own choice, since the fake
        answers both APIs.
        """
        return {
            "ALICERTIFY_SCENE_ID": self.scene_id,
            "ALICERTIFY_ACCESS_KEY_ID": self.access_key_id,
            "ALICERTIFY_ACCESS_KEY_SECRET": self.access_key_secret,
            "ALICERTIFY_SM2_PUBLIC_KEY": self.sm2_public_key,
        }

    def install(self, httpx_mock: Any) -> None:
        """Serve every httpx request to an Alibaba endpoint from the fake."""
        httpx_mock.add_callback(self._callback, url=ALIYUN_URL, is_optional=True, is_reusable=True)

    def _callback(self, request: httpx.Request) -> httpx.Response:
        return self.fake.handle(request)

    # -- scripting ------------------------------------------------------------------------

    def pass_next(self, sub_code: str = "200", *, after: int = 0) -> None:
        """The next session passes (after ``after`` "not finished" describes)."""
        self.fake.script_next(Outcome.passes(sub_code, after=after))

    def fail_next(self, sub_code: str = "204", *, after: int = 0) -> None:
        """The next session fails with ``sub_code`` (201–206, or any other)."""
        self.fake.script_next(Outcome.fails(sub_code, after=after))

    def pending_next(self) -> None:
        """The next session never finishes: every describe answers Code 424."""
        self.fake.script_next(Outcome.never_finishes())

    def script_next(self, outcome: Outcome) -> None:
        self.fake.script_next(outcome)

    def script(self, certify_id: str, outcome: Outcome) -> None:
        """Decide the outcome of a session that already exists."""
        self.fake.script(certify_id, outcome)

    def complete(self, certify_id: str, *, passed: bool = True, sub_code: str | None = None) -> None:
        """The user finishes the face scan now."""
        self.fake.complete(certify_id, passed=passed, sub_code=sub_code)

    def fail_with(
        self, fault: Fault, *, times: int = 1, action: str | None = None, host: str | None = None
    ) -> None:
        """The next ``times`` matching calls fail this way (see :class:`Fault`)."""
        self.fake.inject(fault, times=times, action=action, host=host)

    def error_next(self, code: str, *, action: str | None = None, times: int = 1) -> None:
        """HTTP 200 with business ``Code`` (e.g. "417", "418", "427") for the next matching calls."""
        self.fail_with(Fault.error(code=code), times=times, action=action)

    def endpoint_down(self, host: str) -> None:
        self.fake.endpoint_down(host)

    # -- inspection -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return list(self.fake.calls)

    def calls_for(self, action: str) -> list[Call]:
        return list(self.fake.calls_for(action))

    @property
    def init_calls(self) -> list[Call]:
        """Every Init the app sent: ``InitFaceVerify`` and SAF ``ExecuteRequest:init``."""
        return [call for call in self.fake.calls if call.action in INIT_ACTIONS]

    @property
    def describe_calls(self) -> list[Call]:
        """Every verdict query: ``DescribeFaceVerify`` and SAF ``ExecuteRequest:query``."""
        return [call for call in self.fake.calls if call.action in DESCRIBE_ACTIONS]

    @property
    def api(self) -> str | None:
        """The API (``"cloudauth"`` or ``"saf"``) of the app's last Init or describe, else None."""
        for call in reversed(self.fake.calls):
            found = _API_OF_ACTION.get(call.action)
            if found is not None:
                return found
        return None

    @property
    def last_init(self) -> InitParams:
        """The parameters of the last accepted Init, ID number included (never in the repr)."""
        for call in reversed(self.init_calls):
            if call.certify_id:
                session = self.fake.sessions[call.certify_id]
                return InitParams(
                    outer_order_no=session.outer_order_no,
                    scene_id=session.scene_id,
                    cert_name=session.cert_name,
                    cert_no=session.cert_no,
                    return_url=session.return_url,
                    callback_url=session.callback_url,
                    params=dict(call.params),
                    encrypt_type=session.encrypt_type,
                )
        raise AssertionError("no successful InitFaceVerify (or SAF ExecuteRequest:init) call was made")

    @property
    def deleted(self) -> list[str]:
        """Certify ids whose data the app deleted at Alibaba (DeleteFaceVerifyResult), in order."""
        return self.fake.deleted

    @property
    def delete_calls(self) -> list[Call]:
        """Every DeleteFaceVerifyResult the app sent, accepted or not (``detail``: the FailReason)."""
        return self.fake.calls_for("DeleteFaceVerifyResult")

    def assert_deleted(self, certify_id: str) -> None:
        """Assert the app deleted this session's data at Alibaba."""
        assert certify_id in self.fake.deleted, (
            f"certify id {certify_id} was never deleted with DeleteFaceVerifyResult"
            f" ({len(self.delete_calls)} delete call(s) in all)"
        )

    def described(self, certify_id: str) -> int:
        """How many times the app asked Alibaba for this session's verdict."""
        return sum(1 for call in self.describe_calls if call.certify_id == certify_id)

    def assert_confirmed(self, certify_id: str) -> None:
        """Assert the app confirmed this certify id with Alibaba server-side (not just trusted the client)."""
        session = self.fake.sessions.get(certify_id)
        describe = ACTIONS[session.api][1] if session is not None else "DescribeFaceVerify"
        assert self.described(certify_id) > 0, (
            f"certify id {certify_id} was never confirmed with {describe}: the app trusted the client's claim"
        )

    def callback_url(self, certify_id: str) -> str | None:
        """The URL Alibaba would GET for this session's callback (None if none is due)."""
        return self.fake.callback_url(certify_id)

    def leftovers(self) -> list[str]:
        """Scripted outcomes and faults never used, and requests the fake had to reject."""
        problems = list(self.fake.unconsumed())
        for call in self.fake.calls:
            if call.fault is None and call.status_code is not None and 400 <= call.status_code < 500:
                why = f" ({call.detail})" if call.detail else ""
                problems.append(
                    f"{call.action or 'a request'} was rejected: HTTP {call.status_code} {call.code}{why}"
                )
        return problems
