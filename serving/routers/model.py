"""GET /v1/model: what is being served."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.context import ServingContext
from serving.deps import get_context, require_api_key
from serving.routers.responses import COMMON, NO_MODEL
from serving.schemas import ModelInfo

router = APIRouter(prefix="/v1/model", tags=["model"], dependencies=[Depends(require_api_key)], responses=COMMON)


@router.get("", response_model=ModelInfo, responses=NO_MODEL, summary="The model being served: version, training data, metrics")
def model_info(context: ServingContext = Depends(get_context)) -> ModelInfo:
    return ModelInfo.of(context.model())
