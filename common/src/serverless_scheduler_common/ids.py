"""Identifiers: sortable, URL-safe, unique without coordination."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id() -> str:
    """A 26-character ULID-style id: 48-bit millisecond time + 80 random bits.

    Ids sort by creation time and never collide in practice, with no shared counter
    (a "last id + 1" scheme races under concurrent creates).
    """
    millis = time.time_ns() // 1_000_000
    return _b32(millis, 10) + _b32(int.from_bytes(os.urandom(10), "big"), 16)
