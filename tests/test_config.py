"""The settings tree: defaults, TOML, environment precedence, and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_settings
from engine.errors import ConfigError


def test_defaults_without_a_file(monkeypatch):
    monkeypatch.delenv("NBM_VALIDATION__MAX_REJECT_SHARE", raising=False)
    settings = load_settings(None)
    assert settings.validation.max_reject_share == 0.01
    assert str(settings.paths.home) == ".nbm"


def test_toml_values_and_environment_overrides(tmp_path, monkeypatch):
    path = tmp_path / "nbm.toml"
    path.write_text("[validation]\nmax_reject_share = 0.05\n\n[simulation]\nseed = 11\n")
    assert load_settings(path).validation.max_reject_share == 0.05
    monkeypatch.setenv("NBM_VALIDATION__MAX_REJECT_SHARE", "0.2")
    settings = load_settings(path)
    assert settings.validation.max_reject_share == 0.2  # the environment wins over the file
    assert settings.simulation.seed == 11  # the rest of the section still comes from the file
    assert load_settings(path, environ=False).validation.max_reject_share == 0.05


def test_settings_are_frozen():
    settings = load_settings(None, environ=False)
    with pytest.raises(Exception):
        settings.validation.max_reject_share = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[validatoin]\n", "validatoin: Extra inputs are not permitted"),
        ("[validation]\nmax_rejects = 1\n", "validation.max_rejects: Extra inputs are not permitted"),
        ("[validation]\nmax_reject_share = 2\n", "validation.max_reject_share: Input should be less than or equal to 1"),
        ("[validation\n", "not valid TOML"),
        ("[features]\nwindows_days = [7, 180]\naffinity_half_life_days = 5\n",
         "features: Value error, affinity_half_life_days = 5 is too short for the longest window of 180 days "
         "(36.0 half-lives; at most 20): use at least 9 days"),
    ],
)
def test_invalid_files_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "nbm.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=False)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "absent.toml")


def test_a_half_life_of_a_twentieth_of_the_longest_window_is_accepted(tmp_path):
    path = tmp_path / "nbm.toml"
    path.write_text("[features]\nwindows_days = [7, 180]\naffinity_half_life_days = 9\n")
    assert load_settings(path, environ=False).features.affinity_half_life_days == 9


def test_nbm_home_is_the_short_form_of_the_home_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("NBM_PATHS__HOME", raising=False)
    config = tmp_path / "nbm.toml"
    config.write_text('[paths]\nhome = "/from/the/file"\n')
    assert load_settings(config).paths.home == Path("/from/the/file")
    monkeypatch.setenv("NBM_HOME", "/srv/nbm")
    assert load_settings(config).paths.home == Path("/srv/nbm")  # the environment wins over the file
    assert load_settings().paths.home == Path("/srv/nbm")
    monkeypatch.setenv("NBM_PATHS__HOME", "/srv/nbm/")  # the same folder, said twice: fine
    assert load_settings().paths.home == Path("/srv/nbm")
    monkeypatch.setenv("NBM_PATHS__HOME", "/srv/other")
    with pytest.raises(ConfigError, match=r"NBM_HOME=/srv/nbm and NBM_PATHS__HOME=/srv/other name two homes: set one of them"):
        load_settings()
    monkeypatch.delenv("NBM_HOME")
    assert load_settings().paths.home == Path("/srv/other")
