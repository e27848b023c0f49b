"""docs/features.md's feature tables, generated from the definitions (engine/features/definitions/groups.py).

    python -m engine.features.definitions.docs docs/features.md    # rewrite the generated part in place

tests/features/test_docs.py fails when the file's tables are not what this module generates.
"""

from __future__ import annotations

import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

from engine.features.definitions import terms as t
from engine.features.definitions import GROUPS
from engine.features.definitions.terms import Each, Feature, Group, OnlyWith

BEGIN = "<!-- The tables below are generated from engine/features/definitions/groups.py by `python -m engine.features.definitions.docs docs/features.md`: edit the definitions, not the tables. -->"
END = "<!-- end of the generated tables -->"

_PLACEHOLDERS = {"channel": "<channel>", "topic": "<topic>", "stage": "<stage>", "window": "<W>", "long": "<L>", "short": "<S>"}
_LABEL_PLACEHOLDERS = {**_PLACEHOLDERS, "window": "last <W> days", "long": "last <L> days", "short": "last <S> days"}
_WINDOWS = {t.LONG: "L", t.SHORT: "S", t.EACH: "W", None: "ever"}
_EACH = {"channel": "each channel of the catalog", "topic": "each topic of the catalog",
         "stage": "each journey stage (awareness, consideration, purchase, loyalty)"}


def feature_tables(groups: tuple[Group, ...] = GROUPS) -> str:
    """One section per group, with a table of its features in column order."""
    parts = []
    for group in groups:
        parts.append(f"### {group.name} ({group.level} level)\n\n{group.about}\n\n| column | for | definition | label (as explanations show it) |\n|---|---|---|---|")
        parts.extend(_rows(group.items, ""))
        parts.append("")
    parts.append("### attributes (candidate level)\n\nEach extra column of `customers` becomes `profile_<column>`, each extra "
                 "column of `messages` `msg_attr_<column>` (`Attribute`), encoded as the section \"Attributes\" says.\n")
    return "\n".join(parts)


def _rows(items, each: str) -> list[str]:
    rows = []
    for item in items:
        if isinstance(item, Feature):
            name = item.name.format(**_PLACEHOLDERS)
            rows.append(f"| `{name}` | {each or 'the customer'} | `{_render(item.term)}` | {item.label.format(**_LABEL_PLACEHOLDERS)} |")
        elif isinstance(item, Each):
            over = _EACH.get(item.over) or ("W in " + ", ".join(_window(w) for w in item.windows) if item.windows
                                            else "each window W of `windows_days`")
            rows.extend(_rows(item.features, over if not each else f"{each}; {over}"))
        elif isinstance(item, OnlyWith):
            rows.extend(_rows(item.items, (each + "; " if each else "") + "only when the catalog shares offers"))
    return rows


def _window(window) -> str:
    return _WINDOWS.get(window, f"{window} d") if not isinstance(window, int) else f"{window} d"


def _render(term) -> str:
    """A term as written in the definitions, symbols shown as the tables name them."""
    if isinstance(term, str):
        return term.format(**_PLACEHOLDERS)
    parts = []
    for field in fields(term):
        value = getattr(term, field.name)
        if field.name in ("code", "columns", "prior_rate", "strength") or (value is None and field.name == "per"):
            continue  # filled in by resolve(): not part of the definition
        if field.name == "window":
            parts.append(_window(value))
        elif is_dataclass(value):
            parts.append(_render(value))
        elif isinstance(value, tuple):
            parts.append("+".join(value))
        elif isinstance(value, str):
            parts.append(_render(value) if "{" in value else value)
        else:
            parts.append(str(value))
    return f"{type(term).__name__}({', '.join(parts)})"


def rewrite(text: str) -> str:
    """``text`` with the part between BEGIN and END replaced by :func:`feature_tables`."""
    if BEGIN not in text or END not in text:
        raise ValueError("the file has no generated part (its BEGIN and END lines)")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{feature_tables()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m engine.features.definitions.docs docs/features.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
