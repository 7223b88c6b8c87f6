"""JSON text as Trade Window writes it: compact (no spaces), UTF-8 (no \\u escapes), keys in the
order given.

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
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["answer", "stored"]

_STORED_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_stored_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def stored(value: Any) -> str:
    """JSON text for a JSON column."""
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
