"""The feature state that training hands to serving: a compacted event log as of a cutoff.

Events in the longest window before the cutoff are kept as they are; older ones are compacted (see
:func:`engine.features.log.compact_before`). With live events appended, the state answers every feature
exactly as the full history would for any ``as_of`` at or after the cutoff: windows slide, nothing is
frozen at training time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import NbmError
from engine.features.history import NS_PER_DAY
from engine.features.log import EventLog, compact_before, concat_logs
from engine.features.vocab import Vocabulary


_CUTOFF_KEY = b"nbm.cutoff_ns"


class StaleRequestError(NbmError):
    """A request's as_of lies before the state's cutoff: the state no longer holds that past."""


@dataclass(frozen=True, eq=False)
class FeatureState:
    cutoff_ns: int
    log: EventLog

    @classmethod
    def at_cutoff(cls, log: EventLog, cutoff: pd.Timestamp, max_window_days: int) -> FeatureState:
        """The state of ``log`` as of ``cutoff`` (events strictly before it)."""
        cutoff_ns = int(pd.Timestamp(cutoff).value)
        before = log.take(log.ts < cutoff_ns)
        return cls(cutoff_ns, compact_before(before, cutoff_ns - max_window_days * NS_PER_DAY))

    def with_live(self, live: EventLog) -> EventLog:
        """The log to answer requests from: the state plus live events since the cutoff."""
        return concat_logs(self.log, live.take(live.ts >= self.cutoff_ns))

    def check_as_of(self, as_of_ns: np.ndarray) -> None:
        if len(as_of_ns) and int(np.min(as_of_ns)) < self.cutoff_ns:
            cutoff = pd.Timestamp(self.cutoff_ns, tz="UTC").isoformat()
            raise StaleRequestError(f"as_of must be at or after the feature state's cutoff {cutoff}")

    def save(self, path: Path) -> None:
        """One Parquet file; the cutoff travels in the file's metadata."""
        frame = pd.DataFrame(self.log.arrays()).drop(columns=["customer"])
        ids = np.asarray(self.log.customers.values, dtype=object)[self.log.customer]
        frame.insert(0, "customer_id", pd.Series(ids, dtype="string"))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        metadata = {**(table.schema.metadata or {}), _CUTOFF_KEY: str(self.cutoff_ns).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), path)

    @classmethod
    def load(cls, path: Path) -> FeatureState:
        table = pq.read_table(path)
        cutoff_ns = int(table.schema.metadata[_CUTOFF_KEY].decode())
        frame = table.to_pandas()
        customers = Vocabulary.of(frame["customer_id"])
        arrays = {k: frame[k].to_numpy() for k in ("ts", "event_type", "channel", "topic", "message", "value", "weight")}
        arrays["customer"] = customers.encode(frame["customer_id"])
        return cls(cutoff_ns, EventLog.from_arrays(customers, arrays))
