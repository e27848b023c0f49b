"""The stderr handler's blocks: access and debug lines wait (for the timer or a full block), any other line
is written at once after what waits, and nothing is lost at flush (logging.shutdown)."""

from __future__ import annotations

import io
import logging
import time

from serving.logs import ACCESS_LOGGER, BufferedStderrHandler


def _logger(handler: BufferedStderrHandler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger


def _handler(**options) -> tuple[BufferedStderrHandler, io.StringIO]:
    options.setdefault("buffered_loggers", ("test.blocks",) + tuple(f"test.blocks.{n}" for n in ("warning", "timer", "size")))
    handler = BufferedStderrHandler(**options)
    handler.stream = io.StringIO()
    return handler, handler.stream


def test_lines_wait_for_the_timer_and_a_warning_goes_out_at_once_after_them():
    handler, out = _handler(flush_seconds=3600.0)
    log = _logger(handler, "test.blocks.warning")
    log.info("one")
    log.info("two")
    assert out.getvalue() == ""  # waiting: no write per line
    log.warning("three")
    assert out.getvalue() == "one\ntwo\nthree\n"


def test_the_timer_writes_waiting_lines():
    handler, out = _handler(flush_seconds=0.05)
    log = _logger(handler, "test.blocks.timer")
    log.info("late")
    deadline = time.monotonic() + 30
    while out.getvalue() != "late\n":
        assert time.monotonic() < deadline, "the timer never wrote the line"
        time.sleep(0.01)


def test_a_full_block_is_written_and_flush_writes_the_rest():
    handler, out = _handler(max_bytes=10, flush_seconds=3600.0)
    log = _logger(handler, "test.blocks.size")
    log.info("12345")
    assert out.getvalue() == ""
    log.info("67890")  # 12 bytes with the newlines: over the block
    assert out.getvalue() == "12345\n67890\n"
    log.info("tail")
    handler.flush()  # what logging.shutdown does at exit
    assert out.getvalue() == "12345\n67890\ntail\n"


def test_a_lifecycle_line_goes_out_at_once_and_carries_the_waiting_access_lines():
    # uvicorn re-raises SIGTERM after its shutdown, so a worker can die without logging.shutdown: its
    # "Shutting down" line (INFO, not an access line) must not wait, and must carry the requests out.
    handler, out = _handler(flush_seconds=3600.0, buffered_loggers=(ACCESS_LOGGER,))
    access, lifecycle = _logger(handler, ACCESS_LOGGER), _logger(handler, "uvicorn.error")
    access.info("request")
    assert out.getvalue() == ""
    lifecycle.info("Shutting down")
    assert out.getvalue() == "request\nShutting down\n"


def test_debug_lines_wait_from_any_logger():
    handler, out = _handler(flush_seconds=3600.0, buffered_loggers=(ACCESS_LOGGER,))
    log = _logger(handler, "test.blocks.debug")
    log.setLevel(logging.DEBUG)
    log.debug("decision")
    assert out.getvalue() == ""
    log.info("model loaded")
    assert out.getvalue() == "decision\nmodel loaded\n"


def test_the_access_log_is_buffered_by_default():
    handler = BufferedStderrHandler(flush_seconds=3600.0)  # the defaults, as configure_logging makes it
    handler.stream = out = io.StringIO()
    _logger(handler, ACCESS_LOGGER).info("request")
    assert out.getvalue() == ""
    handler.flush()
    assert out.getvalue() == "request\n"
