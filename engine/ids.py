"""Random ids, several at a time: version-4 UUIDs (what uuid4().hex gives) and time-ordered version-7
ones (RFC 9562), each as 32 hex digits.

``uuid.uuid4`` asks the operating system for 16 random bytes per id, a system call each: a batch of
decisions, one id per decision, paid that call eight times where one read serves them all.

Ids that are a table's key should be time-ordered: random keys land anywhere in the key's index, so each
insert touches another page once the index outgrows the cache, and logging a decision slows as the log
grows. Time-ordered ids land at the index's end, a batch's keys together (docs/benchmarks.md has the
measured difference).
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def random_ids(n: int) -> list[str]:
    """``n`` random version-4 UUIDs (RFC 4122 variant), each as 32 lower-case hex digits, from one read of
    the operating system's random source."""
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    raw = bytearray(os.urandom(16 * n))
    # The version (4) in the high nibble of byte 6 and the variant (10xx) in the top bits of byte 8, as
    # uuid.UUID(bytes=..., version=4) sets them.
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    text = raw.hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def time_ordered_ids(unix_ms: Sequence[int]) -> list[str]:
    """One version-7 UUID per instant (milliseconds since the Unix epoch): the instant in the first 48 bits,
    then random bits, so that ids of later instants sort after earlier ones (as text too)."""
    ids = random_ids(len(unix_ms))
    out = []
    for text, ms in zip(ids, unix_ms):
        if not 0 <= ms < 1 << 48:
            raise ValueError(f"a version-7 id holds 0 <= ms < 2**48 since the epoch, got {ms}")
        out.append(f"{ms:012x}7{text[13:]}")  # text[12] was the version digit 4; the variant bits stay
    return out
