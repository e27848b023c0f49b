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


def configure_logging(level: str = "info") -> dict[str, Any]:
    """Send nbm's and uvicorn's logs to stderr as JSON lines; returns the dictConfig for uvicorn's
    ``log_config`` so that its worker processes log the same way."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
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

