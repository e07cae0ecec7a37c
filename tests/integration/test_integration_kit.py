"""The kit's whole outcome matrix against the reference app, on both of its instances.

This is the test an app's own suite writes with ``pytest_alicertify``: a signed-in Flask-Login
user, the app's real database, and each of the ``CASES``. The verdict must follow Alibaba's
describe, never the client's claim, and land in the instance's own table.
"""

from __future__ import annotations

import pytest
from support.integration import RECORD_TABLES
from support.integration import signed_in

from pytest_alicertify import run_flow
from pytest_alicertify.flow import DEFAULT_CERT_NO


@pytest.mark.parametrize("instance", ["alicertify", "kyc"])
def test_every_outcome(app, database, instance, alicertify_cloud, alicertify_case):
    client = signed_in(app, 42)
    flow = run_flow(client, alicertify_case, alicertify_cloud, prefix=f"/{instance}")

    alicertify_case.check(flow.body)
    alicertify_cloud.assert_confirmed(flow.certify_id)
    assert alicertify_cloud.last_init.cert_no == DEFAULT_CERT_NO
    rows = database.rows(RECORD_TABLES[instance])
    assert [(r["certify_id"], r["status"], r["user_id"]) for r in rows] == [
        (flow.certify_id, alicertify_case.expected.status, "42")
    ]
