"""POST /v1/decisions, answered before FastAPI when the request is well-formed (pure ASGI).

Why: FastAPI's work around a route is a large part of a decision's cost. For each request it solves the
dependency graph, parses the content type with ``email.message``, decodes the body with ``json.loads``
and then validates the dict, and wraps the call in its exception and telemetry layers. The route's own
work is one engine call. Answering well-formed decision requests here skips that work and lowers the
server's CPU per decision (``bench/ab_serving.py`` measures it; figures in docs/benchmarks.md).

What the lane answers is exactly what the route answers for the same request. It takes only a request that
the route would accept, and it decides it with the route's own function,
:func:`serving.routers.decisions.answer_decision`:
- ``POST`` to the route's path;
- ``Content-Type: application/json``, with optional parameters such as a charset;
- an API key that the router's own check accepts;
- a body that :class:`DecisionRequest`'s JSON validation accepts.

Everything else goes to the FastAPI route unchanged, with the body replayed: other content types, a
refused key, a body that does not parse or validate. FastAPI's own errors then answer (401, 400, 422).
An :class:`NbmError` raised while deciding gets the app's answer for it
(:func:`serving.errors.nbm_error_response`). The lane sits inside :class:`serving.middleware.
RequestMiddleware`, so request ids, the body limit, metrics and the access log apply as before.
The OpenAPI schema is still the route's.
"""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.errors import NbmError
from serving.deps import context_of, require_api_key
from serving.errors import nbm_error_response
from serving.middleware import header_value, replay
from serving.routers.decisions import answer_decision
from serving.schemas import DecisionRequest

DECISIONS_PATH = "/v1/decisions"


class DecisionLane:
    def __init__(self, app: ASGIApp, path: str = DECISIONS_PATH) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            await require_api_key(request)
        except HTTPException:
            await self.app(scope, receive, send)  # FastAPI raises the same, and answers it
            return
        try:
            body = await request.body()
        except ClientDisconnect:
            return  # the client left: nothing to answer (RequestMiddleware reads the body first, so never in practice)
        try:
            decision_request = DecisionRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replay(body, receive), send)  # FastAPI's own 400 or 422
            return
        try:
            response = await answer_decision(context_of(request), decision_request, scope.get("client"))
        except NbmError as error:
            response = nbm_error_response(error)
        await response(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    content_type = header_value(scope, b"content-type")
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/json"

