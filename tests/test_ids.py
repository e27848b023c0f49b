"""random_ids: what uuid4().hex gives, several at a time."""

from __future__ import annotations

import uuid

import pytest

from engine.ids import random_ids


def test_each_id_is_a_version_4_uuid_in_32_hex_digits_and_they_differ():
    ids = random_ids(2000)
    assert len(ids) == 2000 and len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)
    # The random bits are left alone: over 2,000 ids every hex digit shows up at a free position.
    assert {text[0] for text in ids} == set("0123456789abcdef")


def test_no_ids_and_a_negative_count():
    assert random_ids(0) == []
    with pytest.raises(ValueError, match="must not be negative"):
        random_ids(-1)


def test_time_ordered_ids_are_version_7_and_sort_by_their_instant():
    from engine.ids import time_ordered_ids

    instants = [1_700_000_000_000 + i // 3 for i in range(30)]  # three ids per millisecond
    ids = time_ordered_ids(instants)
    for text, ms in zip(ids, instants):
        parsed = uuid.UUID(hex=text)
        assert (parsed.version, parsed.variant, parsed.hex) == (7, uuid.RFC_4122, text)
        assert int(text[:12], 16) == ms
    assert len(set(ids)) == 30
    # Later instants sort after earlier ones, whatever the random bits.
    assert [int(t[:12], 16) for t in sorted(ids)] == instants
    assert time_ordered_ids([]) == []
    with pytest.raises(ValueError, match="2\\*\\*48"):
        time_ordered_ids([-1])
