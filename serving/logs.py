"""Structured logs: one JSON object a line, carrying the request id of the request being served.

The request id lives in a context variable set by the request middleware; sync routes run in a thread
pool that copies the context, so their log lines carry it too. Customer ids go through
:func:`customer_for_log`, which hashes them (keyed) when ``[serving] hash_customer_ids_in_logs`` is on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import logging.config
import logging.handlers
import queue
import signal
import sys
import threading
import weakref
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from pydantic import SecretStr

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


class StderrQueueHandler(logging.handlers.QueueHandler):
    """Log lines formatted in the caller's thread (its request id is a context variable there) and
    queued; a :class:`logging.handlers.QueueListener` thread writes them to stderr. The caller never
    waits for the write. :meth:`close` stops the listener, which first writes every line queued:
    ``logging.shutdown`` (at exit) and ``dictConfig`` (replacing its handlers) call it.

    A process that ends by SIGTERM skips ``atexit``, and uvicorn re-raises the SIGTERM it caught once its
    graceful shutdown is over. So, made in the main thread while SIGTERM has its default action, a
    handler installs a SIGTERM handler that closes every open one (writing what is queued), then dies of
    the signal as before (uvicorn puts it back before re-raising)."""

    def __init__(self) -> None:
        super().__init__(queue.SimpleQueue())
        stream = logging.StreamHandler(sys.stderr)  # its default formatter writes the prepared line as it is
        self.listener = logging.handlers.QueueListener(self.queue, stream)
        self.listener.start()
        _drain_on_sigterm(self)

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()  # joins the thread once it wrote what is queued
        super().close()


_open_handlers: weakref.WeakSet[StderrQueueHandler] = weakref.WeakSet()


def _drain_on_sigterm(handler: StderrQueueHandler) -> None:
    _open_handlers.add(handler)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _drain_then_die)


def _drain_then_die(signum: int, frame: object) -> None:
    for handler in list(_open_handlers):
        handler.close()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def configure_logging(level: str = "info") -> dict[str, Any]:
    """Send nbm's and uvicorn's logs to stderr as JSON lines (:class:`StderrQueueHandler`); returns the
    dictConfig for uvicorn's ``log_config``, which each of its worker processes applies again."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"()": f"{__name__}.StderrQueueHandler", "formatter": "json"}},
        "loggers": {
            "nbm": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours is richer
        },
    }
    logging.config.dictConfig(config)
    return config


def customer_for_log(customer_id: str, key: SecretStr | None) -> str:
    """The customer id as logs show it: as is without a key, else ``hmac:`` and the first 16 hex digits
    of its HMAC-SHA256 under ``key`` (pseudonymous: the same customer gets the same value, so lines can
    still be correlated; without the key, a list of known ids cannot be hashed to find who it is)."""
    if key is None:
        return customer_id
    digest = hmac.new(key.get_secret_value().encode("utf-8"), customer_id.encode("utf-8"), hashlib.sha256)
    return "hmac:" + digest.hexdigest()[:16]


def add_request_fields(**fields: Any) -> None:
    """Fields for the current request's access-log line (no-op outside a request)."""
    shared = request_fields_var.get()
    if shared is not None:
        shared.update(fields)

