"""``nbm score``: batch next-best messages for campaigns, decided by the API's decision engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import typer

from engine.config import Settings
from engine.contract.load import load_dataset
from engine.contract.report import check_reject_share
from engine.errors import DataError
from engine.model.bundle import load_bundle
from engine.policy.batch import decide_in_chunks, decision_rows, engine_at
from training.progress import Progress

CHUNK_CUSTOMERS = 1_000  # customers decided together: one feature build and one model call
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
              customers: Path | None, out: Path, explore: bool = False) -> None:
    """Decide every customer (or those of ``customers``) at ``as_of`` with the API's decision engine
    (engine/policy/batch.py) and write the decisions to ``out``, chunk by chunk."""
    if Path(out).suffix not in OUT_FORMATS:
        raise DataError(f"unsupported output type '{Path(out).suffix}'; use .csv or .parquet", path=str(out))
    moment = parse_as_of(as_of)
    progress = Progress()
    bundle = load_bundle(model_dir)
    dataset = load_dataset(data, settings.validation)
    check_reject_share(dataset.report)
    known = dataset.messages["message_id"].isin(bundle.spec.vocab.messages.values)
    if (~known).any():
        progress.say(f"note: {int((~known).sum())} messages are unknown to model {bundle.version} and were skipped; retrain to include them")
    messages = dataset.messages.loc[known].reset_index(drop=True)
    channels = sorted(messages["channel"].astype(str).unique())
    if channel != "all" and channel not in channels:
        raise DataError(f"--channel {channel!r} has no messages; channels: {', '.join(channels)} or all")
    if channel == "all" and k != 1:
        raise DataError(f"--k {k} needs one channel: with --channel all each channel gets one message, coordinated "
                        "across channels (as GET /v1/customers/{id}/next-best-messages)")
    ids = read_customer_list(customers) if customers else pd.Series(
        pd.concat([dataset.customers["customer_id"], dataset.events["customer_id"]]).astype(str).unique(), dtype="string")
    ids = np.sort(ids.astype(str).unique())

    with progress.step("state") as info:
        engine = engine_at(bundle, settings, events=dataset.events, customers=dataset.customers, messages=messages,
                           as_of=moment, explore=explore, seed=settings.serving.seed)
        info["detail"] = f"{len(engine.bundle.state.log):,} records before {moment.isoformat()}, model {bundle.version}"
    del dataset  # the engine holds what it needs: the state, the profiles and the catalog
    rows = 0
    with progress.step("score") as info, _TableWriter(Path(out)) as writer, progress.bar("customers") as advance:
        done = 0
        for decisions in decide_in_chunks(engine, ids, as_of=moment, channel=None if channel == "all" else channel, k=k,
                                          chunk=CHUNK_CUSTOMERS):
            table = decision_rows(decisions)
            writer.write(table)
            rows += len(table)
            done = min(done + CHUNK_CUSTOMERS, len(ids))
            advance(done, len(ids))
        info["detail"] = f"{len(ids):,} customers x {len(engine.channels) if channel == 'all' else 1} channels -> {rows:,} rows"
    typer.echo(f"wrote {rows:,} rows to {out} (model {bundle.version}, as of {moment.isoformat()})")


class _TableWriter:
    """Chunks of rows to one .csv or .parquet file, written beside it and moved into place when every
    chunk is written: a failed run leaves no half file under the output's name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self._parquet: pq.ParquetWriter | None = None
        self._rows = 0

    def __enter__(self) -> _TableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, table: pd.DataFrame) -> None:
        if self.path.suffix == ".csv":
            table.to_csv(self.partial, mode="w" if self._rows == 0 else "a", header=self._rows == 0, index=False)
        else:
            arrow = pa.Table.from_pandas(table, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.partial, arrow.schema)
            self._parquet.write_table(arrow)
        self._rows += max(len(table), 1)

    def __exit__(self, kind, value, traceback) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if kind is not None:
            self.partial.unlink(missing_ok=True)
            return
        if self._rows == 0:  # no customer: the columns alone
            self.write(decision_rows([]))
            if self._parquet is not None:
                self._parquet.close()
        self.partial.replace(self.path)
