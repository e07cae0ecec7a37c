"""R5 personal data: no full ID number or name in any log line, CLI output, answer or stored row.

On every storage backend, with a handler at DEBUG on the root logger and on every logger that
exists (their levels lowered to DEBUG for the run), the whole outcome matrix
(:data:`pytest_alicertify.cases.CASES`) runs through the HTTP API, each with its own identity,
plus callbacks, reads, ``flask alicertify describe`` for each record and ``reconcile``, refused
inputs (a wrong check digit, an invalid name, an identity mismatch) and upstream failures. The
gateway talks to the fake over real loopback HTTP, so httpx's and httpcore's own loggers run too.

Then every captured log line (with its arguments and tracebacks), every CLI output, every HTTP
answer and the backend's raw rows/keys are scanned for every identity used, in clear, JSON-escaped
(``\\u5f20``), percent-encoded (UTF-8 and GBK, either case) and bytes-repr forms.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.reliability import ACCESS_KEY_ID
from support.reliability import ACCESS_KEY_SECRET
from support.reliability import CALLBACK_URL
from support.reliability import PREFIX
from support.reliability import cert_no
from support.reliability import fake_app
from support.reliability import pii_forms
from support.reliability import report
from support.storage import BACKENDS
from support.storage import open_test_backend

from flask_alicertify.sandbox.fake import FakeCloud
from flask_alicertify.sandbox.fake import Fault
from pytest_alicertify.cases import CASES

#: One identity per case (distinct numbers and names), plus values that are refused.
R5_NAMES = ("司马相如", "欧阳修文", "诸葛孔明", "上官婉儿", "慕容复生", "令狐冲天", "东方不败", "独孤求败")
R5_NUMBERS = tuple(cert_no(n) for n in range(3000, 3000 + len(CASES)))
WRONG_CHECK_DIGIT = R5_NUMBERS[0][:-1] + ("0" if R5_NUMBERS[0][-1] != "0" else "1")
BAD_NAME = "阿<script>"
MISMATCH_NUMBER = cert_no(4999)

FIGURES: dict[str, Any] = {"lines": 0, "rows": 0, "hits": 0, "backends": [], "values": 0}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.seen: set[int] = set()
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self.seen:
            return
        self.seen.add(id(record))
        self.texts.append(f"{self.format(record)} args={record.args!r} msg={record.msg!r}")


@contextmanager
def capture_everything() -> Iterator[Capture]:
    """A DEBUG handler on root and on every existing logger, with every level lowered to DEBUG."""
    handler = Capture()
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level) for logger in loggers]
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
        logging.disable(disabled)


def _query(url: str | None) -> dict[str, str]:
    from urllib.parse import parse_qsl
    from urllib.parse import urlsplit

    return dict(parse_qsl(urlsplit(url or "").query))


@pytest.mark.parametrize("kind", BACKENDS)
def test_r5_no_personal_data_in_logs_or_storage(kind: str, tmp_path: Path) -> None:
    cloud = FakeCloud(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET)
    outputs: list[str] = []
    identities = {"alice": (R5_NAMES[0], R5_NUMBERS[0])}

    with (
        open_test_backend(kind, tmp_path) as backend,
        cloud.serve() as base_url,
        capture_everything() as logs,
    ):
        with fake_app(
            storage=backend.storage,
            cloud=cloud,
            over_http=base_url,
            ALICERTIFY_CALLBACK_URL=CALLBACK_URL,
            ALICERTIFY_MAX_ATTEMPTS_PER_DAY=None,
            ALICERTIFY_DESCRIBE_MIN_INTERVAL=0,
        ) as h:
            h.ext.identity_loader(identities.get)  # "alice" has a profile; other users none
            certify_ids = []
            for i, case in enumerate(CASES):
                user = f"user-{i}"
                case.script(cloud)
                started = h.init(user, name=R5_NAMES[i % len(R5_NAMES)], number=R5_NUMBERS[i])
                outputs.append(started.get_data(as_text=True))
                assert started.status_code == 200, started.get_json()
                cid = started.get_json()["certifyId"]
                certify_ids.append(cid)
                answer = h.client(user).post(PREFIX + "/result", json=case.payload(cid))
                outputs.append(answer.get_data(as_text=True))
                case.check(answer.get_json())
                outputs.append(h.client(user).get(f"{PREFIX}/result/{cid}").get_data(as_text=True))
                if cloud.callback_url(cid):
                    callback = h.client(None).get(
                        PREFIX + "/callback", query_string=_query(cloud.callback_url(cid))
                    )
                    outputs.append(callback.get_data(as_text=True))
                    assert callback.status_code == 200

            # Refused inputs: the values must not be echoed or logged either.
            for name, number in ((R5_NAMES[1], WRONG_CHECK_DIGIT), (BAD_NAME, R5_NUMBERS[1])):
                refused = h.init("user-x", name=name, number=number)
                outputs.append(refused.get_data(as_text=True))
                assert refused.status_code == 400
            mismatch = h.init("alice", name=R5_NAMES[0], number=MISMATCH_NUMBER)
            outputs.append(mismatch.get_data(as_text=True))
            assert mismatch.status_code == 400
            # Upstream failures log warnings: Alibaba refusing the identity (Code 417), a
            # malformed answer, a 503.
            for fault in (Fault.error("417"), Fault.malformed(), Fault.http(503)):
                cloud.inject(fault, action="InitFaceVerify")
                failed = h.init("user-y", name=R5_NAMES[2], number=R5_NUMBERS[2])
                outputs.append(failed.get_data(as_text=True))
                assert failed.status_code in (400, 502, 503)

            for cid in certify_ids:
                result = h.cli("describe", cid)
                assert result.exit_code == 0, result.output
                outputs.append(result.output)
            result = h.cli("reconcile", "--older-than", "0s")
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
        raw = backend.raw_dump()

    # Controls: the identities did travel (so they could have leaked), the logs saw the wire
    # (httpx's request lines), and the scanner recognises the encoded forms it looks for.
    sent = {call.params.get("CertName") for call in cloud.calls_for("InitFaceVerify")}
    assert set(R5_NAMES) <= sent
    assert any("HTTP Request" in text for text in logs.texts)
    from urllib.parse import urlencode

    for control in (urlencode({"CertName": R5_NAMES[0]}), json.dumps({"certNo": R5_NUMBERS[0].lower()})):
        assert any(form in control for value in (R5_NAMES[0], R5_NUMBERS[0]) for form in pii_forms(value))

    values = [*R5_NAMES, *R5_NUMBERS, WRONG_CHECK_DIGIT, BAD_NAME, MISMATCH_NUMBER]
    corpus = {"log": logs.texts, "output": outputs, "storage": [raw]}
    hits = []
    for where, texts in corpus.items():
        for text in texts:
            for value in values:
                for form in pii_forms(value):
                    if form in text:
                        hits.append((where, form, text[:300]))
    FIGURES["lines"] += len(logs.texts)
    FIGURES["rows"] += raw.count("\n") + 1 if raw else 0
    FIGURES["hits"] += len(hits)
    FIGURES["values"] = len(values)
    FIGURES["backends"].append(kind)
    report(
        "R5",
        "personal data",
        f"{FIGURES['lines']} log lines at DEBUG, {len(outputs)} CLI/HTTP outputs per backend and the raw "
        f"storage of {', '.join(FIGURES['backends'])} scanned for {FIGURES['values']} identities "
        f"(clear, JSON-escaped, percent-encoded, bytes forms): {FIGURES['hits']} occurrences",
        target="0 occurrences",
        met=FIGURES["hits"] == 0,
        size=f"{len(CASES)} cases × backend",
    )
    assert logs.texts, "the capture saw no log line at all: the scan would prove nothing"
    assert not hits, hits[:5]
