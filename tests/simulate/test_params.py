"""SimulationParams rejects inconsistent worlds with messages that say what is wrong."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from engine.simulate import SimulationParams
from engine.simulate.params import DEFAULT_CHANNEL_PARAMS


def test_defaults_are_valid_and_cover_the_required_vocabularies() -> None:
    params = SimulationParams()
    assert params.channels == ("email", "sms", "push", "web", "app")
    assert len(params.topics) >= 8
    assert params.messages >= len(params.channels) * len(params.topics)
    assert params.end == datetime(2026, 6, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("update", "message"), [
    ({"end": datetime(2026, 6, 30)}, "timezone-aware"),
    ({"end": datetime(2026, 6, 30, 12, tzinfo=timezone.utc)}, "UTC midnight"),
    ({"messages": 39}, "need at least 40 for the daily logging policy"),
    ({"messages": 44, "topics": tuple("abcdefghi")}, "channels x topics = 45"),
    ({"topics": ("a", "b", "c")}, "at least 8"),
    ({"channel_params": {"email": DEFAULT_CHANNEL_PARAMS["email"]}}, "channel_params keys"),
    ({"stage_initial_share": (0.5, 0.5, 0.5, 0.5)}, "sum to 1"),
])
def test_inconsistent_params_are_rejected(update: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SimulationParams(**update)


def test_params_are_frozen_and_unknown_knobs_rejected() -> None:
    params = SimulationParams()
    with pytest.raises(ValidationError):
        params.customers = 5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        SimulationParams(customer=5)  # a typo must not pass silently
