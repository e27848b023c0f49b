"""POST /v1/decisions and /v1/decisions/batch."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Response

from serving.context import ServingContext
from serving.deps import get_context, get_now, require_api_key
from serving.routers.responses import COMMON, DECISION_ERRORS, UNREADABLE_BODY, json_answer
from serving.schemas import BatchDecisionRequest, BatchDecisionResponse, DecisionRequest, DecisionResponse

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.post("", response_model=DecisionResponse, responses={**UNREADABLE_BODY, **DECISION_ERRORS},
             summary="The next best message(s) for one customer and channel")
async def decide(body: DecisionRequest, context: ServingContext = Depends(get_context)) -> Response:
    # Decided with the other single decisions waiting (serving/batcher.py), at the instant the batch
    # reads the clock: no per-request clock dependency.
    decision = await context.decide_one(body)
    return json_answer(DecisionResponse.of(decision))


@router.post("/batch", response_model=BatchDecisionResponse, responses={**UNREADABLE_BODY, **DECISION_ERRORS},
             summary="Several decisions at once (all or nothing; the first failing request is named)")
async def decide_batch(body: BatchDecisionRequest, context: ServingContext = Depends(get_context),
                       now: pd.Timestamp = Depends(get_now)) -> Response:
    decisions = await context.decide_batch(body.requests, now)
    return json_answer(BatchDecisionResponse(decisions=[DecisionResponse.of(d) for d in decisions]))
