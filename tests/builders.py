"""Tiny hand-made contract tables with explicit timestamps, written to a temporary data directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

MESSAGE_HEADER = ["message_id", "channel", "topic", "journey_stage", "value", "valid_from", "valid_to"]
EVENT_HEADER = ["ts", "customer_id", "event_type", "channel", "message_id", "value", "propensity", "event_id"]

# Two email messages and one sms message; m3 is only valid in February 2026.
DEFAULT_MESSAGES = [
    {"message_id": "m1", "channel": "email", "topic": "travel", "journey_stage": "awareness", "value": "2"},
    {"message_id": "m2", "channel": "email", "topic": "fashion"},
    {"message_id": "m3", "channel": "sms", "topic": "travel", "valid_from": "2026-02-01", "valid_to": "2026-03-01"},
]


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or list(dict.fromkeys(k for row in rows for k in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in header})
    return path


def write_jsonl(path: Path, lines: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def event(ts: str, customer_id: str = "c1", event_type: str = "visit", **extra: str) -> dict:
    return {"ts": ts, "customer_id": customer_id, "event_type": event_type, **extra}


def make_data_dir(
    root: Path,
    events: list[dict],
    messages: list[dict] | None = None,
    customers: list[dict] | None = None,
) -> Path:
    """Write messages.csv, events.csv and (if given) customers.csv under ``root`` and return it."""
    write_csv(root / "messages.csv", DEFAULT_MESSAGES if messages is None else messages, MESSAGE_HEADER if messages is None else None)
    write_csv(root / "events.csv", events, EVENT_HEADER if all(set(e) <= set(EVENT_HEADER) for e in events) else None)
    if customers is not None:
        write_csv(root / "customers.csv", customers)
    return root


EVENT_COLUMNS = ["ts", "customer_id", "event_type", "channel", "message_id", "value", "topic", "decision_id", "propensity", "event_id"]


def events_frame(rows: list[dict]) -> "pd.DataFrame":
    """Canonical events (as the loader returns them) from dicts; missing columns are null."""
    import pandas as pd

    frame = pd.DataFrame([{c: row.get(c) for c in EVENT_COLUMNS} for row in rows], columns=EVENT_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    for name in ("value", "propensity"):
        frame[name] = frame[name].astype("float64")
    for name in ("customer_id", "event_type", "channel", "message_id", "topic", "decision_id", "event_id"):
        frame[name] = frame[name].astype("string")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def messages_frame(rows: list[dict]) -> "pd.DataFrame":
    """Canonical messages from dicts: value defaults to 1, validity timestamps parsed."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for name, default in (("journey_stage", None), ("value", 1.0), ("valid_from", None), ("valid_to", None)):
        if name not in frame.columns:
            frame[name] = default
    frame["value"] = frame["value"].astype("float64").fillna(1.0)
    for name in ("valid_from", "valid_to"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    return frame
