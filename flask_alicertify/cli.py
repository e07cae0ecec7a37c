"""``flask alicertify ...``: schema setup, one-off describe, and the reconcile job.

Each extension instance gets its own command group named after it (``flask alicertify``, or
``flask kyc`` for ``AliCertify(name="kyc")``). Output never contains clear personal data: the
describe command prints masked forms only, as stored.
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Any

import click
from flask.cli import AppGroup

from .cloud.errors import CloudError
from .reconcile import ReconcileItem
from .state import State
from .state import get_state

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str) -> timedelta:
    """``"10m"``, ``"90s"``, ``"2h"``, ``"1d"`` or plain seconds."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 10m, 2h, 1d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


class Duration(click.ParamType[timedelta]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


def make_cli(name: str) -> AppGroup:
    """The command group for the extension instance called ``name``."""
    group = AppGroup(name, help="Alibaba Cloud ID verification (flask-alicertify).")

    def state() -> State:
        return get_state(name)

    @group.command("init-db")
    def init_db() -> None:
        """Create the records table (SQL storage); other storages need nothing."""
        storage = state().storage
        create_all = getattr(storage, "create_all", None)
        if create_all is None:
            click.echo(f"{type(storage).__name__} needs no schema; nothing to do.")
            return
        create_all()
        click.echo(f"Created the records table for {storage!r}.")

    @group.command("describe")
    @click.argument("certify_id")
    def describe(certify_id: str) -> None:
        """Ask Alibaba for CERTIFY_ID's verdict; prints the stored record (masked) too."""
        try:
            record, verdict = state().service.inspect(certify_id)
        except CloudError as e:
            raise click.ClickException(f"describe failed: {type(e).__name__}: {e}") from e
        rows: list[tuple[str, str]] = [("certify id", certify_id)]
        if record is None:
            rows.append(("record", "not stored here"))
        else:
            rows += [
                ("record", record.id),
                ("status", record.status.value),
                ("user", record.user_id or "-"),
                ("name", record.cert_name_masked or "-"),
                ("ID number", record.cert_no_masked or "-"),
                ("client status", record.client_status or "-"),
                ("created", record.created_at.isoformat(timespec="seconds")),
            ]
        rows += [
            ("finished", "yes" if verdict.finished else "no"),
            ("passed", "yes" if verdict.passed else "no"),
            ("sub code", verdict.sub_code or "-"),
            ("code", verdict.code),
            ("request id", verdict.request_id or "-"),
        ]
        click.echo(_table(("field", "value"), rows))

    @group.command("reconcile")
    @click.option(
        "--older-than",
        type=Duration(),
        default="10m",
        show_default=True,
        help="Re-describe non-terminal records not updated for this long (90s, 10m, 2h, 1d).",
    )
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
    def reconcile(older_than: timedelta, limit: int | None) -> None:
        """Re-describe stale records; expire those past the 30-minute certify-id lifetime plus grace."""
        # On a terminal one line is rewritten in place; in a log (cron, CI) each record gets a line.
        tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        counter = {"n": 0}

        def progress(item: ReconcileItem) -> None:
            counter["n"] += 1
            line = f"reconcile: {counter['n']} checked, last {item.record_id} {item.before} -> {item.after}"
            click.echo(("\r" + line) if tty else line, nl=not tty, err=True)

        report = state().service.reconcile(older_than=older_than, limit=limit, progress=progress)
        if tty and report.checked:
            click.echo(err=True)
        outcomes = report.by_outcome()
        statuses = report.by_status()
        rows = [(f"outcome: {k}", str(v)) for k, v in sorted(outcomes.items())]
        rows += [(f"status now: {k}", str(v)) for k, v in sorted(statuses.items())]
        rows.append(("checked", str(report.checked)))
        click.echo(_table(("reconcile", "records"), rows))

    return group


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    width = max(len(header[0]), *(len(r[0]) for r in rows))
    lines = [f"{header[0]:<{width}}  {header[1]}", f"{'-' * width}  {'-' * max(len(header[1]), 5)}"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
