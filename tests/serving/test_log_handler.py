"""Logs go through the standard library's QueueHandler and QueueListener: lines are formatted in the
caller's thread (with its request id), written by the listener thread, and none is lost when the handler
closes, also in uvicorn's worker processes stopped by SIGTERM."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from serving.logs import JsonFormatter, StderrQueueHandler, request_id_var

REPO = Path(__file__).resolve().parents[2]


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger


def test_lines_are_written_by_the_listener_thread_as_json_with_the_callers_request_id(capsys):
    handler = StderrQueueHandler()
    handler.setFormatter(JsonFormatter())
    log = _logger(handler, "test.queue.json")
    token = request_id_var.set("req-7")
    try:
        log.info("hello %s", "there", extra={"customer": "c1"})
    finally:
        request_id_var.reset(token)
    handler.close()
    (line,) = capsys.readouterr().err.splitlines()
    assert {k: v for k, v in json.loads(line).items() if k != "ts"} == {
        "level": "info", "logger": "test.queue.json", "message": "hello there", "request_id": "req-7", "customer": "c1"}


def test_close_writes_every_queued_line_in_order_before_it_returns(capsys):
    handler = StderrQueueHandler()
    log = _logger(handler, "test.queue.drain")
    for i in range(5000):
        log.info("line %d", i)
    handler.close()
    assert capsys.readouterr().err.splitlines() == [f"line {i}" for i in range(5000)]
    handler.close()  # a second close (logging.shutdown after dictConfig replaced it) is harmless


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_APP = textwrap.dedent('''
    import logging
    import sys

    import uvicorn

    from serving.logs import configure_logging

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.shutdown":
                    for i in range(2000):  # a burst at shutdown: still queued when the process ends
                        logging.getLogger("nbm.test").info("bye %d", i)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
                await send({"type": "lifespan.startup.complete"})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    if __name__ == "__main__":
        config = configure_logging("info")
        uvicorn.run("tiny_app:app", host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]),
                    log_config=config, access_log=False)
''')


@pytest.mark.parametrize("workers", [1, 2])
def test_no_line_is_lost_when_uvicorn_stops_on_sigterm(tmp_path, workers):
    (tmp_path / "tiny_app.py").write_text(_APP)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    server = subprocess.Popen([sys.executable, "tiny_app.py", str(port), str(workers)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0 if workers > 1 else 0.1)  # every worker up
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    messages = [line["message"] for line in lines]
    started = [m for m in messages if m.startswith("Started server process")]
    finished = [m for m in messages if m.startswith("Finished server process")]
    assert len(started) == workers and sorted(finished) == sorted(m.replace("Started", "Finished") for m in started)
    byes = [m for m in messages if m.startswith("bye ")]
    assert byes == [f"bye {i}" for i in range(2000)] * workers or sorted(byes) == sorted([f"bye {i}" for i in range(2000)] * workers)
