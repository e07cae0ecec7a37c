"""Chinese texts for the English ``fields`` messages of error answers.

Framework-free. ``fields`` messages come from three places: marshmallow's built-in messages
("Missing data for required field."), this package's schemas, and the input policy (ID number and
name rules). They are English strings; an error answer in Chinese (the default) translates each
one with :func:`localise_fields`. A message raised as :class:`~flask_alicertify.errors.FieldMessage`
carries its own Chinese text; any other is looked up here, exactly or by pattern (marshmallow
formats some messages with numbers). A message found nowhere stays English rather than vanish:
a test posts every kind of bad input and finds none left.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import FieldMessage

#: Exact English message -> Chinese.
EXACT: Mapping[str, str] = {
    # marshmallow's own
    "Missing data for required field.": "缺少必填字段",
    "Field may not be null.": "该字段不能为 null",
    "Invalid value.": "值无效",
    "Invalid type.": "类型无效",
    "Invalid input type.": "输入类型无效，应为 JSON 对象",
    "Unknown field.": "未知字段",
    "Invalid input.": "输入无效",
    "Not a valid string.": "不是有效的字符串",
    "Not a valid utf-8 string.": "不是有效的 UTF-8 字符串",
    "Not a valid number.": "不是有效的数字",
    "Number too large.": "数字过大",
    "Not a valid integer.": "不是有效的整数",
    "Not a valid boolean.": "不是有效的布尔值",
    "Not a valid list.": "不是有效的列表",
    "Not a valid tuple.": "不是有效的元组",
    "Not a valid mapping type.": "不是有效的 JSON 对象",
    "Not a valid URL.": "不是有效的 URL",
    "String does not match expected pattern.": "格式不正确",
    # this package's schemas and body parsing
    "Contains control characters or invalid Unicode.": "包含控制字符或无效的 Unicode 字符",
    "Not a valid code: expected a string or an integer.": "不是有效的代码：应为字符串或整数",
    "Not a valid metaInfo: expected a JSON object or a string holding one.": (
        "metaInfo 无效：应为 JSON 对象或包含 JSON 对象的字符串"
    ),
    "Expected a JSON object.": "应为 JSON 对象",
    "Invalid JSON.": "不是有效的 JSON",
    "Nested too deeply.": "嵌套层数过多",
    # the input policy
    "The returnUrl must be https on an allowed host.": "returnUrl 必须是允许的域名下的 https 地址",
    "Does not match the identity on the account.": "与账户中的身份信息不一致",
    # the ID number and name rules (flask_alicertify.identity)
    "The ID number must be a string.": "身份证号码必须是文本",
    "The ID number must be 18 characters long.": "身份证号码应为18位",
    "The ID number may contain only digits, with an optional final X.": (
        "身份证号码只能包含数字，最后一位可以是X"
    ),
    "The birth date in the ID number is not valid.": "身份证号码中的出生日期无效",
    "The ID number's check digit is wrong.": "身份证号码校验位不正确",
    "The name must be a string.": "姓名必须是文本",
    "The name is required.": "请填写姓名",
    "The name must be at most 64 characters.": "姓名不能超过64个字符",
    "The name contains invisible characters.": "姓名包含不可见的字符",
    "The name may contain only letters, with · or spaces between its parts.": (
        "姓名只能包含文字，名字各部分之间可以用·分隔"
    ),
    "A combining mark in the name has no letter to attach to.": "姓名中的附加符号没有对应的文字",
    "A separator in the name is misplaced.": "姓名中的分隔符位置不正确",
}

#: Patterns of formatted English messages -> Chinese templates (``{0}``, ``{1}``: the groups).
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Longer than maximum length (\d+)\."), "长度不能超过 {0}"),
    (re.compile(r"Shorter than minimum length (\d+)\."), "长度不能少于 {0}"),
    (re.compile(r"Length must be between (\d+) and (\d+)\."), "长度应在 {0} 到 {1} 之间"),
    (re.compile(r"Length must be (\d+)\."), "长度应为 {0}"),
    (
        re.compile(r"Not a valid metaInfo: nested deeper than (\d+) levels\."),
        "metaInfo 无效：嵌套超过 {0} 层",
    ),
    (re.compile(r"Must be one of: (.*)\."), "必须是以下之一：{0}"),
)


def translate(message: str, lang: str) -> str:
    """``message`` in ``lang`` (``"zh"`` or ``"en"``); English, or unknown, stays as it is."""
    if lang != "zh":
        return str(message)
    if isinstance(message, FieldMessage):
        return message.zh
    found = EXACT.get(message)
    if found is not None:
        return found
    for pattern, template in PATTERNS:
        match = pattern.fullmatch(message)
        if match is not None:
            return template.format(*match.groups())
    return str(message)


def localise_fields(fields: Any, lang: str) -> Any:
    """``fields`` (nested dicts and lists of messages, as marshmallow builds them) in ``lang``."""
    if isinstance(fields, str):
        return translate(fields, lang)
    if isinstance(fields, Mapping):
        return {key: localise_fields(value, lang) for key, value in fields.items()}
    if isinstance(fields, (list, tuple)):
        return [localise_fields(value, lang) for value in fields]
    return fields
