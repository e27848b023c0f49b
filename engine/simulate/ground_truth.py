"""The simulator's ground truth: parameters, latents, the logging policy and per-impression probabilities.

It answers what no logged data can: the true response probabilities of any message for any customer at
any time given an event log, and how much of the achievable reward a policy's choices capture. It lives in
``<data_dir>/ground_truth/`` (never as top-level messages/customers/events files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.simulate import evaluation
from engine.simulate.params import SimulationParams
from engine.simulate.replay import LoggedHistory, codes_of, history_state
from engine.simulate.response import ResponseCoefficients, respond
from engine.simulate.timeline import series_to_ns
from engine.simulate.world import Catalog, CustomerLatents

_STAGE_ENTRY_COLUMNS = ("enters_consideration_ns", "enters_purchase_ns", "enters_loyalty_ns")
_FILES = {"params": "params.json", "customers": "customer_latents.parquet",
          "messages": "message_latents.parquet", "logging": "logging_scores.parquet",
          "impressions": "impressions.parquet"}


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; expected {list(columns)}")


@dataclass(frozen=True, eq=False)
class GroundTruth:
    params: SimulationParams
    customer_ids: pd.Index  # position = customer code
    message_ids: pd.Index  # position = message code
    latents: CustomerLatents
    catalog: Catalog
    logging_scores: np.ndarray  # (segments, messages) scores of the logging policy
    impressions: pd.DataFrame  # per logged impression: decision_id, state and the probabilities used

    # --- true responses -------------------------------------------------------------------------------
    def customer_codes(self, values: pd.Series, what: str) -> np.ndarray:
        codes = codes_of(self.customer_ids, values)
        if (codes < 0).any():
            raise ValueError(f"{what}: customer_id {values.to_numpy()[codes < 0][0]!r} is not in this world")
        return codes

    def message_codes(self, values: pd.Series, what: str) -> np.ndarray:
        codes = codes_of(self.message_ids, values)
        if (codes < 0).any():
            raise ValueError(f"{what}: message_id {values.to_numpy()[codes < 0][0]!r} is not in the catalog")
        return codes

    def response_probabilities(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        """True p_open, p_click, p_conversion of showing each request's message to its customer at its ts.

        ``requests`` has customer_id, message_id and ts (UTC); the history state comes from ``events``
        (the contract events frame) strictly before each ts. The result is aligned with ``requests``.
        """
        _require_columns(requests, ("customer_id", "message_id", "ts"), "requests")
        customer = self.customer_codes(requests["customer_id"], "requests")
        message = self.message_codes(requests["message_id"], "requests")
        ts = series_to_ns(requests["ts"], "requests.ts")
        history = LoggedHistory.from_events(events, self.customer_ids, self.message_ids)
        state = history_state(history, self.latents, self.catalog, self.params.fatigue_window_days,
                              customer, message, ts)
        probabilities = respond(ResponseCoefficients.from_params(self.params), self.latents, self.catalog,
                                customer, message, state.same_topic_exposures, state.times_shown,
                                state.last_survey, state.true_stage)
        return pd.DataFrame(probabilities._asdict(), index=requests.index)

    # --- the logging policy ---------------------------------------------------------------------------
    def logging_distribution(self, decisions: pd.DataFrame) -> pd.DataFrame:
        """The logging policy's probability of each eligible message, per decision point.

        ``decisions`` has customer_id, channel and ts; returns long rows (row = position in ``decisions``,
        message_id, probability) over the channel's messages valid at ts.
        """
        _require_columns(decisions, ("customer_id", "channel", "ts"), "decisions")
        segment = self.latents.segment[self.customer_codes(decisions["customer_id"], "decisions")]
        channel = pd.Index(self.params.channels).get_indexer(decisions["channel"].astype(str))
        ts = series_to_ns(decisions["ts"], "decisions.ts")
        eligible = ((self.catalog.channel[None, :] == channel[:, None])
                    & (self.catalog.valid_from_ns[None, :] <= ts[:, None])
                    & (ts[:, None] < self.catalog.valid_to_ns[None, :]))
        logits = np.where(eligible, self.logging_scores[segment] / self.params.exploration_temperature, -np.inf)
        logits -= np.where(eligible.any(axis=1), logits.max(axis=1), 0.0)[:, None]
        weights = np.exp(logits)
        row, message = np.nonzero(eligible)
        probability = weights[row, message] / weights.sum(axis=1)[row]
        return pd.DataFrame({"row": row, "message_id": self.message_ids[message], "probability": probability})

    # --- policy evaluation (see evaluation.py) -------------------------------------------------------
    def policy_values(self, decisions: pd.DataFrame, events: pd.DataFrame, messages: pd.DataFrame,
                      reward: str = "click") -> pd.DataFrame:
        """Per decision: the true expected reward of the chosen, a uniformly random and the best message."""
        return evaluation.policy_values(self, decisions, events, messages, reward)

    def normalised_gain(self, decisions: pd.DataFrame, events: pd.DataFrame, messages: pd.DataFrame,
                        reward: str = "click") -> float:
        """(V_policy - V_random) / (V_oracle - V_random) over the decisions; 1 is the oracle, 0 random."""
        return evaluation.normalised_gain(self, decisions, events, messages, reward)

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        """Write the ground truth as parquet and json files into ``directory``; returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _FILES["params"]).write_text(self.params.model_dump_json(indent=2) + "\n")
        lat = self.latents
        customers = pd.DataFrame({"customer_id": self.customer_ids, "segment_code": lat.segment,
                                  "age_band_code": lat.age_band, "activity": lat.activity,
                                  "satisfaction": lat.satisfaction})
        for i, topic in enumerate(self.params.topics):
            customers[f"interest__{topic}"] = lat.interest[:, i]
        for i, channel in enumerate(self.params.channels):
            customers[f"responsiveness__{channel}"] = lat.responsiveness[:, i]
        for i, column in enumerate(_STAGE_ENTRY_COLUMNS):
            customers[column] = lat.stage_entry_ns[:, i]
        customers.to_parquet(directory / _FILES["customers"], index=False)
        cat = self.catalog
        messages = pd.DataFrame({"message_id": self.message_ids, "channel_code": cat.channel, "topic_code": cat.topic,
                                 "stage_code": cat.stage, "value": cat.value, "valid_from_ns": cat.valid_from_ns,
                                 "valid_to_ns": cat.valid_to_ns})
        if cat.attribution_days is not None:  # send-moment worlds only: daily worlds' files stay as they were
            messages["attribution_days"] = cat.attribution_days
        messages.to_parquet(directory / _FILES["messages"], index=False)
        scores = pd.DataFrame(self.logging_scores, columns=list(self.message_ids))
        scores.insert(0, "segment", list(self.params.segments))
        scores.to_parquet(directory / _FILES["logging"], index=False)
        self.impressions.to_parquet(directory / _FILES["impressions"], index=False)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> GroundTruth:
        directory = Path(directory)
        missing = [name for name in _FILES.values() if not (directory / name).exists()]
        if missing:
            raise FileNotFoundError(f"{directory}: not a ground-truth directory, missing {missing}")
        params = SimulationParams.model_validate(json.loads((directory / _FILES["params"]).read_text()))
        customers = pd.read_parquet(directory / _FILES["customers"])
        latents = CustomerLatents(
            segment=customers["segment_code"].to_numpy(np.int8),
            age_band=customers["age_band_code"].to_numpy(np.int8),
            interest=customers[[f"interest__{t}" for t in params.topics]].to_numpy(np.float64),
            responsiveness=customers[[f"responsiveness__{c}" for c in params.channels]].to_numpy(np.float64),
            activity=customers["activity"].to_numpy(np.float64),
            satisfaction=customers["satisfaction"].to_numpy(np.float64),
            stage_entry_ns=customers[list(_STAGE_ENTRY_COLUMNS)].to_numpy(np.int64),
        )
        messages = pd.read_parquet(directory / _FILES["messages"])
        catalog = Catalog(channel=messages["channel_code"].to_numpy(np.int8),
                          topic=messages["topic_code"].to_numpy(np.int8),
                          stage=messages["stage_code"].to_numpy(np.int8), value=messages["value"].to_numpy(),
                          valid_from_ns=messages["valid_from_ns"].to_numpy(np.int64),
                          valid_to_ns=messages["valid_to_ns"].to_numpy(np.int64),
                          attribution_days=(messages["attribution_days"].to_numpy(np.float64)
                                            if "attribution_days" in messages else None))
        scores = pd.read_parquet(directory / _FILES["logging"])
        return cls(params=params, customer_ids=pd.Index(customers["customer_id"].astype(str)),
                   message_ids=pd.Index(messages["message_id"].astype(str)), latents=latents, catalog=catalog,
                   logging_scores=scores.drop(columns="segment").to_numpy(np.float64),
                   impressions=pd.read_parquet(directory / _FILES["impressions"]))
