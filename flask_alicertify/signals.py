"""Blinker signals for the outcomes an application reacts to.

Each signal is sent with the Flask app as sender and three keywords: ``record`` (the
:class:`~flask_alicertify.records.Record`), ``extension`` (the ``AliCertify`` object, whose
``name`` tells instances apart) and ``user_id`` (the record's user id with the type the user
loader produced: an ``int`` stays an ``int``)::

    from flask_alicertify import signals

    @signals.certify_passed.connect_via(app)
    def mark_verified(app, record, user_id, **extra):
        User.get(user_id).verified = True

Delivery of the terminal outcomes (``certify_passed``, ``certify_failed``, ``certify_expired``)
is durable. The worker that wins the record's atomic status transition sends it, however many
result posts, callbacks and reconcile runs see the same verdict, and the record stores
``delivered_at`` once every receiver returned. When the worker dies before that, or a receiver
raises, ``flask alicertify reconcile`` sends it again later (same ``record.id``) until it is
delivered: exactly once in normal operation, at least once after a crash or a raising receiver,
so a receiver with side effects should be idempotent on ``record.id``. A receiver that raises
is logged (the exception's type and where it was raised, never its message) and never undoes
the transition or turns the request's answer into an error. ``certify_initiated`` and
``certify_abandoned`` are sent the same way but not re-sent.
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
