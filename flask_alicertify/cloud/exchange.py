"""One HTTP exchange with Alibaba that never raises: an answer, or a plain description of the fault.

Why "never raises": an httpx exception's traceback holds the frames that built and sent the
request, and their locals hold the request itself, whose URL carries CertName and CertNo when
SM2 is off. Error trackers that record frame locals (sentry-sdk does by default) would store
them. So the request lives only in :func:`exchange`'s frame (and httpx's below it); a failure is
turned into a :class:`Fault` of plain strings there, the exception is dropped with the frames,
and the caller raises its typed error from a frame that holds masked parameters only, outside
any ``except`` block (so with no ``__context__`` either).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import httpx

from .deadline import AnswerTooLarge
from .deadline import BadEncoding
from .deadline import attempt_deadline
from .deadline import read_capped
from .envelope import clean_token
from .errors import CloudError
from .redact import redact

__all__ = ["Answer", "Fault", "describe", "exchange"]


class Answer(NamedTuple):
    status: int
    headers: httpx.Headers
    content: bytes


class Fault(NamedTuple):
    """What went wrong in one exchange, as plain text: no exception, frame or request kept."""

    kind: str  # "timeout" | "transport" | "encoding" | "too_large" | "request" | "cloud"
    message: str
    status: int | None = None
    request_id: str | None = None
    error: CloudError | None = None


def describe(exc: BaseException) -> str:
    """``Type: message`` with sensitive parameter values redacted, at most 200 characters of message."""
    text = redact(str(exc))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def exchange(
    client: httpx.Client,
    build: Callable[[], httpx.Request],
    *,
    attempt_timeout: float,
    cap: int,
) -> Answer | Fault:
    """Build, send and read one attempt within ``attempt_timeout`` seconds and ``cap`` bytes."""
    try:
        request = build()
    except CloudError as exc:  # CredentialsMissing from the provider: already ours and clean
        return Fault("cloud", exc.message, error=exc)
    except Exception as exc:
        # Only the type: an encoding error's message quotes the offending characters.
        return Fault("request", f"the request could not be encoded ({type(exc).__name__})")
    with attempt_deadline(attempt_timeout):
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            return Fault("timeout", f"timed out ({type(exc).__name__})")
        except httpx.DecodingError as exc:
            return Fault("encoding", f"undecodable answer ({describe(exc)})")
        except Exception as exc:  # TransportError, ProtocolError, a custom transport's bug...
            return Fault("transport", describe(exc))
        status, headers = response.status_code, response.headers
        request_id = clean_token(headers.get("x-acs-request-id"))
        try:
            content = read_capped(response, cap)
        except AnswerTooLarge as exc:
            return Fault("too_large", str(exc), status, request_id)
        except (BadEncoding, httpx.DecodingError) as exc:
            return Fault("encoding", f"undecodable answer ({describe(exc)})", status, request_id)
        except httpx.TimeoutException as exc:
            return Fault("timeout", f"timed out reading the answer ({type(exc).__name__})")
        except Exception as exc:
            return Fault("transport", f"reading the answer: {describe(exc)}", status, request_id)
        finally:
            try:
                response.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass
    return Answer(status, headers, content)
