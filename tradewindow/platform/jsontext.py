"""JSON text as Trade Window writes it: compact (no spaces), UTF-8 (no \\u escapes), keys in the
order given; and JSON read fast where that gives what the standard library reads (`read`).

Two flavours, one per reader:
- `stored`: what JSON columns hold (platform.db's serializer, bulk COPY): a value JSON has no type
  for (Decimal, datetime, date, ...) is written as its str().
- `answer`: what the API answers: dates and times in ISO 8601, decimals as strings, anything else
  JSON has no type for is a programming error (TypeError).

orjson writes both about six times faster than the standard library, which mattered: encoding a
declaration's filing, assessment, audit records and events was a tenth of the server's CPU per
lodgement. Whatever orjson refuses (integers beyond 64 bits, lone surrogates in text, nesting
deeper than 254 levels) goes to the standard library, which writes the same text for everything
else (tests/platform/test_jsontext.py). Floats are the same number, though orjson may spell an
exponent differently (1e-5, not 1e-05)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["JsonText", "answer", "read", "stored"]


class JsonText(str):
    """A JSON column's value already written as JSON text: stored as it is, not encoded again,
    by whatever path writes it (an INSERT through the engine, or a COPY)."""

    __slots__ = ()

_STORED_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_stored_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def stored(value: Any) -> str:
    """JSON text for a JSON column (`JsonText` as it is)."""
    if type(value) is JsonText:
        return value
    try:
        return orjson.dumps(value, default=str, option=_STORED_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return _stored_fallback(value)


def _answer_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_ANSWER_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_answer_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_answer_default).encode


def answer(value: Any) -> bytes:
    """UTF-8 JSON for an API answer."""
    try:
        return orjson.dumps(value, default=_answer_default, option=_ANSWER_OPTIONS)
    except orjson.JSONEncodeError as error:
        if isinstance(error.__cause__, TypeError):   # a type JSON has no place for: say so
            raise error.__cause__ from None
        return _answer_fallback(value).encode()


# 19 digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float. Found as 19
# zeros once every digit is a zero (a regular expression took four times orjson's time per line).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def read(raw: bytes, standard: Callable[[], Any] | None = None) -> Any:
    """`standard()` (default: json.loads(raw)), read by orjson in a third of the time where orjson
    reads it the same: whatever orjson refuses (a BOM, NaN, a lone surrogate, UTF-16, ...) or might
    read otherwise (a huge integer) is read by the standard library, so the value, or the error,
    is the standard library's (tests/platform/test_jsontext.py)."""
    if _LONG_DIGITS not in raw.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return standard() if standard is not None else json.loads(raw)
