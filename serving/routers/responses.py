"""Documented error answers, shared by the routers (OpenAPI ``responses=``), and the JSON answer of the
busy routes."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel

from serving.schemas import ConflictingEvents, ErrorMessage, InvalidEvents, InvalidRequest


def json_answer(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, as FastAPI would write it for ``response_model``, minus its second pass: FastAPI
    validates a returned model again against ``response_model``, in the thread pool for a plain ``def``
    route. The routes that use this are ``async`` and run their blocking work in the pool themselves:
    one thread hop per request instead of two."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")

_ERROR = {"model": ErrorMessage}
COMMON: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "Missing or invalid X-API-Key (only when NBM_API_KEYS is set)."},
    413: {**_ERROR, "description": "Body larger than [serving] max_body_bytes, or a batch over max_batch_size."},
}
# FastAPI answers 400 itself when a body cannot even be decoded (not UTF-8); malformed JSON is a 422.
UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {400: {**_ERROR, "description": "The body cannot be decoded (not UTF-8 text)."}}
NO_MODEL: dict[int | str, dict[str, Any]] = {503: {**_ERROR, "description": "No model loaded, or the event store is unavailable."}}
DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": InvalidRequest | ErrorMessage,
          "description": "Invalid request: a field (a list of problems), an unknown channel or as_of before the model's feature cutoff."},
    **NO_MODEL,
}
EVENT_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": InvalidEvents | InvalidRequest,
          "description": "At least one invalid event, or a body that is not {\"events\": [...]}; nothing was stored. One entry per problem."},
    409: {"model": ConflictingEvents,
          "description": "An event reuses an event_id (stored, or earlier in the batch) with other content; nothing was stored. "
                         "Only an identical resend is a duplicate: give a new event a new event_id."},
    503: {**_ERROR, "description": "The event store cannot write now (read-only, disk full, locked); nothing was stored: retry."},
}
RELOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorMessage | InvalidRequest,
          "description": "The bundle cannot be loaded (the previous model keeps serving), or the body is invalid."},
}
ADMIN: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "Missing or invalid admin key."},
    403: {**_ERROR, "description": "Admin endpoints are disabled (NBM_ADMIN_KEYS is not set)."},
}
