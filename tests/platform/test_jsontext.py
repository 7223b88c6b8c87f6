"""JSON text: orjson writes exactly what the standard library's encoder wrote before it, for the
values Trade Window stores and answers; what orjson refuses still comes out as before."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewindow.platform import jsontext

STORED_BEFORE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _answer_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def answered_before(value) -> bytes:
    return json.dumps(value, default=_answer_default, ensure_ascii=False, separators=(",", ":")).encode()


zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
           | st.decimals(allow_nan=False, allow_infinity=False, places=2) | st.dates()
           | st.datetimes(timezones=zones) | st.datetimes())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)


@given(values)
def test_stored_text_is_the_standard_encoders(value):
    assert jsontext.stored(value) == STORED_BEFORE(value)


@given(values)
def test_answer_is_the_standard_encoders(value):
    assert jsontext.answer(value) == answered_before(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_is_the_same_number(number):
    assert json.loads(jsontext.stored({"x": number})) == {"x": number}


def _nested(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("value", [2**70, "lone \ud800 surrogate", _nested(300)],
                         ids=["beyond 64 bits", "lone surrogate", "300 levels deep"])
def test_what_orjson_refuses_is_written_as_before(value):
    assert jsontext.stored(value) == STORED_BEFORE(value)


def test_integer_keys_are_written_as_text():
    assert jsontext.stored({1: "a", None: "b"}) == STORED_BEFORE({1: "a", None: "b"})


def test_an_answer_with_a_type_json_has_no_place_for_is_a_type_error():
    with pytest.raises(TypeError, match="object"):
        jsontext.answer({"x": object()})


any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=10)
odd_texts = st.sampled_from([
    b"\xef\xbb\xbf{}", b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b'{"a": "\\ud800"}',
    b'{"a": 1, "a": 2}', b"[" * 300 + b"]" * 300, b"\xff{}", b"{", b'{"a": 12345678901234567890123}',
    b'{"a": -9999999999999999999}', b'{"a": 18446744073709551616}', b'{"a": 9223372036854775808}',
    b'{"a": -0}', b'{"a": "\xe9"}', b" {} \r\n", b""])


@settings(max_examples=300, deadline=None)
@given(value=any_json, odd=st.none() | odd_texts, encoding=st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_read_gives_what_the_standard_library_reads(value, odd, encoding):
    """The same value, or the same refusal, whatever the bytes: huge integers, NaN, a BOM, lone
    surrogates, deep nesting, any encoding json.loads detects."""
    raw = odd if odd is not None else json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")
    try:
        expected = json.loads(raw)
    except ValueError:
        with pytest.raises(ValueError):
            jsontext.read(raw)
        return
    seen = jsontext.read(raw)
    assert json.dumps(seen, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert type(seen) is type(expected)
