"""ID-number and name validation (GB 11643-1999), masking, and the keyed digest."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_alicertify.identity import CHECK_CHARS
from flask_alicertify.identity import InvalidIdentity
from flask_alicertify.identity import cert_no_digest
from flask_alicertify.identity import check_digit
from flask_alicertify.identity import is_placeholder
from flask_alicertify.identity import mask_cert_name
from flask_alicertify.identity import mask_cert_no
from flask_alicertify.identity import validate_cert_name
from flask_alicertify.identity import validate_cert_no

# Published examples with correct check digits: the GB 11643-1999 standard's own sample
# (11010519491231002X) and the one widely quoted from the Chinese Wikipedia article.
KNOWN_VALID = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("cert_no", KNOWN_VALID)
def test_known_valid_numbers(cert_no: str) -> None:
    assert validate_cert_no(cert_no) == cert_no


def test_check_digit_by_hand() -> None:
    # 1*7+1*9+0*10+1*5+0*8+5*4+1*2+9*1+4*6+9*3+1*7+2*9+3*10+1*5+0*8+0*4+2*2 = 167; 167 % 11 = 2 -> "X"
    assert check_digit("11010519491231002") == "X"
    assert check_digit("44052418800101001") == "4"


def test_normalisation() -> None:
    assert validate_cert_no("  11010519491231002x\n") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "cert_no_length"),
        ("1101051949123100", "cert_no_length"),
        ("11010519491231002X1", "cert_no_length"),
        ("11010519491231002Y", "cert_no_charset"),
        ("X10105194912310021", "cert_no_charset"),
        ("1101051949123100２X", "cert_no_charset"),  # full-width digit
        ("110105 9491231002X", "cert_no_charset"),
        ("110105194913310025", "cert_no_birth_date"),  # month 13
        ("110105194902300027", "cert_no_birth_date"),  # 30 February
        ("110105300001010010", "cert_no_birth_date"),  # year 3000
        ("110105179912310010", "cert_no_birth_date"),
        ("110105194912310021", "cert_no_check_digit"),
        ("440524188001010015", "cert_no_check_digit"),
    ],
)
def test_invalid_numbers(value: str, code: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        validate_cert_no(value)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)
    # The message never echoes the number back.
    assert value.strip() not in str(info.value) or not value.strip()
    assert info.value.message("zh") and info.value.message("en") == str(info.value)


def test_check_digit_message() -> None:
    with pytest.raises(InvalidIdentity) as info:
        validate_cert_no("110105194912310021")
    assert info.value.message_zh == "身份证号码校验位不正确"
    assert info.value.message_en == "The ID number's check digit is wrong."


@pytest.mark.parametrize("value", [None, 110105194912310021, b"11010519491231002X"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidIdentity):
        validate_cert_no(value)


births = st.dates(min_value=date(1900, 1, 1), max_value=date.today())
regions = st.text(alphabet="0123456789", min_size=6, max_size=6)
sequences = st.text(alphabet="0123456789", min_size=3, max_size=3)


def independent_check_digit(first17: str) -> str:
    """A second, loop-free transcription of GB 11643-1999 (weights are 2^(17-i) mod 11)."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    return "10X98765432"[total % 11]


@given(region=regions, born=births, seq=sequences)
def test_any_number_with_its_check_digit_validates(region: str, born: date, seq: str) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq}"
    cert_no = first17 + independent_check_digit(first17)
    assert check_digit(first17) == cert_no[-1]
    assert validate_cert_no(cert_no) == cert_no
    assert validate_cert_no(cert_no.lower()) == cert_no


@given(region=regions, born=births, seq=sequences, other=st.sampled_from(sorted(CHECK_CHARS)))
def test_any_other_check_digit_fails(region: str, born: date, seq: str, other: str) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq}"
    if other == independent_check_digit(first17):
        other = CHECK_CHARS[(CHECK_CHARS.index(other) + 1) % 11]
    with pytest.raises(InvalidIdentity) as info:
        validate_cert_no(first17 + other)
    assert info.value.code == "cert_no_check_digit"


