"""Error class -> HTTP status, in one place.

Deliberate errors (``NbmError``) carry a message for the client; anything else is a bug and is answered
500 by the request middleware with a generic message, the traceback going to the log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from engine.errors import ConfigError, DataError, NbmError
from engine.store.interface import EventIdConflictError, InvalidEventsError, StoreUnavailableError
from engine.features.state import StaleRequestError
from engine.model.bundle import BundleError
from engine.policy.online import UnknownChannelError
from serving.logs import LOGGER
from serving.model_holder import ReloadError

_log = logging.getLogger(LOGGER)


class NoModelError(NbmError):
    """No model is loaded yet (or every load failed): decisions cannot be made."""


class BatchTooLargeError(NbmError):
    """More items in one request than ``[serving] max_batch_size``."""


class ShuttingDownError(NbmError):
    """A decision asked for while the server shuts down."""


class BatchItemError(NbmError):
    """One request of a batch failed; the batch is answered as that request would have been."""

    def __init__(self, index: int, cause: NbmError) -> None:
        self.index = index
        self.cause = cause
        super().__init__(f"requests[{index}]: {cause}")


# Most specific first: the first matching class decides.
STATUS: tuple[tuple[type[NbmError], int], ...] = (
    (InvalidEventsError, 422),
    (EventIdConflictError, 409),
    (UnknownChannelError, 422),
    (StaleRequestError, 422),
    (BatchTooLargeError, 413),
    (StoreUnavailableError, 503),
    (NoModelError, 503),
    (ShuttingDownError, 503),
    (ReloadError, 422),
    (BundleError, 422),
    (ConfigError, 500),  # the server's configuration, not the request: an operator must fix it
    (DataError, 422),
    (NbmError, 400),
)


def status_of(error: NbmError) -> int:
    if isinstance(error, BatchItemError):
        return status_of(error.cause)
    if isinstance(error, ReloadError) and error.internal:
        return 500
    return next(status for cls, status in STATUS if isinstance(error, cls))


def _detail(error: NbmError) -> object:
    if isinstance(error, InvalidEventsError):
        return [{"index": p.index, "column": p.column, "reason": p.reason, "message": p.message} for p in error.problems]
    if isinstance(error, EventIdConflictError):
        return [{"index": c.index, "column": "event_id", "reason": c.reason, "message": c.message, "event_id": c.event_id,
                 "differs": [column for column, _, _ in c.differs]} for c in error.conflicts]
    return str(error)


async def _nbm_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, NbmError)
    return nbm_error_response(error)


def nbm_error_response(error: NbmError) -> JSONResponse:
    """The answer to an NbmError (logged): its status (:data:`STATUS`) and message; 503s ask to retry."""
    status = status_of(error)
    level = logging.ERROR if status >= 500 else logging.INFO
    _log.log(level, "%s: %s", type(error).__name__, error, extra={"status": status})
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"detail": _detail(error)}, status_code=status, headers=headers)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    # FastAPI's shape without "input" and "url": never echo a (possibly huge or secret) payload back.
    assert isinstance(error, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NbmError, _nbm_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
