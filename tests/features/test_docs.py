"""docs/features.md's feature tables are the ones generated from the definitions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.features.definitions import terms as t
from engine.features.definitions import GROUPS
from engine.features.definitions.docs import feature_tables, rewrite

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def test_the_documented_tables_are_generated_from_the_definitions():
    text = DOC.read_text(encoding="utf-8")
    assert rewrite(text) == text, "docs/features.md is stale: run python -m engine.features.definitions.docs docs/features.md"


def test_a_new_definition_changes_the_tables():
    # What the staleness test compares: a feature added to a group appears in the tables.
    added = t.Feature("days_since_last_support", t.DaysSince(("support",)), "days since the last support contact")
    groups = (replace(GROUPS[0], items=(*GROUPS[0].items, added)), *GROUPS[1:])
    assert "days_since_last_support" not in feature_tables()
    assert "| `days_since_last_support` | the customer | `DaysSince(support)` | days since the last support contact |" in feature_tables(groups)


def test_a_term_reads_as_written_with_the_tables_symbols():
    rate = t.Feature("{channel}_click_rate_{long}d", t.Rate(t.Count(("click",), t.LONG, "channel"),
                                                              t.Count(("impression",), t.LONG, "channel"), "click"), "a rate")
    group = t.Group("g", "customer", (t.Each("channel", (rate,)),), "A group.")
    assert ("| `<channel>_click_rate_<L>d` | each channel of the catalog | "
            "`Rate(Count(click, L, channel), Count(impression, L, channel), click)` | a rate |") in feature_tables((group,))
