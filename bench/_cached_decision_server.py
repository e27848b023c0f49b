"""The API with its decision engine taken out: every decision answered with the one made at the first
request. Everything else runs as in ``nbm serve`` (middleware, validation, the batcher, the hand-off
to the event loop, the decision log, metrics, serialisation; not the event store's read of the live
events, which is part of deciding), so its throughput and latency are the most any decision engine could
reach in this server on this machine.

    .venv/bin/python bench/_cached_decision_server.py MODEL_DIR PORT    (bench/serving.py starts it)
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.config import load_settings  # noqa: E402
from serving.app import create_app  # noqa: E402


def main() -> None:
    model_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    app = create_app(load_settings(None), model_dir=model_dir)
    context = app.state.nbm
    decide_each, cached = context._decide_each, []

    def answer_from_cache(items, then=None):
        if not cached:
            cached.append(decide_each(items[:1])[0])
        # Through the same hand-off as the engine's work: answered (then) in the event loop's thread.
        return context._compute(lambda: cached * len(items), len(items), then)

    context._decide_each = answer_from_cache
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning", server_header=False)


if __name__ == "__main__":
    main()
