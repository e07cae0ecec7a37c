"""Mainland China ID numbers and names: validation, masking and a keyed digest.

Framework-free. Validation happens before Alibaba is called because InitFaceVerify is billed
and its errors are opaque; a wrong check digit is almost always a typo the user can fix, so
the message says exactly that. Masking and the HMAC digest are how records avoid storing
personal data in clear (the digest lets equal ID numbers be matched without keeping them).

:func:`mask_cert_no` and :func:`mask_cert_name` are the project's one masking rule: records,
the CLI, the sandbox's fake cloud and the pytest kit's reprs all show personal data through them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date
from typing import Any

__all__ = [
    "InvalidIdentity",
    "Sensitive",
    "cert_no_digest",
    "check_digit",
    "is_ignorable",
    "is_placeholder",
    "mask_cert_name",
    "mask_cert_no",
    "reveal",
    "validate_cert_name",
    "validate_cert_no",
]

#: GB 11643-1999 weights for the first 17 digits, and the check character for (sum mod 11).
WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

_CERT_NO_RE = re.compile(r"[0-9]{17}[0-9X]")
#: Separators allowed between the parts of a name: the middle dots used in transliterated and
#: minority names (U+00B7, U+2022, U+30FB, U+2027), and ASCII or ideographic spaces.
_NAME_DOTS = frozenset("\u00b7\u2022\u30fb\u2027")
_NAME_SPACES = frozenset(" \u3000")
#: Parts of letters joined by one dot (spaces allowed around it) or by spaces.
_NAME_SHAPE = re.compile(r"L+(?:(?:S*DS*|S+)L+)*")
#: A letter with the combining marks that belong to it (Vietnamese stacks two; four is generous).
_MARKED_LETTER = re.compile(r"LM{1,4}")
_MAX_NAME = 64
#: Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt, UAX #44): characters
#: that render as nothing. They include the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), which
#: Unicode counts as *letters*, and the variation selectors, which it counts as *marks*, so a name
#: of them passes a letters-and-marks rule while showing nothing a person or Alibaba could match.
_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


class InvalidIdentity(ValueError):
    """An ID number or name that cannot be right. The messages are safe to show the user.

    They never repeat the value itself, so they can be logged without leaking personal data.
    """

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en

    def message(self, lang: str = "zh") -> str:
        return self.message_zh if lang == "zh" else self.message_en


def check_digit(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("check_digit() needs exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def validate_cert_no(value: object) -> str:
    """The normalised 18-character ID number (stripped, trailing ``x`` upper-cased).

    Raises :class:`InvalidIdentity` for a wrong length, characters other than digits and a
    final X, an impossible birth date, or a wrong check digit. 15-digit first-generation
    numbers are refused: they have no check digit and Alibaba's ID_PRO product wants 18.
    """
    if not isinstance(value, str):
        raise InvalidIdentity("cert_no_type", "身份证号码必须是文本", "The ID number must be a string.")
    cert_no = value.strip()
    if cert_no.endswith("x"):
        cert_no = cert_no[:-1] + "X"
    if len(cert_no) != 18:
        raise InvalidIdentity(
            "cert_no_length", "身份证号码应为18位", "The ID number must be 18 characters long."
        )
    if not _CERT_NO_RE.fullmatch(cert_no):
        raise InvalidIdentity(
            "cert_no_charset",
            "身份证号码只能包含数字，最后一位可以是X",
            "The ID number may contain only digits, with an optional final X.",
        )
    try:
        born = date(int(cert_no[6:10]), int(cert_no[10:12]), int(cert_no[12:14]))
    except ValueError:
        born = None
    if born is None or born.year < 1800 or born > date.today():
        raise InvalidIdentity(
            "cert_no_birth_date",
            "身份证号码中的出生日期无效",
            "The birth date in the ID number is not valid.",
        )
    if check_digit(cert_no[:17]) != cert_no[17]:
        raise InvalidIdentity(
            "cert_no_check_digit",
            "身份证号码校验位不正确",
            "The ID number's check digit is wrong.",
        )
    return cert_no


def is_ignorable(ch: str) -> bool:
    """Whether ``ch`` is a Default_Ignorable_Code_Point: it renders as nothing."""
    code = ord(ch)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def _char_class(ch: str) -> str:
    """``L`` letter, ``M`` combining mark, ``D`` middle dot, ``S`` space, ``I`` invisible, ``X`` other."""
    if ch in _NAME_DOTS:
        return "D"
    if ch in _NAME_SPACES:
        return "S"
    if is_ignorable(ch):
        return "I"
    category = unicodedata.category(ch)[0]
    if category == "L":
        return "L"
    if category == "M":
        return "M"
    return "X"


def validate_cert_name(value: object) -> str:
    """The stripped name: 1–64 letters (CJK or Latin), with ``·``/``•``/spaces between parts.

    Digits, punctuation and control characters are refused, and so is a separator at either
    end or two dots in a row. So are characters that render as nothing (Hangul fillers,
    variation selectors, zero-width characters) and combining marks without a letter before
    them: such a name reaches no one's ID card, only a billed Init that cannot pass. The name is
    otherwise kept as typed (an accented letter may be precomposed or decomposed): Alibaba
    compares it verbatim.
    """
    if not isinstance(value, str):
        raise InvalidIdentity("cert_name_type", "姓名必须是文本", "The name must be a string.")
    name = value.strip()
    if not name:
        raise InvalidIdentity("cert_name_empty", "请填写姓名", "The name is required.")
    if len(name) > _MAX_NAME:
        raise InvalidIdentity(
            "cert_name_length", "姓名不能超过64个字符", "The name must be at most 64 characters."
        )
    classes = "".join(_char_class(ch) for ch in name)
    if "I" in classes:
        raise InvalidIdentity(
            "cert_name_invisible",
            "姓名包含不可见的字符",
            "The name contains invisible characters.",
        )
    if "X" in classes:
        raise InvalidIdentity(
            "cert_name_charset",
            "姓名只能包含文字，名字各部分之间可以用·分隔",
            "The name may contain only letters, with · or spaces between its parts.",
        )
    # A combining mark belongs to the letter before it ("Zoë" typed as e + U+0308): marks with no
    # letter to sit on (a name of U+0301 alone, or after a space) display as nothing legible.
    classes = _MARKED_LETTER.sub("L", classes)
    if "M" in classes:
        raise InvalidIdentity(
            "cert_name_marks",
            "姓名中的附加符号没有对应的文字",
            "A combining mark in the name has no letter to attach to.",
        )
    if not _NAME_SHAPE.fullmatch(classes):
        raise InvalidIdentity(
            "cert_name_separator",
            "姓名中的分隔符位置不正确",
            "A separator in the name is misplaced.",
        )
    return name


def mask_cert_no(cert_no: str) -> str:
    """First and last character, a star for each one between: ``1****************4``."""
    cert_no = cert_no.strip()
    if len(cert_no) <= 2:
        return "*" * len(cert_no)
    return cert_no[0] + "*" * (len(cert_no) - 2) + cert_no[-1]


def mask_cert_name(name: str) -> str:
    """The first character, then a star for each other one: ``张*``, ``欧***``; ``A`` -> ``*``."""
    name = name.strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)


def cert_no_digest(cert_no: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of the normalised ID number under ``key``.

    Keyed rather than a plain hash: there are only ~10^10 plausible ID numbers, so an unkeyed
    digest could be reversed by enumeration by anyone holding the table.
    """
    if not key:
        raise ValueError("cert_no_digest() needs a non-empty key")
    normalised = cert_no.strip()
    if normalised.endswith("x"):
        normalised = normalised[:-1] + "X"
    return hmac.new(key, normalised.encode("ascii", "strict"), hashlib.sha256).hexdigest()


