"""Drive the whole flow against a Flask test client, the way the mini-program would.

Works with any object that has Flask's test-client ``post(path, json=..., headers=...)`` and
responses with ``status_code`` and ``get_json()``, so this module never imports Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cases import Case

#: A syntactically valid ID number (GB 11643 check digit) that belongs to nobody real.
DEFAULT_CERT_NO = "11010519491231002X"
DEFAULT_CERT_NAME = "张三"


@dataclass(frozen=True)
class FlowResult:
    """What each step answered. ``body`` is the ``/result`` JSON."""

    certify_id: str
    certify_url: str
    init_response: Any
    result_response: Any

    @property
    def body(self) -> dict[str, Any]:
        data = self.result_response.get_json()
        assert isinstance(data, dict), f"/result did not answer JSON: {self.result_response!r}"
        return data


def start(
    client: Any,
    *,
    prefix: str = "/alicertify",
    cert_name: str = DEFAULT_CERT_NAME,
    cert_no: str = DEFAULT_CERT_NO,
    return_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, str, Any]:
    """POST ``{prefix}/init`` with the body of Alibaba's mini-program guide; return
    ``(certify_id, certify_url, response)``."""
    params: dict[str, str] = {"certNo": cert_no, "certName": cert_name}
    if return_url is not None:
        params["returnUrl"] = return_url
    response = client.post(f"{prefix}/init", json={"serviceParameters": params}, headers=dict(headers or {}))
    data = response.get_json(silent=True)
    assert response.status_code == 200 and isinstance(data, dict), (
        f"POST {prefix}/init answered {response.status_code}: {data!r}"
    )
    return str(data["certifyId"]), str(data["certifyUrl"]), response


def run_flow(
    client: Any,
    case: Case,
    cloud: Any,
    *,
    prefix: str = "/alicertify",
    cert_name: str = DEFAULT_CERT_NAME,
    cert_no: str = DEFAULT_CERT_NO,
    return_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> FlowResult:
    """Init → Alibaba decides as the case scripts → post the case's verifyResult → the answer.

    ``cloud`` is the ``alicertify_cloud`` fixture (or a bare ``FakeCloud``).
    """
    case.script(cloud)
    certify_id, certify_url, init_response = start(
        client, prefix=prefix, cert_name=cert_name, cert_no=cert_no, return_url=return_url, headers=headers
    )
    result_response = client.post(
        f"{prefix}/result", json=case.payload(certify_id), headers=dict(headers or {})
    )
    return FlowResult(certify_id, certify_url, init_response, result_response)