@pytest.mark.parametrize(
    "name",
    [
        "张三",
        "欧阳娜娜",
        "阿卜杜拉·买买提",
        "阿卜杜拉•买买提",
        "John Smith",
        "Zoë",
        "A",
        "张 · 三",
        "李" * 64,
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_cert_name(name) == name


def test_name_is_stripped() -> None:
    assert validate_cert_name("  张三\n") == "张三"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "cert_name_empty"),
        ("   ", "cert_name_empty"),
        ("李" * 65, "cert_name_length"),
        ("张3", "cert_name_charset"),
        ("张三\x00", "cert_name_charset"),
        ("a\tb", "cert_name_charset"),
        ("张-三", "cert_name_charset"),
        ("Robert'); DROP TABLE", "cert_name_charset"),
        ("·张三", "cert_name_separator"),
        ("张三·", "cert_name_separator"),
        ("张··三", "cert_name_separator"),
        (None, "cert_name_type"),
    ],
)
def test_invalid_names(name: object, code: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        validate_cert_name(name)
    assert info.value.code == code


def test_masks() -> None:
    assert mask_cert_no("110101199003074514") == "1****************4"
    assert mask_cert_no("11010519491231002X") == "1****************X"
    assert mask_cert_name("张三") == "张*"
    assert mask_cert_name("欧阳娜娜") == "欧***"
    assert mask_cert_name("A") == "*"
    assert mask_cert_name("") == ""


def test_digest_is_keyed_and_normalised() -> None:
    digest = cert_no_digest("11010519491231002X", b"key-1")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert cert_no_digest("11010519491231002x", b"key-1") == digest
    assert cert_no_digest("11010519491231002X", b"key-2") != digest
    assert cert_no_digest("440524188001010014", b"key-1") != digest
    assert digest != hashlib.sha256(b"11010519491231002X").hexdigest()
    with pytest.raises(ValueError):
        cert_no_digest("11010519491231002X", b"")


def test_placeholders() -> None:
    assert is_placeholder("1******************9")
    assert is_placeholder(mask_cert_no("11010519491231002X"))
    assert is_placeholder("张*")
    assert not is_placeholder("11010519491231002X")
    assert not is_placeholder(None)


# -- names that show nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("\u3164\u3164\u3164", "cert_name_invisible"),  # HANGUL FILLER: a "letter" (Lo) that shows nothing
        ("\uffa0\uffa0", "cert_name_invisible"),  # HALFWIDTH HANGUL FILLER
        ("\u115f\u1160", "cert_name_invisible"),  # Hangul choseong/jungseong fillers
        ("张\u3164三", "cert_name_invisible"),
        ("张\ufe0f三", "cert_name_invisible"),  # a variation selector inside a name (Mn)
        ("张三\U000e0100", "cert_name_invisible"),  # an ideographic variation selector
        ("张\u200b三", "cert_name_invisible"),  # zero-width space
        ("张\u2060三", "cert_name_invisible"),  # word joiner
        ("Zo\u034fe", "cert_name_invisible"),  # combining grapheme joiner: a mark that shows nothing
        ("\u0301\u0301\u0301", "cert_name_marks"),  # combining marks with no letter
        ("\u0301张三", "cert_name_marks"),
        ("John \u0301Smith", "cert_name_marks"),  # a mark after a space has no letter either
        ("e\u0301\u0301\u0301\u0301\u0301", "cert_name_marks"),  # five marks on one letter
    ],
)
def test_names_that_show_nothing_are_refused(name: str, code: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        validate_cert_name(name)
    assert info.value.code == code
    assert name not in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "Zoe\u0308",  # Zoë with a combining diaeresis (NFD), as macOS and some keyboards produce it
        "Zo\u00eb",  # the precomposed form
        "Nguye\u0302\u0303n",  # two stacked marks (Vietnamese)
        "Jos\u00e9 Garc\u00eda",
        "阿卜杜拉·买买提",
        "欧阳娜娜",
        "张三",
    ],
)
def test_real_names_with_marks_stay_valid(name: str) -> None:
    assert validate_cert_name(name) == name


def test_every_default_ignorable_code_point_is_refused() -> None:
    from flask_alicertify.identity import is_ignorable

    # Spot checks at both ends of each range (Unicode's DerivedCoreProperties.txt).
    for code in (
        0x00AD,
        0x034F,
        0x061C,
        0x115F,
        0x1160,
        0x17B4,
        0x180B,
        0x180F,
        0x200B,
        0x200F,
        0x202A,
        0x206F,
        0x3164,
        0xFE00,
        0xFE0F,
        0xFEFF,
        0xFFA0,
        0xFFF0,
        0x1BCA0,
        0x1D173,
        0xE0000,
        0xE0FFF,
    ):
        assert is_ignorable(chr(code)), hex(code)
        with pytest.raises(InvalidIdentity):
            validate_cert_name("张" + chr(code) + "三")
    for ch in "张Zé·•・‧ 　":
        assert not is_ignorable(ch)
