"""POST /admin/reload: load the model dir's current bundle (or another dir's) and swap it in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from serving.context import ServingContext
from serving.deps import get_context, require_admin_key
from serving.routers.responses import ADMIN, RELOAD_ERRORS, UNREADABLE_BODY
from serving.schemas import ReloadRequest, ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin_key)], responses=ADMIN)


@router.post("/reload", response_model=ReloadResponse,
             responses={**UNREADABLE_BODY, **RELOAD_ERRORS},
             summary="Load the current bundle and serve it from the next request on")
def reload(body: Annotated[ReloadRequest | None, Body()] = None, context: ServingContext = Depends(get_context)) -> ReloadResponse:
    previous = context.holder.current()
    model_dir = Path(body.model_dir) if body is not None and body.model_dir else None
    loaded = context.holder.reload(model_dir)
    return ReloadResponse(model_version=loaded.version, previous_version=previous.version if previous else None,
                          bundle=loaded.bundle.path.name, predictor=loaded.bundle.predictor.kind, features=loaded.engine.interpreter,
                          loaded_at=loaded.loaded_at.to_pydatetime())
