"""The mini-program's ``verifyResult``, as the page posts it to ``/result``."""

from __future__ import annotations

from typing import Any

_DEFAULT: Any = object()


def make_verify_result(
    result_status: str = "9000",
    certify_id: str = "",
    *,
    result: Any = _DEFAULT,
    result_certify_id: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """Build ``{"certifyId", "resultStatus", "result"}``.

    By default ``result`` is ``{"certifyId": certify_id}`` plus ``errorCode`` when given; pass
    ``result=None`` for the null result Alibaba's mini-program guide warns about
    (https://help.aliyun.com/document_detail/144545.html), or any object to send it verbatim.
    """
    if result is _DEFAULT:
        body: dict[str, Any] = {
            "certifyId": result_certify_id if result_certify_id is not None else certify_id
        }
        if error_code is not None:
            body["errorCode"] = error_code
        result = body
    return {"certifyId": certify_id, "resultStatus": str(result_status), "result": result}
