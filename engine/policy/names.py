"""The channels, topics and messages that ``[policy]`` names, checked against a model's catalog: a
misspelt name would otherwise configure nothing, silently (a cap on "whatsapp", a lever on "mail")."""

from __future__ import annotations

from collections.abc import Collection

from engine.config import PolicySettings
from engine.errors import ConfigError


def unknown_names(policy: PolicySettings, channels: Collection[str], topics: Collection[str], messages: Collection[str]) -> list[str]:
    """One line per setting that names what the catalog does not have, with the names it has."""
    problems = []

    def check(where: str, names, known: Collection[str], kind: str) -> None:
        for name in names:
            if name not in known:
                shown = ", ".join(sorted(known)) if len(known) <= 20 else ", ".join(sorted(known)[:20]) + ", ..."
                problems.append(f"{where.format(name=name)}: no {kind} {name!r} in the model's catalog ({kind}s: {shown})")

    check("[policy.contact.channels.{name}]", policy.contact.channels, channels, "channel")
    check("[policy.contact] promotional_topics", policy.contact.promotional_topics or (), topics, "topic")
    check("[policy] channel_levers.{name}", policy.channel_levers, channels, "channel")
    check("[policy] topic_levers.{name}", policy.topic_levers, topics, "topic")
    for number, rule in enumerate(policy.rules, start=1):
        if rule.topic is not None:
            check(f"[[policy.rules]] #{number} topic", (rule.topic,), topics, "topic")
        if rule.message_id is not None:
            check(f"[[policy.rules]] #{number} message_id", (rule.message_id,), messages, "message")
    return problems


def check_names(policy: PolicySettings, channels: Collection[str], topics: Collection[str], messages: Collection[str]) -> None:
    """Raise :class:`ConfigError` listing every name of ``policy`` the catalog does not have."""
    problems = unknown_names(policy, channels, topics, messages)
    if problems:
        raise ConfigError("the configuration names what the model's catalog does not have: " + "; ".join(problems))
