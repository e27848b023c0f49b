"""GET /v1/customers/{customer_id}/next-best-messages: one decision per channel, coordinated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from serving.context import ServingContext
from serving.deps import get_context, get_now, require_api_key
from serving.routers.responses import COMMON, DECISION_ERRORS, json_answer
from serving.schemas import AsOf, CustomerDecisionsResponse, CustomerId, DecisionResponse

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.get("/{customer_id}/next-best-messages", response_model=CustomerDecisionsResponse, responses=DECISION_ERRORS,
            summary="The next best message on every channel, coordinated across channels")
async def next_best_messages(
    request: Request,
    customer_id: Annotated[CustomerId, Path(description="1-128 printable characters (trimmed, as in files).")],
    as_of: Annotated[AsOf | None, Query(description="ISO-8601 with a zone; default: now (UTC).")] = None,
    explain: Annotated[bool, Query(description="Add the top feature contributions of each message.")] = False,
    channels: Annotated[list[str] | None, Query(description="Only these channels, coordinated among themselves "
                                                            "(repeat it or separate by commas; any case); default: every channel.")] = None,
    context: ServingContext = Depends(get_context),
    now: pd.Timestamp = Depends(get_now),
) -> Response:
    _refuse_unknown_query(request, ("as_of", "explain", "channels"))
    asked = None if channels is None else [name.strip() for item in channels for name in item.split(",") if name.strip()]
    loaded, decisions = await context.decide_customer(customer_id, _utc(as_of), explain, now, asked)
    return json_answer(CustomerDecisionsResponse(customer_id=customer_id, model_version=loaded.version,
                                                 decisions=[DecisionResponse.of(d) for d in decisions]))


def _refuse_unknown_query(request: Request, known: tuple[str, ...]) -> None:
    """A misspelt query parameter (``chanels``, ``explian``) would otherwise be ignored, silently."""
    unknown = sorted(set(request.query_params) - set(known))
    if unknown:
        raise HTTPException(422, [{"loc": ["query", name], "type": "extra_forbidden",
                                   "msg": f"unknown query parameter; known: {', '.join(sorted(known))}"} for name in unknown])


def _utc(moment: datetime | None) -> pd.Timestamp | None:
    return None if moment is None else pd.Timestamp(moment).tz_convert("UTC")
