"""Per-message eligibility rules: journey-stage targeting and the ``[[policy.rules]]`` of nbm.toml.

Each rule is a vectorised check over candidates. The result is a :class:`Verdict`: an allowed mask and,
per rejected candidate, the reason code of the *first* check that failed, so the API can answer
``suppressed: {reason: count}``. Order of checks: ``journey_stage``, then each configured rule in file
order, within a rule ``attribute_in`` (columns in the order written) before ``min_days_since_purchase``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.config import MessageRule, PolicySettings, StageTargetingSettings
from engine.contract.schema import JOURNEY_STAGES
from engine.errors import ConfigError

JOURNEY_STAGE = "journey_stage"
ATTRIBUTE_IN = "attribute_in"
MIN_DAYS_SINCE_PURCHASE = "min_days_since_purchase"
# The customer attribute min_days_since_purchase reads: the feature of the same name (docs/features.md).
DAYS_SINCE_PURCHASE = "days_since_last_purchase"


@dataclass(frozen=True, eq=False)
class Verdict:
    """``allowed`` (n,) bool; ``reason`` (n,) str: the first failed check, "" where allowed."""

    allowed: np.ndarray
    reason: np.ndarray

    @classmethod
    def first_failure(cls, n: int, checks: Iterable[tuple[str, np.ndarray]]) -> Verdict:
        """Verdict of ordered ``(reason, passes)`` checks; an earlier failure is never overwritten."""
        reason = np.full(n, "", dtype=object)
        allowed = np.ones(n, dtype=bool)
        for code, passes in checks:
            failed = allowed & ~np.asarray(passes, dtype=bool)
            reason[failed] = code
            allowed &= ~failed
        return cls(allowed=allowed, reason=reason)

    def then(self, other: Verdict) -> Verdict:
        """Both verdicts must allow; a candidate keeps the reason of this (earlier) verdict first."""
        reason = np.where(self.allowed, other.reason, self.reason)
        return Verdict(allowed=self.allowed & other.allowed, reason=reason)

    def counts(self) -> dict[str, int]:
        """Rejections per reason, e.g. ``{"cooldown": 2}``, sorted by reason."""
        if self.allowed.all():
            return {}
        codes, counts = np.unique(self.reason[~self.allowed].astype(str), return_counts=True)
        return {str(c): int(k) for c, k in zip(codes, counts)}


def stage_codes(stages: Sequence[object] | np.ndarray) -> np.ndarray:
    """Journey-stage names (or 0..3 codes, NaN) as int codes into ``JOURNEY_STAGES``; -1 where unknown."""
    values = pd.Series(np.asarray(stages, dtype=object))
    named = values.map({s: i for i, s in enumerate(JOURNEY_STAGES)})
    numeric = pd.to_numeric(values.where(named.isna()), errors="coerce")
    numeric = numeric.where(numeric.isin(range(len(JOURNEY_STAGES))))
    return named.fillna(numeric).fillna(-1).to_numpy(dtype=np.int64)


def stage_matrix(settings: StageTargetingSettings) -> np.ndarray:
    """(message stage, customer stage) -> allowed, 4 x 4; a stage missing from ``allowed`` reaches its own
    stage and the adjacent ones."""
    index = {s: i for i, s in enumerate(JOURNEY_STAGES)}
    codes = np.arange(len(JOURNEY_STAGES))
    matrix = np.abs(codes[:, None] - codes[None, :]) <= 1
    for message_stage, customer_stages in settings.allowed.items():
        matrix[index[message_stage]] = False
        matrix[index[message_stage], [index[s] for s in customer_stages]] = True
    return matrix


def stage_allowed(message_stage: np.ndarray, customer_stage: np.ndarray, settings: StageTargetingSettings) -> np.ndarray:
    """A message without a stage goes to anyone; a staged one only to customers of an allowed stage.

    An unknown customer stage (-1) fails closed: a message that asks for a stage is not sent blind.
    """
    message_stage, customer_stage = stage_codes(message_stage), stage_codes(customer_stage)
    if not settings.enabled:
        return np.ones(len(message_stage), dtype=bool)
    matrix = stage_matrix(settings)
    known = customer_stage >= 0
    fits = matrix[np.maximum(message_stage, 0), np.maximum(customer_stage, 0)] & known
    return (message_stage < 0) | fits


def required_attributes(settings: PolicySettings) -> tuple[str, ...]:
    """Customer attributes :func:`rules_verdict` reads with these settings, in first-use order."""
    names: list[str] = []
    for rule in settings.rules:
        names += list(rule.attribute_in)
        if rule.min_days_since_purchase is not None:
            names.append(DAYS_SINCE_PURCHASE)
    return tuple(dict.fromkeys(names))


def rules_verdict(
    message_id: np.ndarray,
    topic: np.ndarray,
    message_stage: np.ndarray,
    customer_stage: np.ndarray,
    attributes: Mapping[str, np.ndarray],
    settings: PolicySettings,
) -> Verdict:
    """Verdict of stage targeting and the per-message rules over n candidates.

    ``message_stage`` and ``customer_stage`` are names or codes (:func:`stage_codes`); ``attributes`` maps
    a customer attribute to its (n,) value for each candidate's customer (see :func:`required_attributes`;
    ``days_since_last_purchase`` is NaN for a customer who never bought: that is long enough ago).
    """
    message_id, topic = np.asarray(message_id).astype(str), np.asarray(topic).astype(str)
    missing = [name for name in required_attributes(settings) if name not in attributes]
    if missing:
        raise ConfigError(f"policy.rules read customer attribute(s) {missing} that were not given (given: {sorted(attributes)})")
    checks = [(JOURNEY_STAGE, stage_allowed(message_stage, customer_stage, settings.stage_targeting))]
    for rule in settings.rules:
        checks += _rule_checks(rule, message_id, topic, attributes)
    return Verdict.first_failure(len(message_id), checks)


def _rule_checks(rule: MessageRule, message_id: np.ndarray, topic: np.ndarray,
                 attributes: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    applies = message_id == rule.message_id if rule.message_id is not None else topic == rule.topic
    checks = []
    for column, accepted in rule.attribute_in.items():
        values = pd.Series(np.asarray(attributes[column], dtype=object))
        # A missing value is in no list; text comparison so that 1 and "1" in a CSV column agree.
        inside = values.notna().to_numpy() & values.astype(str).isin(accepted).to_numpy()
        checks.append((ATTRIBUTE_IN, ~applies | inside))
    if rule.min_days_since_purchase is not None:
        days = np.asarray(attributes[DAYS_SINCE_PURCHASE], dtype=np.float64)
        long_enough = np.isnan(days) | (days >= rule.min_days_since_purchase)
        checks.append((MIN_DAYS_SINCE_PURCHASE, ~applies | long_enough))
    return checks
