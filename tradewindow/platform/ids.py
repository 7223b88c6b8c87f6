"""Time-ordered ids generated client-side (ULID: 48-bit milliseconds + 80 random bits, Crockford
base32, 26 characters). They sort by creation time, so indexes stay append-mostly, and any writer
(SQLite, PostgreSQL, bulk COPY, a worker on another machine) can make them without asking the
database."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def new_id() -> str:
    """A new ULID. Within one millisecond the random part is incremented, so ids made by one
    process are strictly increasing."""
    global _last_ms, _last_random
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << 80) - 1)
        else:
            _last_ms = ms
            _last_random = int.from_bytes(os.urandom(10), "big")
        value = (ms << 80) | _last_random
    return _encode(value)


_RANDOM = (1 << 80) - 1
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]     # 10 bits -> two characters


def new_ids(count: int) -> list[str]:
    """`count` new ULIDs at once, strictly increasing and in order with new_id's (one millisecond,
    consecutive random parts): for bulk inserts, where encoding ids one by one costs more than
    the rows. Only the last four characters change between neighbours, so each costs little."""
    global _last_ms, _last_random
    if count <= 0:
        return []
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            first = (_last_random + 1) & _RANDOM
        else:
            _last_ms = ms
            first = int.from_bytes(os.urandom(10), "big")
        _last_random = (first + count - 1) & _RANDOM
    made = []
    high, prefix = -1, ""
    top = ms << 80
    for step in range(count):
        value = top | ((first + step) & _RANDOM)
        if value >> 20 != high:
            high = value >> 20
            prefix = _encode(value)[:22]
        low = value & 0xFFFFF
        made.append(prefix + _PAIRS[low >> 10] + _PAIRS[low & 1023])
    return made


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
