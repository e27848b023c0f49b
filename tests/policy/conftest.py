from __future__ import annotations

import pytest

from tests.policy.online_world import OnlineWorld, build_world


@pytest.fixture(scope="session")
def online_world(tmp_path_factory: pytest.TempPathFactory) -> OnlineWorld:
    return build_world(tmp_path_factory.mktemp("online-bundle"))
