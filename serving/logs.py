"""Structured logs: one JSON object a line, carrying the request id of the request being served.

The request id lives in a context variable set by the request middleware; sync routes run in a thread
pool that copies the context, so their log lines carry it too. Customer ids go through
:func:`customer_for_log`, which hashes them when ``[serving] hash_customer_ids_in_logs`` is on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.config
import os
import sys
import threading
import time
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

LOGGER = "nbm.serving"
request_id_var: ContextVar[str | None] = ContextVar("nbm_request_id", default=None)
# Fields a route adds to its request's access-log line (a dict shared with the middleware).
request_fields_var: ContextVar[dict[str, Any] | None] = ContextVar("nbm_request_fields", default=None)

# Attributes every LogRecord has: anything else was passed with extra= and goes into the JSON object.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


ACCESS_LOGGER = f"{LOGGER}.access"


class BufferedStderrHandler(logging.StreamHandler):
    """Lines to stderr in blocks. The per-request lines (an INFO from ``buffered_loggers``, the access log,
    or any DEBUG) wait until ``max_bytes`` are pending or for at most ``flush_seconds`` (a timer thread
    writes them); any other line is written at once, after every line before it. At exit
    (``logging.shutdown``) what waits is written.

    Why: stderr writes (a system call) at every line, so the access log cost one per request, and each
    released the GIL, where the decision batcher's thread took it from the event loop. Access logs are
    commonly buffered this way (nginx's ``access_log ... buffer= flush=``). Lifecycle lines are not
    buffered because a process may end without ``logging.shutdown``: uvicorn re-raises SIGTERM after its
    graceful shutdown, so a worker dies of the signal and skips ``atexit``; its "Shutting down" and
    "Finished server process" lines carry the waiting access lines out first. A process killed
    outright loses at most ``flush_seconds`` of access lines."""

    def __init__(self, max_bytes: int = 64 * 1024, flush_seconds: float = 0.5,
                 buffered_loggers: tuple[str, ...] = (ACCESS_LOGGER,)) -> None:
        super().__init__(sys.stderr)
        self.max_bytes = max_bytes
        self.flush_seconds = flush_seconds
        self.buffered_loggers = frozenset(buffered_loggers)
        self._pending: list[str] = []
        self._size = 0
        self._waiting = threading.Event()  # set while lines wait for the timer
        self._timer_pid: int | None = None  # the process whose timer thread runs (a forked child starts its own)

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - as StreamHandler: a broken record must not break the caller
            self.handleError(record)
            return
        self._pending.append(line)
        self._size += len(line)
        if not self._waits(record) or self._size >= self.max_bytes:
            self._write()
            return
        if self._timer_pid != os.getpid():
            self._timer_pid = os.getpid()
            threading.Thread(target=self._flush_later, name="nbm-log-flush", daemon=True).start()
        self._waiting.set()

    def _waits(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        return record.levelno < logging.WARNING and record.name in self.buffered_loggers

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - stderr gone: nothing left to tell it to
            pass

    def _flush_later(self) -> None:
        while True:
            self._waiting.wait()
            time.sleep(self.flush_seconds)
            self._waiting.clear()
            self.flush()


def configure_logging(level: str = "info") -> dict[str, Any]:
    """Send nbm's and uvicorn's logs to stderr as JSON lines (:class:`BufferedStderrHandler`); returns the
    dictConfig for uvicorn's ``log_config`` so that its worker processes log the same way."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": f"{__name__}.BufferedStderrHandler", "formatter": "json"}},
        "loggers": {
            "nbm": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours is richer
        },
    }
    logging.config.dictConfig(config)
    return config


def customer_for_log(customer_id: str, hashed: bool) -> str:
    """The customer id as logs show it: as is, or the first 16 hex digits of its SHA-256 (pseudonymous:
    the same customer gets the same value, so lines can still be correlated)."""
    if not hashed:
        return customer_id
    return "sha256:" + hashlib.sha256(customer_id.encode("utf-8")).hexdigest()[:16]


def add_request_fields(**fields: Any) -> None:
    """Fields for the current request's access-log line (no-op outside a request)."""
    shared = request_fields_var.get()
    if shared is not None:
        shared.update(fields)

