"""POST /v1/decisions and /v1/decisions/batch."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Request, Response

from serving.context import ServingContext
from serving.deps import context_of, get_context, get_now, require_api_key
from serving.routers.responses import COMMON, DECISION_ERRORS, UNREADABLE_BODY, json_answer
from serving.schemas import BatchDecisionRequest, BatchDecisionResponse, DecisionRequest, DecisionResponse

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.post("", response_model=DecisionResponse, responses={**UNREADABLE_BODY, **DECISION_ERRORS}, summary="The next best message(s) for one customer and channel")
async def decide(body: DecisionRequest, request: Request) -> Response:
    # The context comes from the request, not Depends(get_context), and the clock is read once per batch
    # in the batcher's thread: FastAPI solves each dependency node on every request, the busiest route's
    # largest cost after its body.
    # Decided in the batcher's thread, out of the event loop. The connection (client address and port)
    # names the caller: it sends its next request only once answered, so a batch waits for it, not longer.
    # Well-formed requests are answered by serving/decision_lane.py before FastAPI, with answer_decision.
    return await answer_decision(context_of(request), body, request.scope.get("client"))


async def answer_decision(context: ServingContext, body: DecisionRequest, client: object) -> Response:
    """POST /v1/decisions' answer, for the route and for :class:`serving.decision_lane.DecisionLane`.
    ``client``: the scope's (host, port), a list in some servers, made hashable: the caller."""
    decision = await context.decide_one(body, tuple(client) if client else None)  # type: ignore[arg-type]
    return json_answer(DecisionResponse.of(decision))


@router.post("/batch", response_model=BatchDecisionResponse, responses={**UNREADABLE_BODY, **DECISION_ERRORS},
             summary="Several decisions at once (all or nothing; the first failing request is named)")
async def decide_batch(body: BatchDecisionRequest, context: ServingContext = Depends(get_context),
                       now: pd.Timestamp = Depends(get_now)) -> Response:
    decisions = await context.decide_batch(body.requests, now)
    return json_answer(BatchDecisionResponse(decisions=[DecisionResponse.of(d) for d in decisions]))
