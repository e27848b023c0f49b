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
    p = np.clip(np.nan_to_num(np.asarray(propensity, dtype=np.float64), nan=0.0), 0.0, None)
    score = p ** settings.propensity_exponent
    if settings.value_exponent > 0:
        v = np.clip(np.nan_to_num(np.asarray(value, dtype=np.float64), nan=0.0), 0.0, None)
        score = score * v ** settings.value_exponent
    return score * lever_of(channel, settings.channel_levers) * lever_of(topic, settings.topic_levers)
