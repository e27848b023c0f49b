"""The decision API: ``create_app()`` builds it; the lifespan loads the model and opens the store.

Nothing is built at import time. ``nbm serve`` passes the app to uvicorn, or, with several workers, the
factory :func:`app_from_environment`, which each worker process calls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pandas as pd
from fastapi import FastAPI

from engine.config import ServingSettings, Settings, load_settings
from engine.store.interface import EventStore
from engine.model.bundle import Bundle
from serving.context import ServingContext, Slot
from engine.store.decisions import SqliteDecisionLog
from serving.errors import install_error_handlers
from serving.logs import LOGGER
from serving.metrics import Metrics
from serving.middleware import RequestMiddleware
from serving.model_holder import EngineFactory, ModelHolder, ModelPoller, ReloadError
from serving.routers import admin, customers, decisions, events, health, messages, model
from serving.settings import model_dir_of, serving_settings
from engine.store.events import SqliteEventStore, store_path

CONFIG_ENV = "NBM_SERVE_CONFIG"  # the --config of nbm serve, for worker processes
_log = logging.getLogger(LOGGER)


def create_app(
    settings: Settings | None = None,
    *,
    model_dir: Path | None = None,
    store: EventStore | None = None,
    decision_log: SqliteDecisionLog | None = None,
    clock: Callable[[], pd.Timestamp] | None = None,
    engine_factory: EngineFactory | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The API over ``model_dir`` (default ``[serving] model_dir`` or ``<home>/model``) and the event store
    under ``paths.home``. ``store``, ``decision_log``, ``clock`` and ``engine_factory`` replace the defaults
    (tests). Raises ``ConfigError`` for unusable settings; a missing model or store only makes /readyz 503."""
    settings = settings if settings is not None else load_settings()
    serving = serving_settings(settings, environ)
    clock = clock or _utc_now
    metrics = Metrics()
    home = settings.paths.home
    timeout = serving.store_busy_timeout_seconds
    holder = ModelHolder(model_dir if model_dir is not None else model_dir_of(settings, serving),
                         engine_factory or _engine_factory(settings, serving.seed), metrics, clock)
    store_slot: Slot[EventStore] = Slot("event store", (lambda: store) if store is not None else
                                        (lambda: SqliteEventStore(store_path(home), busy_timeout_s=timeout)))
    log_slot = None
    if serving.log_decisions:
        log_slot = Slot("decision log", (lambda: decision_log) if decision_log is not None else
                        (lambda: SqliteDecisionLog(store_path(home), busy_timeout_s=timeout, **_retention(serving, clock, metrics))))
    context = ServingContext(settings, serving, holder, store_slot, log_slot, metrics, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not serving.api_keys:
            _log.warning("NBM_API_KEYS is not set: /v1 endpoints accept requests without an API key")
        try:
            holder.reload()
        except ReloadError:
            pass  # logged by the holder; /readyz answers 503 with the reason until a load succeeds
        context.store.problem()  # open them now (logged if it fails; retried on use)
        if log_slot is not None:
            log_slot.problem()
        poller = ModelPoller(holder, serving.reload_poll_seconds) if serving.reload_poll_seconds else None
        if poller is not None:
            poller.start()
        try:
            yield
        finally:
            if poller is not None:
                poller.stop()
            await context.close()  # answers the decisions already asked for
            if log_slot is not None:
                log_slot.close()
            store_slot.close()

    app = FastAPI(
        title="nbm decision API",
        version="1",
        description="Next best messages per customer and channel, events in, model reloads. "
                    "Send X-API-Key when the server sets NBM_API_KEYS.",
        lifespan=lifespan,
    )
    app.state.nbm = context
    install_error_handlers(app)
    routers = (decisions.router, customers.router, events.router, messages.router, model.router, admin.router, health.router)
    for router in routers:
        app.include_router(router)
    paths = [route.path for router in routers for route in router.routes if hasattr(route, "path")]
    app.add_middleware(RequestMiddleware, max_body_bytes=serving.max_body_bytes, metrics=metrics, route_paths=paths)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory serving.app:app_from_environment`` (one call per worker process):
    the config file from ``NBM_SERVE_CONFIG``, everything else from ``NBM_*`` as usual."""
    config = os.environ.get(CONFIG_ENV)
    return create_app(load_settings(Path(config) if config else None))


def _engine_factory(settings: Settings, seed: int) -> EngineFactory:
    def build(bundle: Bundle) -> object:
        from engine.policy.online import DecisionEngine  # imported when the first model loads

        return DecisionEngine(bundle, settings, seed=seed, interpreter=settings.serving.feature_interpreter)

    return build


def _retention(serving: ServingSettings, clock: Callable[[], pd.Timestamp], metrics: Metrics) -> dict[str, object]:
    days = serving.decision_log_retention_days
    if days <= 0:
        return {}
    return {"retention": pd.Timedelta(days=days), "clock": clock, "on_pruned": metrics.decisions_pruned.inc}


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")
