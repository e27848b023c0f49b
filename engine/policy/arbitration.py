"""Arbitration: one priority per candidate from the model's propensity, the message value and levers.

    priority = propensity^a × value^b × channel_lever × topic_lever

with a = ``propensity_exponent`` (1), b = ``value_exponent`` (0: value ignored) and levers 1.0 unless
configured (Pega's "P × V × L"). The value is clipped at 0 before the power, so with b > 0 a message worth
nothing or less gets priority 0: it ranks last (it is not blocked; block messages with rules). With b = 0
the value is ignored entirely, even when it is 0 or negative. A priority is never NaN: a NaN propensity or
value (with b > 0) gives 0, so sorting and sampling stay well defined.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.config import PolicySettings


def lever_of(keys: np.ndarray, levers: Mapping[str, float]) -> np.ndarray:
    """The lever of each key (channel or topic); 1.0 for a key without one."""
    if not levers:  # the default: no text to compare
        return np.ones(len(keys))
    keys = np.asarray(keys, dtype=object).astype(str)
    out = np.ones(len(keys))
    for name, lever in levers.items():
        out[keys == name] = lever
    return out


def priority(propensity: np.ndarray, value: np.ndarray, channel: np.ndarray, topic: np.ndarray,
             settings: PolicySettings) -> np.ndarray:
    """Priority of n candidates (float64, >= 0); higher is better."""
    # fmax(x, 0) is 0 for NaN and for x < 0 in one pass; each step runs only when configured (per decision).
    score = np.fmax(np.asarray(propensity, dtype=np.float64), 0.0)
    if settings.propensity_exponent != 1:
        score = score ** settings.propensity_exponent
    if settings.value_exponent > 0:
        score = score * np.fmax(np.asarray(value, dtype=np.float64), 0.0) ** settings.value_exponent
    if settings.channel_levers:
        score = score * lever_of(channel, settings.channel_levers)
    if settings.topic_levers:
        score = score * lever_of(topic, settings.topic_levers)
    return score
