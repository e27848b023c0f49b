"""Shared objects and checks for the routes, through ``Depends``.

They are ``async``: none of them blocks, and FastAPI runs a plain ``def`` dependency in the thread pool,
one hop per dependency per request. The routes that do real work stay plain ``def`` and run in the
pool, out of the event loop."""

from __future__ import annotations

import hmac

import pandas as pd
from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from serving.context import ServingContext

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="ApiKey",
                        description="One of NBM_API_KEYS for /v1, one of NBM_ADMIN_KEYS for /admin.")


async def get_context(request: Request) -> ServingContext:
    return request.app.state.nbm


async def get_now(request: Request) -> pd.Timestamp:
    """The server's clock, read once per request: the default as_of and the events' future limit (UTC, in
    microseconds: what JSON timestamps carry). The context is read from the request, not through
    ``Depends(get_context)``: each dependency node costs FastAPI work on every request."""
    stamp = pd.Timestamp(request.app.state.nbm.clock())
    if stamp.tzinfo is None:
        raise ValueError("the server clock must give timezone-aware times")
    # .value counts ns since the epoch in UTC; flooring it is a fraction of tz_convert + floor's cost.
    return pd.Timestamp(stamp.value // 1_000 * 1_000, tz="UTC")


def _matches(given: str, keys: tuple[SecretStr, ...]) -> bool:
    # Every key is compared, in constant time each: the answer's timing tells nothing about which key was close.
    given_bytes = given.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given_bytes, key.get_secret_value().encode("utf-8"))
    return found


async def require_api_key(request: Request, key: str | None = Security(_api_key)) -> None:
    keys = request.app.state.nbm.serving.api_keys
    if not keys:
        return
    if not key:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header: this server requires an API key")
    if not _matches(key, keys):
        raise HTTPException(401, f"invalid {API_KEY_HEADER}")


async def require_admin_key(request: Request, key: str | None = Security(_api_key)) -> None:
    keys = request.app.state.nbm.serving.admin_keys
    if not keys:
        raise HTTPException(403, "admin endpoints are disabled: set NBM_ADMIN_KEYS to enable them")
    if not key:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header: admin endpoints require an admin key")
    if not _matches(key, keys):
        raise HTTPException(401, f"invalid {API_KEY_HEADER} for admin endpoints")
