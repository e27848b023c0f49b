"""``nbm score``: batch next-best messages for campaigns, decided by the API's decision engine."""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import typer

from engine.config import Settings
from engine.contract.load import load_in_parts
from engine.contract.partition import ROWS_PER_PART, EventParts, part_of
from engine.contract.report import check_reject_share
from engine.contract.validate import TableResult, validate_events
from engine.errors import DataError
from engine.model.bundle import load_bundle
from engine.policy.batch import batch_settings, decide_in_chunks, decision_rows, engine_at
from training.progress import Progress, peak_rss_gb

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
              customers: Path | None, out: Path, explore: bool = False, workers: int = 1,
              rows_per_part: int = ROWS_PER_PART) -> None:
    """Decide every customer (or those of ``customers``) at ``as_of`` with the API's decision engine
    (engine/policy/batch.py) and write the decisions to ``out``.

    The events are split by customer into parts (engine/contract/partition.py) and each part is
    validated and decided on its own, by ``workers`` processes at once: memory holds a part per worker
    (about ``rows_per_part`` events), whatever the number of customers."""
    if Path(out).suffix not in OUT_FORMATS:
        raise DataError(f"unsupported output type '{Path(out).suffix}'; use .csv or .parquet", path=str(out))
    moment = parse_as_of(as_of)
    progress = Progress()
    settings = batch_settings(settings, explore=explore)
    bundle = load_bundle(model_dir)
    wanted = np.sort(read_customer_list(customers).astype(str).unique()) if customers else None
    with tempfile.TemporaryDirectory(prefix="nbm-score-") as scratch:
        with progress.step("split") as info:
            dataset = load_in_parts(data, Path(scratch) / "events", rows_per_part=rows_per_part)
            info["detail"] = f"{dataset.events.rows_read:,} event rows in {dataset.events.parts} parts by customer"
        messages = dataset.messages.accepted
        known = messages["message_id"].isin(bundle.spec.vocab.messages.values)
        if (~known).any():
            progress.say(f"note: {int((~known).sum())} messages are unknown to model {bundle.version} and were skipped; retrain to include them")
        messages = messages.loc[known].reset_index(drop=True)
        channels = sorted(messages["channel"].astype(str).unique())
        if channel != "all" and channel not in channels:
            raise DataError(f"--channel {channel!r} has no messages; channels: {', '.join(channels)} or all")
        if channel == "all" and k != 1:
            raise DataError(f"--k {k} needs one channel: with --channel all each channel gets one message, coordinated "
                            "across channels (as GET /v1/customers/{id}/next-best-messages)")
        profiles = dataset.customers.accepted
        profile_part = part_of(profiles["customer_id"], dataset.events.parts)
        wanted_part = None if wanted is None else part_of(pd.Series(wanted), dataset.events.parts)
        jobs = [PartJob(part, dataset.events, messages, profiles.loc[profile_part == part].reset_index(drop=True),
                        None if wanted is None else wanted[wanted_part == part], bundle.path, settings, moment,
                        None if channel == "all" else channel, k, Path(scratch) / f"decisions-{part:05d}.parquet")
                for part in range(dataset.events.parts)]
        rows, decided, results = 0, 0, []
        with progress.step("score") as info, _TableWriter(Path(out)) as writer, progress.bar("parts") as advance:
            for result in _run(jobs, workers):
                results.append(result)
                table = pd.read_parquet(result.out)
                writer.write(table)
                rows += len(table)
                decided += result.customers
                advance(len(results), len(jobs))
            check_reject_share(dataset.report([r.events for r in results], settings.validation))
            info["detail"] = (f"{decided:,} customers x {len(channels) if channel == 'all' else 1} channels -> {rows:,} rows; "
                              f"peak RSS of a part's process {max(r.peak_gb for r in results):.2f} GB")
    typer.echo(f"wrote {rows:,} rows to {out} (model {bundle.version}, as of {moment.isoformat()})")


@dataclass(frozen=True, eq=False)
class PartJob:
    """One part of the customers to decide, as a worker process receives it."""

    part: int
    events: EventParts
    messages: pd.DataFrame
    profiles: pd.DataFrame  # the customers table's rows of this part's customers
    wanted: np.ndarray | None  # the part's customers of --customers; None: every customer of the part
    bundle: Path
    settings: Settings  # batch_settings: exploration as --explore says
    as_of: pd.Timestamp
    channel: str | None  # None: every channel, coordinated
    k: int
    out: Path


@dataclass(frozen=True, eq=False)
class PartResult:
    out: Path
    customers: int
    events: TableResult  # the part's validation (accepted rows dropped: only their count is kept)
    peak_gb: float


def decide_part(job: PartJob) -> PartResult:
    """Validate the part's events, build the engine on them and decide the part's customers."""
    events = validate_events(job.events.raw(job.part), job.messages)
    if job.wanted is not None:
        ids = job.wanted
    else:
        ids = np.sort(pd.concat([job.profiles["customer_id"], events.accepted["customer_id"]]).astype(str).unique())
    engine = engine_at(load_bundle(job.bundle), job.settings, events=events.accepted, customers=job.profiles,
                       messages=job.messages, as_of=job.as_of, seed=job.settings.serving.seed)
    counted = TableResult(accepted=pd.DataFrame(index=range(len(events.accepted))), rejects=events.rejects, rows_read=events.rows_read)
    del events  # the engine's state holds what deciding needs
    tables = [decision_rows(decisions) for decisions in
              decide_in_chunks(engine, ids, as_of=job.as_of, channel=job.channel, k=job.k, chunk=CHUNK_CUSTOMERS)]
    (pd.concat(tables, ignore_index=True) if tables else decision_rows([])).to_parquet(job.out, index=False)
    return PartResult(job.out, len(ids), counted, peak_rss_gb())


def _run(jobs: list[PartJob], workers: int) -> Iterator[PartResult]:
    """Each job's result in job order: here, or by ``workers`` processes (spawned: LightGBM's threads do
    not survive a fork)."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(decide_part, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(decide_part, jobs)


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
