"""GET /v1/customers/{customer_id}/next-best-messages: one decision per channel, coordinated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Response

from serving.context import ServingContext
from serving.deps import get_context, get_now, require_api_key
from serving.routers.responses import COMMON, DECISION_ERRORS, json_answer
from serving.schemas import AsOf, CustomerDecisionsResponse, CustomerId, DecisionResponse

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.get("/{customer_id}/next-best-messages", response_model=CustomerDecisionsResponse, responses=DECISION_ERRORS,
            summary="The next best message on every channel, coordinated across channels")
async def next_best_messages(
    customer_id: Annotated[CustomerId, Path(description="1-128 printable characters (trimmed, as in files).")],
    as_of: Annotated[AsOf | None, Query(description="ISO-8601 with a zone; default: now (UTC).")] = None,
    explain: Annotated[bool, Query(description="Add the top feature contributions of each message.")] = False,
    context: ServingContext = Depends(get_context),
    now: pd.Timestamp = Depends(get_now),
) -> Response:
    loaded, decisions = await context.decide_customer(customer_id, _utc(as_of), explain, now)
    return json_answer(CustomerDecisionsResponse(customer_id=customer_id, model_version=loaded.version,
                                                 decisions=[DecisionResponse.of(d) for d in decisions]))


def _utc(moment: datetime | None) -> pd.Timestamp | None:
    return None if moment is None else pd.Timestamp(moment).tz_convert("UTC")
