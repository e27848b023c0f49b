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
