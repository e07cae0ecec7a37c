"""A stateful fake of Alibaba Cloud's ID-verification APIs, speaking the real wire protocol."""

from .fake import Call
from .fake import FakeCloud
from .fake import Fault
from .fake import Outcome
from .fake import Session
from .fake import SessionDecided
from .fake import SessionExpired
from .signing import sign_request

__all__ = [
    "Call",
    "FakeCloud",
    "Fault",
    "Outcome",
    "Session",
    "SessionDecided",
    "SessionExpired",
    "sign_request",
]
