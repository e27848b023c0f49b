"""The definitions resolved for one catalog and ``[features]`` settings: every column's name and concrete
term (no symbol left), what the interpreters compute."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import cached_property

from engine.config import FeatureSettings
from engine.contract.schema import JOURNEY_STAGES
from engine.features.definitions import terms as t
from engine.features.definitions.groups import GROUPS, last_days
from engine.features.definitions.terms import EACH, LONG, SHORT, Each, Feature, Group, OnlyWith

ATTRIBUTE_PREFIXES = {"profile": "profile_", "message": "msg_attr_"}


@dataclass(frozen=True)
class Catalog:
    """What the definitions are resolved against: the catalog's channels and topics (in code order), the
    journey stages, whether offers are shared, and the encoded attribute columns (name, is a date)."""

    channels: tuple[str, ...]
    topics: tuple[str, ...]
    shared_offers: bool = False
    profile_attributes: tuple[tuple[str, bool], ...] = ()
    message_attributes: tuple[tuple[str, bool], ...] = ()
    stages: tuple[str, ...] = JOURNEY_STAGES


@dataclass(frozen=True)
class Resolved:
    """The features as columns: names in order and each one's concrete term (no symbol left), customer
    level first, then candidate level (the attribute columns last)."""

    customer: tuple[tuple[str, t.Term], ...]
    candidate: tuple[tuple[str, t.Term], ...]
    labels: tuple[tuple[str, str], ...] = ()  # each column's label (terms.Feature.label), as explanations show it

    @cached_property
    def label_of(self) -> dict[str, str]:
        return dict(self.labels)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return (*(n for n, _ in self.customer), *(n for n, _ in self.candidate))

    @cached_property
    def terms(self) -> dict[str, t.Term]:
        return dict((*self.customer, *self.candidate))

    def level_of(self, names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``names`` split into customer-level and candidate-level ones, each in the order given; a name
        that no definition gives raises :class:`UnknownFeatures`."""
        customer = {n for n, _ in self.customer}
        candidate = {n for n, _ in self.candidate}
        unknown = [n for n in names if n not in customer and n not in candidate]
        if unknown:
            raise UnknownFeatures(tuple(unknown))
        return tuple(n for n in names if n in customer), tuple(n for n in names if n in candidate)


class UnknownFeatures(KeyError):
    """Columns that no definition gives (a model trained by another nbm)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(names)
        self.names = names


def resolve(settings: FeatureSettings, catalog: Catalog, groups: Iterable[Group] = GROUPS) -> Resolved:
    """Every feature's name and concrete term for this catalog and these settings. A name written twice
    keeps its first place and its last term (as a dict does)."""
    levels: dict[str, dict[str, t.Term]] = {"customer": {}, "candidate": {}}
    labels: dict[str, str] = {}
    for group in groups:
        for name, term, label in _expand(group.items, settings, catalog, {}):
            levels[group.level][name] = term
            labels[name] = label
    for source, columns in (("profile", catalog.profile_attributes), ("message", catalog.message_attributes)):
        for column, is_date in columns:
            levels["candidate"][ATTRIBUTE_PREFIXES[source] + column] = t.Attribute(source, column, is_date)
            labels[ATTRIBUTE_PREFIXES[source] + column] = f"{'customer' if source == 'profile' else 'message'} {column.replace('_', ' ')}"
    clash = levels["customer"].keys() & levels["candidate"].keys()
    if clash:
        raise ValueError(f"feature definitions name the same column twice: {sorted(clash)[:5]}")
    return Resolved(tuple(levels["customer"].items()), tuple(levels["candidate"].items()), tuple(labels.items()))


def _expand(items, settings: FeatureSettings, catalog: Catalog, at: dict) -> Iterable[tuple[str, t.Term, str]]:
    for item in items:
        if isinstance(item, Feature):
            yield _name(item.name, settings, at), _concrete(item.term, settings, catalog, at), _label(item.label, settings, at)
        elif isinstance(item, OnlyWith):
            if item.condition == "shared_offers" and catalog.shared_offers:
                yield from _expand(item.items, settings, catalog, at)
        elif isinstance(item, Each):
            if item.over == "window":
                for window in item.windows or settings.windows_days:
                    yield from _expand(item.features, settings, catalog, {**at, "window": _window(window, settings, at)})
            else:
                for code, value in enumerate(_values(item.over, catalog)):
                    yield from _expand(item.features, settings, catalog, {**at, item.over: (code, value)})
        else:
            raise TypeError(f"not a feature definition: {item!r}")


def _values(dimension: str, catalog: Catalog) -> tuple[str, ...]:
    return {"channel": catalog.channels, "topic": catalog.topics, "stage": catalog.stages}[dimension]


def long_window(settings: FeatureSettings) -> int:
    return settings.windows_days[-1]


def short_window(settings: FeatureSettings) -> int:
    windows = settings.windows_days
    return windows[-2] if len(windows) > 1 else windows[-1]


def _window(window: t.Window, settings: FeatureSettings, at: dict) -> int | None:
    if window == LONG:
        return long_window(settings)
    if window == SHORT:
        return short_window(settings)
    if window == EACH:
        if "window" not in at:
            raise ValueError("a window EACH outside an Each over windows")
        return at["window"]
    return window  # type: ignore[return-value]


def _name(template: str, settings: FeatureSettings, at: dict) -> str:
    values = {"long": long_window(settings), "short": short_window(settings)}
    values.update({key: (value[1] if isinstance(value, tuple) else value) for key, value in at.items()})
    try:
        return template.format(**values)
    except KeyError as missing:
        raise ValueError(f"feature {template!r} names {missing} outside an Each over it") from None


def _label(template: str, settings: FeatureSettings, at: dict) -> str:
    values = {"long": last_days(long_window(settings)), "short": last_days(short_window(settings))}
    values.update({key: (value[1] if isinstance(value, tuple) else last_days(value)) for key, value in at.items()})
    return template.format(**values)


_PRIORS = {"open": "prior_open_rate", "click": "prior_click_rate", "conversion": "prior_conversion_rate"}


def _concrete(term, settings: FeatureSettings, catalog: Catalog, at: dict):
    """``term`` with every symbol replaced (module docstring of engine.features.definitions.terms)."""
    changes = {}
    for field in fields(term):
        value = getattr(term, field.name)
        if is_dataclass(value):
            changes[field.name] = _concrete(value, settings, catalog, at)
        elif field.name == "window":
            changes[field.name] = _window(value, settings, at)
    if isinstance(term, (t.Count, t.Decayed)) and term.per is not None:
        if term.per not in at:
            raise ValueError(f"{term!r} counts per {term.per} outside an Each over {term.per}")
        changes["code"] = at[term.per][0]
    if isinstance(term, t.Column):
        changes["name"] = _name(term.name, settings, at)
    if isinstance(term, t.Rate):
        changes["prior_rate"] = float(getattr(settings, _PRIORS[term.prior]))
        changes["strength"] = float(settings.prior_strength)
    if isinstance(term, (t.Pick, t.Gap, t.Rank)):
        changes["columns"] = tuple(_name(term.column, settings, {**at, term.of: (code, value)})
                                   for code, value in enumerate(_values(term.of, catalog)))
    return replace(term, **changes) if changes else term
