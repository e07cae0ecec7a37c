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

from .identity import Sensitive

#: Upper bounds on string sizes; well above any real value, far below the body cap.
MAX_CERTIFY_ID = 128
MAX_STATUS = 32
MAX_ERROR_CODE = 64
MAX_CERT_NO = 64
MAX_CERT_NAME = 128
MAX_URL = 2048
MAX_META_INFO = 4096
#: Deepest nesting of objects and arrays accepted in ``metaInfo`` (Alibaba's is flat: a few keys).
MAX_META_DEPTH = 8
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


class SensitiveText(fields.Field[Sensitive]):
    """An ID number or name: a clean string up to ``max_length``, loaded as :class:`Sensitive`.

    Wrapped here, at the edge, so no later frame (service, policy, gateway) holds the clear
    value where an error tracker would record it; only the code that must use it reveals it.
    """

    default_error_messages = {
        "invalid": "Not a valid string.",
        "unsafe": UNSAFE_MESSAGE,
        "too_long": "Longer than maximum length {max}.",
    }

    def __init__(self, *, kind: str, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.max_length = max_length

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Sensitive:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if len(value) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        if not is_clean(value):
            raise self.make_error("unsafe")
        return Sensitive(value, kind=self.kind)


class MetaInfo(fields.Field[str]):
    """Alibaba's ``MetaInfo``: a JSON object, or a string holding one, passed on as JSON text.

    Checked before Init (which is billed and counts against the user's attempts): anything but
    a JSON object, or an object nested deeper than :data:`MAX_META_DEPTH`, is a 400. A string is
    passed on exactly as the client sent it.
    """

    default_error_messages = {
        "invalid": "Not a valid metaInfo: expected a JSON object or a string holding one.",
        "too_deep": "Not a valid metaInfo: nested deeper than {depth} levels.",
        "unsafe": UNSAFE_MESSAGE,
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, str):
            if not is_clean(value):
                raise self.make_error("unsafe")
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                raise self.make_error("invalid") from None
            if not isinstance(parsed, Mapping):
                raise self.make_error("invalid")
            self._check_depth(parsed)
            return value
        if not isinstance(value, Mapping):
            raise self.make_error("invalid")
        self._check_depth(value)
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if not is_clean(text):
            raise self.make_error("unsafe")
        return text

    def _check_depth(self, value: Any) -> None:
        if nesting_depth(value, MAX_META_DEPTH) > MAX_META_DEPTH:
            raise self.make_error("too_deep", depth=MAX_META_DEPTH)


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0), counted without
    recursion and stopping once past ``limit``, so no nesting can exhaust the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (Mapping, list, tuple)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = node.values() if isinstance(node, Mapping) else node
        stack.extend((child, depth + 1) for child in children)
    return deepest


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class ServiceParametersSchema(_Lenient):
    """``serviceParameters`` of Alibaba's mini-program guide. certNo/certName may be absent when
    the app's ``identity_loader`` supplies them; the service reports a missing value per field."""

    cert_no = SensitiveText(
        kind="cert_no", max_length=MAX_CERT_NO, data_key="certNo", load_default=None, allow_none=True
    )
    cert_name = SensitiveText(
        kind="cert_name", max_length=MAX_CERT_NAME, data_key="certName", load_default=None, allow_none=True
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
