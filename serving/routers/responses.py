"""Documented error answers, shared by the routers (OpenAPI ``responses=``)."""

from __future__ import annotations

from typing import Any

from serving.schemas import ErrorMessage, InvalidEvents

_ERROR = {"model": ErrorMessage}
COMMON: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "Missing or invalid X-API-Key (only when NBM_API_KEYS is set)."},
    413: {**_ERROR, "description": "Body larger than [serving] max_body_bytes, or a batch over max_batch_size."},
}
NO_MODEL: dict[int | str, dict[str, Any]] = {503: {**_ERROR, "description": "No model loaded, or the event store is unavailable."}}
DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid request: a field, an unknown channel, or as_of before the model's feature cutoff."},
    **NO_MODEL,
}
EVENT_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": InvalidEvents, "description": "At least one invalid event; nothing was stored. One entry per problem."},
    503: {**_ERROR, "description": "The event store cannot write now (read-only, disk full, locked); nothing was stored: retry."},
}
ADMIN: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "Missing or invalid admin key."},
    403: {**_ERROR, "description": "Admin endpoints are disabled (NBM_ADMIN_KEYS is not set)."},
}
