"""POST /v1/events: validated, stored atomically, each event_id once (a reused id with other content: 409)."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from serving.context import ServingContext
from serving.deps import get_context, get_now, require_api_key
from serving.routers.responses import COMMON, EVENT_ERRORS, UNREADABLE_BODY, json_answer
from serving.schemas import EventsRequest, EventsResponse

router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.post("", response_model=EventsResponse, responses={**UNREADABLE_BODY, **EVENT_ERRORS},
             summary="Store a batch of events (all or nothing; identical resends are acknowledged as duplicates)")
async def post_events(body: EventsRequest, context: ServingContext = Depends(get_context),
                      now: pd.Timestamp = Depends(get_now)) -> Response:
    result = await run_in_threadpool(context.record_events, body.events, now)  # validation and a disk write
    return json_answer(EventsResponse(stored=result.stored, duplicates=result.duplicates, late=result.late))
