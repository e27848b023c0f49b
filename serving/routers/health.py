"""Probes and metrics, without authentication: /healthz, /readyz, /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from serving.context import ServingContext
from serving.deps import get_context
from serving.metrics import CONTENT_TYPE
from serving.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    # async: nothing here blocks, and a plain def would cost two thread-pool hops per probe.
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready, with the reasons."}},
            summary="200 when a model and the event store are loaded")
def readyz(context: ServingContext = Depends(get_context)) -> JSONResponse:
    ready, body = context.readiness()
    return JSONResponse(Readiness(**body).model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text format)")
def metrics(context: ServingContext = Depends(get_context)) -> Response:
    return Response(context.metrics.render(), media_type=CONTENT_TYPE)
