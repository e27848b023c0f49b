"""``nbm serve``: check what can be checked before binding a port, then hand the app to uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.config import Settings
from engine.errors import ConfigError
from engine.model.bundle import resolve
from serving.app import CONFIG_ENV, create_app
from serving.logs import LOGGER, configure_logging
from serving.settings import model_dir_of, serving_settings

MODEL_DIR_ENV = "NBM_SERVING__MODEL_DIR"


def run_server(settings: Settings, *, config: Path | None, model_dir: Path | None, host: str | None,
               port: int | None, workers: int | None) -> None:
    """Serve until interrupted. Raises ConfigError (bad keys, bad options) or BundleError (no bundle in
    the model dir) before anything is bound: the CLI turns them into exit code 2."""
    import uvicorn

    serving = serving_settings(settings)  # refuses unusable NBM_API_KEYS / NBM_ADMIN_KEYS now, not per worker
    model_dir = Path(model_dir) if model_dir is not None else model_dir_of(settings, serving)
    resolve(model_dir)  # a model dir without any bundle is a usage error; a broken bundle shows in /readyz
    host = host or serving.host
    port = port or serving.port
    workers = workers or serving.workers
    if port < 1 or port > 65535 or workers < 1:
        raise ConfigError(f"--port must be 1-65535 and --workers at least 1 (got {port}, {workers})")
    log_config = configure_logging(serving.log_level)
    logging.getLogger(LOGGER).info("nbm serve on http://%s:%d, %d worker(s), model dir %s", host, port, workers, model_dir,
                                   extra={"settings": settings.model_dump(mode="json")})
    options = dict(host=host, port=port, log_config=log_config, access_log=False, server_header=False)
    if workers == 1:
        uvicorn.run(create_app(settings, model_dir=model_dir), **options)
        return
    # Each worker process builds its own app from the environment: pass it what the command line said.
    if config is not None:
        os.environ[CONFIG_ENV] = str(Path(config).resolve())
    os.environ[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    uvicorn.run("serving.app:app_from_environment", factory=True, workers=workers, **options)
