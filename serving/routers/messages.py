"""GET /v1/messages: the catalog the model serves."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.context import ServingContext
from serving.deps import get_context, require_api_key
from serving.routers.responses import COMMON, NO_MODEL
from serving.schemas import MessagesResponse

router = APIRouter(prefix="/v1/messages", tags=["messages"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.get("", response_model=MessagesResponse, responses=NO_MODEL, summary="The message catalog the model serves")
def messages(context: ServingContext = Depends(get_context)) -> MessagesResponse:
    loaded = context.model()
    return MessagesResponse(model_version=loaded.version, messages=list(loaded.engine.catalog.values()))
