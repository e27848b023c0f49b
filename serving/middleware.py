"""The one request middleware (pure ASGI): request id, body size limit, metrics, access log, and the
last-resort 500.

- ``X-Request-ID``: a client's id is kept if it is 1-128 safe characters, else one is made (32 hex digits:
  a random prefix per middleware, so per worker process, and a counter: no system call per request, as
  ``uuid4`` would make, and so no point where the decision batcher's thread takes the GIL from the event
  loop); it is
  echoed on every response and carried by every log line of the request.
- Body limit: refused with 413 from ``Content-Length`` before reading, and while reading a streamed
  (chunked) body as soon as it passes the limit; the route only ever sees a complete body within it.
- An exception no handler turned into a response is a bug: 500 with a generic message and the request id,
  the traceback in the log only.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.routing import compile_path

from serving.logs import ACCESS_LOGGER, LOGGER, request_fields_var, request_id_var
from serving.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_log = logging.getLogger(LOGGER)
_access = logging.getLogger(ACCESS_LOGGER)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics, route_paths: Sequence[str] = ()) -> None:
        self.app = app
        self.templates = route_templates(route_paths)
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self._made_ids = _RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = _request_id(scope, self._made_ids)
        id_token = request_id_var.set(request_id)
        fields: dict[str, Any] = {}
        fields_token = request_fields_var.set(fields)
        response = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        try:
            try:
                body = await self._read_body(scope, receive)
            except _TooLarge:
                await _reply(send_with_id, 413, {"detail": f"request body larger than {self.max_body_bytes:,} bytes "
                                                           "([serving] max_body_bytes)"})
            except _Disconnected:
                response["status"] = 499  # the client went away; nothing to answer
            else:
                await self.app(scope, replay(body, receive), send_with_id)
        except Exception:
            _log.exception("unhandled error in %s %s", scope["method"], _route(scope, self.templates), extra={"request_id": request_id})
            if not response["started"]:
                await _reply(send_with_id, 500, {"detail": "internal error; the server log has the details under this "
                                                           "request id", "request_id": request_id})
        finally:
            elapsed = time.perf_counter() - started_at
            route, method, status = _route(scope, self.templates), scope["method"], str(response["status"])
            self.metrics.requests.labels(route=route, method=method, status=status).inc()
            self.metrics.latency.labels(route=route, method=method, status=status).observe(elapsed)
            _access.info("request", extra={"request_id": request_id, "method": method, "route": route, "status": response["status"],
                                           "duration_ms": round(elapsed * 1000, 2), **fields})
            request_fields_var.reset(fields_token)
            request_id_var.reset(id_token)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        length = header_value(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise _TooLarge
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class _RequestIds:
    """Request ids unique across processes without a system call each: 16 random hex digits drawn once,
    then a 16-digit counter."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _request_id(scope: Scope, made: _RequestIds) -> str:
    given = header_value(scope, REQUEST_ID_HEADER.lower().encode())
    return given if given is not None and _SAFE_REQUEST_ID.fullmatch(given) else made()


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _route(scope: Scope, templates: Sequence[tuple[re.Pattern[str], str]] = ()) -> str:
    """The route template (``/v1/customers/{customer_id}/next-best-messages``): bounded label values."""
    path = getattr(scope.get("route"), "path", None)
    if path is None:  # answered before routing (413): match the templates ourselves
        path = next((template for pattern, template in templates if pattern.match(scope.get("path", ""))), None)
    return path or "unmatched"


def route_templates(paths: Sequence[str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((compile_path(path)[0], path) for path in paths)
