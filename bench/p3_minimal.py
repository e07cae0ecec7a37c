"""The minimal view's table and connections (P3), shared by the server (:mod:`bench.p3_wsgi`) and
the bench process that seeds the table."""

from __future__ import annotations

import sqlite3
from typing import Any

MINIMAL_TABLE = """
CREATE TABLE bench_minimal (
    certify_id VARCHAR(64) PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    client_status VARCHAR(16),
    passed BOOLEAN,
    sub_code VARCHAR(16),
    describe_count INTEGER NOT NULL DEFAULT 0,
    last_described_at VARCHAR(40),
    updated_at VARCHAR(40)
)
"""
_UPDATE = (
    "UPDATE bench_minimal SET status = {p}, client_status = {p}, passed = {p}, sub_code = {p},"
    " describe_count = describe_count + 1, last_described_at = {p}, updated_at = {p}"
    " WHERE certify_id = {p} AND user_id = {p}"
)
#: The SQLite settings of the extension's own connections (see flask_alicertify.storage).
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000")


def connect_minimal(kind: str, dsn: str) -> Any:
    """A connection to the minimal view's database (the bench process seeds it with this too)."""
    if kind == "postgresql":
        import psycopg

        return psycopg.connect(dsn)
    conn = sqlite3.connect(dsn, check_same_thread=False, timeout=30)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    return conn


def update_statement(kind: str) -> str:
    return _UPDATE.format(p="%s" if kind == "postgresql" else "?")
