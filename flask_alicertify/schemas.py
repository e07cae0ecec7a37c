"""Marshmallow schemas for the bodies and query strings of the HTTP contract (docs/flow.md).

They check shape and type only, with field-level messages a client developer can act on; what the
values mean (ID-number check digits, allowed return hosts, who owns a certify id) is the
service's job. Unknown keys are ignored rather than refused: mini-program code grows fields
over time, and an extra key is never dangerous here, whereas a wrong type always is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

#: Upper bounds on string sizes; well above any real value, far below the body cap.
MAX_CERTIFY_ID = 128
MAX_STATUS = 32
MAX_ERROR_CODE = 64
MAX_CERT_NO = 64
MAX_CERT_NAME = 128
MAX_URL = 2048
MAX_META_INFO = 4096
MAX_TOKEN = 256

#: Control characters and lone surrogates (a JSON body can carry ``"\ud800"``): never meaningful
#: in this contract, and not storable or sendable everywhere: PostgreSQL refuses NUL in text, and
#: UTF-8 encoders (the request signer, SQLite, Redis) refuse surrogates. Refused here as a 400.
_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
UNSAFE_MESSAGE = "Contains control characters or invalid Unicode."


def is_clean(value: str) -> bool:
    """True when ``value`` has no control character and no lone surrogate."""
    return _UNSAFE.search(value) is None


class Text(fields.String):
    """A string field that refuses control characters and lone surrogates (see :func:`is_clean`)."""

    default_error_messages = {"unsafe": UNSAFE_MESSAGE}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_clean(text):
            raise self.make_error("unsafe")
        return text


class Code(fields.Field[str]):
    """A status or error code: a string, or an integer that a client sent unquoted (``9000``)."""

    default_error_messages = {
        "invalid": "Not a valid code: expected a string or an integer.",
        "unsafe": UNSAFE_MESSAGE,
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        code = str(value).strip()
        if not is_clean(code):
            raise self.make_error("unsafe")
        return code


class MetaInfo(fields.Field[str]):
    """Alibaba's ``MetaInfo``: a JSON string, or an object we serialise unchanged."""

    default_error_messages = {
        "invalid": "Not a valid metaInfo: expected a JSON string or an object.",
        "unsafe": UNSAFE_MESSAGE,
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, Mapping):
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif isinstance(value, str):
            text = value
        else:
            raise self.make_error("invalid")
        if not is_clean(text):
            raise self.make_error("unsafe")
        return text


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class ServiceParametersSchema(_Lenient):
    """``serviceParameters`` of Alibaba's mini-program guide. certNo/certName may be absent when
    the app's ``identity_loader`` supplies them; the service reports a missing value per field."""

    cert_no = Text(
        data_key="certNo", load_default=None, allow_none=True, validate=validate.Length(max=MAX_CERT_NO)
    )
    cert_name = Text(
        data_key="certName", load_default=None, allow_none=True, validate=validate.Length(max=MAX_CERT_NAME)
    )
    return_url = Text(
        data_key="returnUrl", load_default=None, allow_none=True, validate=validate.Length(max=MAX_URL)
    )
    meta_info = MetaInfo(
        data_key="metaInfo", load_default=None, allow_none=True, validate=validate.Length(max=MAX_META_INFO)
    )


class InitSchema(_Lenient):
    """``POST /init``: ``{"serviceParameters": {"certNo", "certName", "returnUrl"?, "metaInfo"?}}``."""

    service_parameters = fields.Nested(ServiceParametersSchema, data_key="serviceParameters", required=True)


class ClientResultSchema(_Lenient):
    """The ``result`` object of ``verifyResult``; Alibaba's guide says it may be null or empty."""

    certify_id = Text(
        data_key="certifyId", load_default=None, allow_none=True, validate=validate.Length(max=MAX_CERTIFY_ID)
    )
    error_code = Code(
        data_key="errorCode", load_default=None, allow_none=True, validate=validate.Length(max=MAX_ERROR_CODE)
    )


class ResultSchema(_Lenient):
    """``POST /result``: ``{"certifyId", "resultStatus", "result": {...} | null}``."""

    certify_id = Text(
        data_key="certifyId", required=True, validate=validate.Length(min=1, max=MAX_CERTIFY_ID)
    )
    result_status = Code(
        data_key="resultStatus", required=True, validate=validate.Length(min=1, max=MAX_STATUS)
    )
    result = fields.Nested(ClientResultSchema, load_default=None, allow_none=True)


class CallbackSchema(_Lenient):
    """``GET /callback`` query: ``certifyId``, ``passed`` (opaque), ``callbackToken`` or ``CallbackToken``."""

    certify_id = Text(
        data_key="certifyId", required=True, validate=validate.Length(min=1, max=MAX_CERTIFY_ID)
    )
    passed = Text(load_default=None, validate=validate.Length(max=MAX_STATUS))
    callback_token = Text(
        data_key="callbackToken", load_default=None, validate=validate.Length(max=MAX_TOKEN)
    )
    callback_token_upper = Text(
        data_key="CallbackToken", load_default=None, validate=validate.Length(max=MAX_TOKEN)
    )


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """``schema.load(data)`` as a plain dict; raises :class:`ValidationError` with field messages."""
    if not isinstance(data, Mapping):
        raise ValidationError({"_schema": ["Expected a JSON object."]})
    result = schema.load(data)
    assert isinstance(result, dict)
    return result


INIT = InitSchema()
RESULT = ResultSchema()
CALLBACK = CallbackSchema()
