"""``nbm score``: batch next-best messages for campaigns, with the same decision code as the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer

from engine.config import Settings
from engine.contract.load import load_dataset
from engine.contract.report import check_reject_share
from engine.errors import DataError
from engine.features.build import CatalogTable, ProfileTable, make_history
from engine.features.log import EventLog
from engine.model.bundle import load_bundle
from engine.policy.decide import Scorer, rank_decisions
from engine.policy.eligibility import unsubscribed_before
from training.progress import Progress

CHUNK_CUSTOMERS = 5_000
OUT_FORMATS = (".csv", ".parquet")


def parse_as_of(text: str) -> pd.Timestamp:
    stamp = pd.to_datetime(pd.Series([text]), utc=True, format="ISO8601", errors="coerce").iloc[0]
    if pd.isna(stamp):
        raise DataError(f"--as-of {text!r} is not an ISO-8601 timestamp (e.g. 2026-07-01T08:00:00Z)")
    return stamp


def read_customer_list(path: Path) -> pd.Series:
    """One id a line, or a CSV with a ``customer_id`` column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the customer list: {exc}", path=str(path)) from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and "," in lines[0]:
        frame = pd.read_csv(path, dtype=str)
        if "customer_id" not in frame.columns:
            raise DataError("CSV customer list needs a customer_id column", path=str(path))
        return frame["customer_id"].dropna().str.strip()
    if lines and lines[0] == "customer_id":
        lines = lines[1:]
    if not lines:
        raise DataError("the customer list is empty", path=str(path))
    return pd.Series(lines, dtype="string")


def run_score(settings: Settings, *, data: Path, model_dir: Path, as_of: str, channel: str, k: int,
              customers: Path | None, out: Path) -> None:
    if Path(out).suffix not in OUT_FORMATS:
        raise DataError(f"unsupported output type '{Path(out).suffix}'; use .csv or .parquet", path=str(out))
    moment = parse_as_of(as_of)
    progress = Progress()
    bundle = load_bundle(model_dir)
    dataset = load_dataset(data, settings.validation)
    check_reject_share(dataset.report)
    channels = sorted(dataset.messages["channel"].astype(str).unique())
    if channel != "all" and channel not in channels:
        raise DataError(f"--channel {channel!r} has no messages; channels: {', '.join(channels)} or all")
    wanted = [channel] if channel != "all" else channels
    ids = read_customer_list(customers) if customers else pd.Series(
        pd.concat([dataset.customers["customer_id"], dataset.events["customer_id"]]).astype(str).unique(), dtype="string")
    ids = pd.Series(np.sort(ids.astype(str).unique()))

    spec = bundle.spec
    known = dataset.messages["message_id"].isin(spec.vocab.messages.values)
    if (~known).any():
        progress.say(f"note: {int((~known).sum())} messages are unknown to model {bundle.version} and were skipped; retrain to include them")
    messages = dataset.messages.loc[known].reset_index(drop=True)
    scorer = Scorer(bundle.booster, bundle.feature_names, spec, CatalogTable.from_messages(messages, spec),
                    ProfileTable.from_customers(dataset.customers))
    events = dataset.events.loc[dataset.events["ts"] < moment]
    history = make_history(EventLog.from_events(events, spec.vocab), spec)

    parts = []
    with progress.step("score") as info:
        for start in range(0, len(ids), CHUNK_CUSTOMERS):
            chunk = ids.iloc[start : start + CHUNK_CUSTOMERS]
            decisions = pd.DataFrame({"customer_id": np.repeat(chunk.to_numpy(), len(wanted)),
                                      "channel": np.tile(wanted, len(chunk)), "as_of": moment})
            blocked = unsubscribed_before(events, decisions["customer_id"], decisions["channel"], decisions["as_of"])
            parts.append(rank_decisions(decisions, blocked, messages, history, scorer, k))
        result = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["customer_id", "channel", "message_id", "score", "rank"])
        info["detail"] = f"{len(ids):,} customers x {len(wanted)} channels -> {len(result):,} rows"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    (result.to_csv(out, index=False) if Path(out).suffix == ".csv" else result.to_parquet(out, index=False))
    typer.echo(f"wrote {len(result):,} rows to {out} (model {bundle.version}, as of {moment.isoformat()})")
