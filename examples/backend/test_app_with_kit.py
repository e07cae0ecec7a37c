"""How an app's own suite uses the pytest kit: every outcome of the flow, against this app.

``pip install flask-alicertify[pytest]`` gives the fixtures; nothing else to configure. The
fake answers both of Alibaba's APIs, so the app is tested against the one it is configured for.
"""

import pytest
from app import create_app

from pytest_alicertify import run_flow


@pytest.fixture
def client(alicertify_cloud, tmp_path):
    config = {"TESTING": True, "SECRET_KEY": "test", "DEMO_LOGIN": True, **alicertify_cloud.app_config}
    client = create_app(config, instance_path=str(tmp_path)).test_client()
    token = client.post("/login", json={"username": "alice"}).get_json()["token"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def test_every_outcome(client, alicertify_cloud, alicertify_case):
    flow = run_flow(client, alicertify_case, alicertify_cloud)
    alicertify_case.check(flow.body)  # status, passed, retryable as the case expects
    alicertify_cloud.assert_confirmed(flow.certify_id)  # never trusted the client's claim
    me = client.get("/me").get_json()["user"]["verification"]
    assert me["verified"] is alicertify_case.expected.passed
