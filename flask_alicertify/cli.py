"""``flask alicertify ...``: schema setup, one-off describe, and the jobs (reconcile, redact, purge).

Each extension instance gets its own command group named after it (``flask alicertify``, or
``flask kyc`` for ``AliCertify(name="kyc")``). Output never contains clear personal data: the
describe command prints masked forms only, as stored.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click
from flask.cli import AppGroup

from .cloud.errors import CloudError
from .config_values import parse_duration as parse_duration
from .errors import SchemaManagedByMigrations
from .reconcile import ReconcileItem
from .reconcile import ReconcileReport
from .state import State
from .state import get_state


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
        try:
            create_all()
        except SchemaManagedByMigrations as e:
            raise click.ClickException(str(e)) from e
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
                ("sandbox", "yes (simulated, proves nothing)" if record.sandbox else "no"),
                ("created", record.created_at.isoformat(timespec="seconds")),
            ]
            rows += [
                (label, when.isoformat(timespec="seconds"))
                for label, when in (
                    ("signal delivered", record.delivered_at),
                    ("deleted at Alibaba", record.deleted_at),
                    ("purged", record.purged_at),
                )
                if when is not None
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
    @click.option(
        "--redeliver-after",
        type=Duration(),
        default="60s",
        show_default=True,
        help="Re-send outcome signals that terminal records changed this long ago still lack.",
    )
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
    def reconcile(older_than: timedelta, redeliver_after: timedelta, limit: int | None) -> None:
        """Re-describe stale records; expire those past the 30-minute certify-id lifetime plus grace;
        re-send undelivered outcome signals; with DELETE_AT_ALIBABA, delete results at Alibaba."""
        with _Progress("reconcile") as progress:
            report = state().service.reconcile(
                older_than=older_than, redeliver_after=redeliver_after, limit=limit, progress=progress
            )
        click.echo(_summary("reconcile", report))

    @group.command("redact")
    @click.option(
        "--older-than",
        type=Duration(),
        default="0s",
        show_default=True,
        help="Only records that reached their outcome at least this long ago.",
    )
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
    def redact(older_than: timedelta, limit: int | None) -> None:
        """Delete the results of finished verifications at Alibaba (DeleteFaceVerifyResult)."""
        st = state()
        if not st.settings.delete_at_alibaba:
            raise click.ClickException(
                f"{st.settings.key('DELETE_AT_ALIBABA')} is off: nothing is deleted at Alibaba"
            )
        with _Progress("redact") as progress:
            report = st.service.redact(older_than=older_than, limit=limit, progress=progress)
        click.echo(_summary("redact", report))

    @group.command("purge")
    @click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
    def purge(dry_run: bool, limit: int | None) -> None:
        """Clear the ID-number digest and masked identity of records older than the retention."""
        st = state()
        if st.settings.retention is None:
            raise click.ClickException(f"{st.settings.key('RETENTION')} is not set: every record is kept")
        with _Progress("purge (dry run)" if dry_run else "purge") as progress:
            report = st.service.purge(dry_run=dry_run, limit=limit, progress=progress)
        click.echo(_summary("purge", report))

    return group


class _Progress:
    """The progress line on stderr: rewritten in place on a terminal, one line per record in a log
    (cron, CI)."""

    def __init__(self, job: str) -> None:
        self.job = job
        self.count = 0
        self.tty = bool(getattr(sys.stderr, "isatty", lambda: False)())

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, item: ReconcileItem) -> None:
        self.count += 1
        line = (
            f"{self.job}: {self.count} checked, last {item.record_id} {item.step} "
            f"{item.before} -> {item.after} ({item.outcome})"
        )
        click.echo(("\r" + line) if self.tty else line, nl=not self.tty, err=True)

    def __exit__(self, *exc: object) -> None:
        if self.tty and self.count:
            click.echo(err=True)


def _summary(job: str, report: ReconcileReport) -> str:
    rows = [(f"outcome: {k}", str(v)) for k, v in sorted(report.by_outcome().items())]
    rows += [(f"status now: {k}", str(v)) for k, v in sorted(report.by_status().items())]
    rows.append(("checked", str(report.checked)))
    return _table((job, "records"), rows)


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    width = max(len(header[0]), *(len(r[0]) for r in rows))
    lines = [f"{header[0]:<{width}}  {header[1]}", f"{'-' * width}  {'-' * max(len(header[1]), 5)}"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
