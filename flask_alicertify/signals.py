"""Blinker signals for the outcomes an application reacts to.

Each signal is sent with the Flask app as sender and the record as the ``record`` keyword::

    from flask_alicertify import signals

    @signals.certify_passed.connect_via(app)
    def mark_verified(app, record, **extra):
        User.get(record.user_id).verified = True

A signal for a terminal outcome is sent exactly once per record, by whichever worker won the
atomic status transition in storage, however many result posts, callbacks and reconcile runs
see the same verdict. Receivers run inside that worker's request (or CLI command); a receiver
that raises does not undo the transition, which is already stored.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Alibaba accepted the Init call; the record is ``pending`` and has a certify id.
certify_initiated = _signals.signal("certify-initiated")
#: DescribeFaceVerify said ``Passed = "T"``; the record is ``passed``.
certify_passed = _signals.signal("certify-passed")
#: DescribeFaceVerify said the verification finished without passing; the record is ``failed``.
certify_failed = _signals.signal("certify-failed")
#: The client reported cancel / network error / business error and Alibaba says not finished.
#: Not terminal: a later verdict still sends ``certify_passed`` or ``certify_failed``.
certify_abandoned = _signals.signal("certify-abandoned")
#: The certify id outlived its 30-minute lifetime (plus grace) without a verdict (``reconcile``).
certify_expired = _signals.signal("certify-expired")

__all__ = [
    "certify_abandoned",
    "certify_expired",
    "certify_failed",
    "certify_initiated",
    "certify_passed",
]
