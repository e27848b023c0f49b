from __future__ import annotations

import pytest

from tests.policy.online_world import OnlineWorld, build_world


@pytest.fixture(scope="session")
def online_world(tmp_path_factory: pytest.TempPathFactory) -> OnlineWorld:
    return build_world(tmp_path_factory.mktemp("online-bundle"))


# The per-row history columns serving skips when the model never splits on them.
COSTLY_ROW_FEATURES = ("msg_seen_count", "msg_days_since_shown", "msg_topic_days_since_shown")


@pytest.fixture(scope="session")
def blind_world(tmp_path_factory: pytest.TempPathFactory) -> OnlineWorld:
    """The online world with a model trained without the costly per-row columns."""
    return build_world(tmp_path_factory.mktemp("blind-bundle"), blind_to=COSTLY_ROW_FEATURES)
