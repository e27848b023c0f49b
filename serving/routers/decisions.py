"""POST /v1/decisions and /v1/decisions/batch."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Request, Response

from serving.context import ServingContext
from serving.deps import context_of, get_context, get_now, require_api_key
from serving.routers.responses import COMMON, DECISION_ERRORS, UNREADABLE_BODY, json_answer
from serving.schemas import BatchDecisionRequest, BatchDecisionResponse, DecisionRequest, DecisionResponse

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.post("", response_model=DecisionResponse, responses={**UNREADABLE_BODY, **DECISION_ERRORS},
             summary="The next best message(s) for one customer and channel")
async def decide(body: DecisionRequest, request: Request) -> Response:
    # The context is read from the request (FastAPI passes it without solving a dependency: the busiest
    # route skips that work); no clock dependency: the batch reads the clock (serving/batcher.py).
    decision = await context_of(request).decide_one(body)
    return json_answer(DecisionResponse.of(decision))


@router.post("/batch", response_model=BatchDecisionResponse, responses={**UNREADABLE_BODY, **DECISION_ERRORS},
             summary="Several decisions at once (all or nothing; the first failing request is named)")
async def decide_batch(body: BatchDecisionRequest, context: ServingContext = Depends(get_context),
                       now: pd.Timestamp = Depends(get_now)) -> Response:
    decisions = await context.decide_batch(body.requests, now)
    return json_answer(BatchDecisionResponse(decisions=[DecisionResponse.of(d) for d in decisions]))