def is_placeholder(value: object) -> bool:
    """True for a masked value (``1******************9``, ``张*``) sent back instead of data.

    Clients that display the masked identity sometimes post it back; it must be recognised
    and never sent to Alibaba or validated as a real number.
    """
    return isinstance(value, str) and "*" in value


class Sensitive:
    """A clear ID number or name that never shows itself: ``repr``, ``str`` and formatting mask it.

    Why a wrapper and not a ``str``: error trackers record the local variables of every frame of
    a traceback (``traceback.TracebackException(capture_locals=True)``, sentry-sdk's default), and
    loggers format whatever they are given. Carried as :class:`Sensitive` from the request schema
    (or the identity loader) to the wire encoder, a clear value appears in no frame's ``repr``;
    only :meth:`reveal`, called where the value must really be used (validation, the digest, the
    request body sent to Alibaba), gives it back.
    """

    __slots__ = ("_masked", "_value")

    def __init__(self, value: str, *, kind: str = "cert_no") -> None:
        if isinstance(value, Sensitive):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Sensitive wraps a str, got {type(value).__name__}")
        if kind not in ("cert_no", "cert_name"):
            raise ValueError(f"kind must be 'cert_no' or 'cert_name', got {kind!r}")
        self._value = value
        self._masked = mask_cert_no(value) if kind == "cert_no" else mask_cert_name(value)

    def reveal(self) -> str:
        """The clear value. Call it only where the value is used, never to log or display it."""
        return self._value

    @property
    def masked(self) -> str:
        return self._masked

    def __repr__(self) -> str:
        return f"Sensitive({self._masked!r})"

    def __str__(self) -> str:
        return self._masked

    def __format__(self, spec: str) -> str:
        return format(self._masked, spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sensitive):
            return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Sensitive", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        # Pickling (multiprocessing, caches) would carry the clear value somewhere unplanned.
        raise TypeError("Sensitive values cannot be pickled")


def reveal(value: str | Sensitive) -> str:
    """The clear text of ``value``, whether it is a :class:`Sensitive` or already a ``str``."""
    return value.reveal() if isinstance(value, Sensitive) else value
