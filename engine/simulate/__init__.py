"""World simulator: customers, a message catalog and an interaction history with known ground truth.

``simulate(params)`` builds a world in memory; ``write_world`` writes it as a contract data directory
(messages, customers, events) plus ``ground_truth/``. Same params (seed included) give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.contract.write import write_table
from engine.simulate.frames import events_frame, impressions_frame
from engine.simulate.ground_truth import GroundTruth
from engine.simulate.history import generate_history
from engine.simulate.logging_policy import build_logging_scores
from engine.simulate.params import ChannelParams, SimulationParams
from engine.simulate.seeding import stream
from engine.simulate.world import build_catalog, build_customers

__all__ = ["ChannelParams", "GroundTruth", "SimulatedWorld", "SimulationParams", "simulate", "write_world"]

GROUND_TRUTH_DIR = "ground_truth"


@dataclass(frozen=True, eq=False)
class SimulatedWorld:
    messages: pd.DataFrame  # contract messages table (+ offer_type, is_promotional)
    customers: pd.DataFrame  # contract customers table (+ segment, age_band, region, signup_date)
    events: pd.DataFrame  # contract events table, sorted by ts then event_id
    truth: GroundTruth


def simulate(params: SimulationParams, *, on_day: Callable[[int, int], None] | None = None) -> SimulatedWorld:
    """Simulate the world described by ``params``; deterministic in ``params`` (seed included).
    ``on_day(done, days)`` hears each simulated day (a progress bar)."""
    customers, latents = build_customers(params)
    messages, catalog = build_catalog(params)
    scores = build_logging_scores(params, latents, catalog, stream(params.seed, "logging_policy"))
    history = generate_history(params, latents, catalog, scores, on_day=on_day)
    customer_ids = pd.Index(customers["customer_id"])
    message_ids = pd.Index(messages["message_id"])
    impression_truth = history.truth
    events = events_frame(history.events, params, customer_ids, message_ids, len(impression_truth.p_open))
    del history  # release the code arrays before the per-impression frame is built
    truth = GroundTruth(params=params, customer_ids=customer_ids, message_ids=message_ids, latents=latents,
                        catalog=catalog, logging_scores=scores, impressions=impressions_frame(events, impression_truth))
    return SimulatedWorld(messages=messages, customers=customers, events=events, truth=truth)


def write_world(world: SimulatedWorld, out_dir: Path | str, fmt: str = "parquet") -> Path:
    """Write messages, customers and events in ``fmt`` and the ground truth under ``out_dir/ground_truth``."""
    out_dir = Path(out_dir)
    # The contract allows JSON Lines for events only: the small tables go to CSV then.
    small_fmt = "csv" if fmt == "jsonl" else fmt
    write_table(world.messages, out_dir, "messages", small_fmt)
    write_table(world.customers, out_dir, "customers", small_fmt)
    write_table(world.events, out_dir, "events", fmt)
    world.truth.save(out_dir / GROUND_TRUTH_DIR)
    return out_dir
