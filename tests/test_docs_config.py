"""Every TOML block the README and docs/ show loads as a configuration: a documented setting exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(path.name, i, block) for path in DOCS
          for i, block in enumerate(re.findall(r"```toml\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S))]


def test_the_docs_show_configuration_blocks():
    assert any(name == "README.md" for name, _, _ in BLOCKS)


@pytest.mark.parametrize(("name", "index", "block"), BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_each_documented_block_loads(tmp_path, name, index, block):
    path = tmp_path / "nbm.toml"
    path.write_text(block)
    load_settings(path, environ=False)
