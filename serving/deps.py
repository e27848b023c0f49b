"""Shared objects and checks for the routes, through ``Depends``.

They are ``async``: none of them blocks, and FastAPI runs a plain ``def`` dependency in the thread pool,
one hop per dependency per request. The routes that do real work stay plain ``def`` and run in the
pool, out of the event loop."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import pandas as pd
from fastapi import HTTPException, Request
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from engine.config import ServingSettings
from serving.context import ServingContext

API_KEY_HEADER = "X-API-Key"


async def get_context(request: Request) -> ServingContext:
    return context_of(request)


def context_of(request: Request) -> ServingContext:
    return request.app.state.nbm


async def get_now(request: Request) -> pd.Timestamp:
    """The server's clock, read once per request: the default as_of and the events' future limit
    (:meth:`ServingContext.now`). The context is read from the request, not through
    ``Depends(get_context)``: each dependency node costs FastAPI work on every request."""
    return context_of(request).now()


def _matches(given: str, keys: tuple[SecretStr, ...]) -> bool:
    # Every key is compared, in constant time each: the answer's timing tells nothing about which key was close.
    given_bytes = given.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given_bytes, key.get_secret_value().encode("utf-8"))
    return found


class _KeyCheck(APIKeyHeader):
    """A router's X-API-Key check, documented in OpenAPI as the ``ApiKey`` scheme. It reads the header
    itself: FastAPI solves every dependency node on every request, and the usual
    ``Security(APIKeyHeader(...))`` parameter would be a second one."""

    def __init__(self, check: Callable[[ServingSettings, str | None], None]) -> None:
        super().__init__(name=API_KEY_HEADER, auto_error=False, scheme_name="ApiKey",
                         description="One of NBM_API_KEYS for /v1, one of NBM_ADMIN_KEYS for /admin.")
        self._check = check

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        self._check(context_of(request).serving, request.headers.get(API_KEY_HEADER))


def _check_api_key(serving: ServingSettings, key: str | None) -> None:
    if not serving.api_keys:
        return
    if not key:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header: this server requires an API key")
    if not _matches(key, serving.api_keys):
        raise HTTPException(401, f"invalid {API_KEY_HEADER}")


def _check_admin_key(serving: ServingSettings, key: str | None) -> None:
    if not serving.admin_keys:
        raise HTTPException(403, "admin endpoints are disabled: set NBM_ADMIN_KEYS to enable them")
    if not key:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header: admin endpoints require an admin key")
    if not _matches(key, serving.admin_keys):
        raise HTTPException(401, f"invalid {API_KEY_HEADER} for admin endpoints")


require_api_key = _KeyCheck(_check_api_key)
require_admin_key = _KeyCheck(_check_admin_key)
