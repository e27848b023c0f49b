"""Random ids: what uuid4().hex gives (a version-4 UUID as 32 hex digits), several at a time.

``uuid.uuid4`` asks the operating system for 16 random bytes per id, a system call each: a batch of
decisions, one id per decision, paid that call eight times where one read serves them all.
"""

from __future__ import annotations

import os


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
