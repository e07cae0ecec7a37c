"""Durable outcome signals: sent by the transition's winner, re-sent by reconcile until delivered.

The rule (docs/security.md states it for integrators): a terminal record's outcome signal
(``certify_passed``, ``certify_failed``, ``certify_expired``) is *delivered* once every receiver
returned; only then does the record get ``delivered_at`` (a compare-and-set on its terminal
status, so a record that is somehow not in that status any more is left alone). In normal
operation the worker that won the transition sends it once and marks it, and nothing sends it
again. When that worker dies between the stored transition and the mark (a crash, a killed
process, a deploy) or a receiver raises, the record stays undelivered and ``flask alicertify
reconcile`` sends the signal again, with the same ``record.id``, until it is delivered: at
least once, never silently lost. Receivers that must not act twice key on ``record.id``.

A raising receiver never turns a stored verdict into an error answer: the exception is logged
(its type and the receiver code's file and line, never its message, arguments or frame locals,
which are the app's data and may be personal) and the caller answers what is stored.
``certify_initiated`` and ``certify_abandoned`` are sent the same way but are not durable:
they announce non-terminal states that a later signal supersedes.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any

from blinker import Signal

from . import signals
from .records import Record
from .records import Status
from .storage.base import Storage

logger = logging.getLogger("flask_alicertify")

#: How long after its transition an undelivered record is left to the worker that made it.
#: Longer than a request can live (gunicorn kills a worker after 30 s by default; a killed worker
#: is exactly the crash redelivery is for), so reconcile does not re-send a signal whose
#: receivers are still running; short enough that the next reconcile run (cron, every few
#: minutes) picks up a lost one.
REDELIVER_AFTER = timedelta(seconds=60)

#: The signal that announces each terminal status (``init_failed`` has none: nothing was
#: verified, and the init request itself answered the error).
OUTCOME_SIGNALS: Mapping[Status, Signal] = {
    Status.PASSED: signals.certify_passed,
    Status.FAILED: signals.certify_failed,
    Status.EXPIRED: signals.certify_expired,
}


class Announcer:
    """Sends one instance's signals and records their delivery.

    :param sender: returns the signal sender (the Flask app, through a weak reference).
    :param extension: passed to receivers as ``extension`` (the ``AliCertify`` object).
    """

    def __init__(
        self,
        storage: Storage,
        clock: Callable[[], datetime],
        sender: Callable[[], Any],
        extension: object,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.sender = sender
        self.extension = extension

    def send(self, signal: Signal, record: Record) -> bool:
        """Send ``signal`` for ``record``; True when every receiver returned."""
        try:
            signal.send(self.sender(), record=record, extension=self.extension, user_id=record.typed_user_id)
        except Exception as e:  # noqa: BLE001 - a receiver's bug must not undo a stored verdict
            logger.error(
                "record %s: a %s receiver raised %s%s; %s",
                record.id,
                getattr(signal, "name", "signal"),
                type(e).__qualname__,
                _where(e),
                "reconcile sends it again" if record.terminal else "it is not sent again",
            )
            return False
        return True

    def announce(self, record: Record) -> Record:
        """Send a terminal record's outcome signal and mark it delivered when every receiver
        returned; answer the record as stored (with ``delivered_at`` when it was marked)."""
        signal = OUTCOME_SIGNALS.get(record.status)
        if signal is not None and not self.send(signal, record):
            return record
        marked = self.storage.update(record.id, expect={record.status}, delivered_at=self.clock())
        return marked if marked is not None else record


def _where(e: BaseException) -> str:
    """`` at file:line in function`` of the innermost frame: enough to find the bug, without the
    exception's message or any frame's locals."""
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
