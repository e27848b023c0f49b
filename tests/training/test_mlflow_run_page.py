"""The run page as a reviewer sees it: ``mlflow server`` on a store holding one small run, opened in headless
Chromium (Debian's, driven by Selenium through its chromedriver). CI installs the browser (.ci/run)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pytest  # noqa: E402

from tests.training.reported import DATA_STATS, DECISION, SPLIT, tiny_evaluation  # noqa: E402
from training.report import run_description  # noqa: E402
from training.tracking import Tracker  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SERVER_START_SECONDS = 60
PAGE_SECONDS = 30

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason=f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium "
                              "chromium-driver; .ci/run installs them)"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"mlflow server not healthy after {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def logged_run(tmp_path, monkeypatch):
    """(store uri, experiment id, run id) of a run with a figure and the report's description."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.plot([0, 1, 2], [0, 2, 1])
    with Tracker(uri).run("reviewed") as run:
        run.log_figure(figure, "report/lift.png")
        run.describe(run_description(tiny_evaluation(), data_stats=DATA_STATS, split=SPLIT, gate_metric="dr",
                                     decision=DECISION, figure_urls={"lift": run.artifact_url("report/lift.png")}))
    plt.close(figure)
    experiment_id = mlflow.MlflowClient(tracking_uri=uri).get_run(run.run_id).info.experiment_id
    yield uri, experiment_id, run.run_id
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def server(logged_run, tmp_path):
    uri = logged_run[0]
    port = _free_port()
    log = tmp_path / "server.log"
    # One worker and no job runner: the page needs neither, and they double the start-up time.
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
                      "--port", str(port), "--workers", "1"]
    with log.open("w") as output:
        process = subprocess.Popen(mlflow_command, stdout=output, stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, 15)  # the server's own process group: uvicorn and its worker
        process.wait(timeout=20)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_the_run_page_opens_with_the_summary_and_its_figure(logged_run, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    _, experiment_id, run_id = logged_run
    browser.get(f"{server}/#/experiments/{experiment_id}/runs/{run_id}")
    wait = WebDriverWait(browser, PAGE_SECONDS)
    wait.until(lambda _: "Gate verdict on dr" in browser.find_element(By.TAG_NAME, "body").text)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Gate verdict on dr: the new champion (served). promoted: first model" in body
    assert "1,234 events of 56 customers on 7 messages" in body
    for more in browser.find_elements(By.XPATH, "//*[normalize-space(text())='Show more']"):
        more.click()  # the description opens folded past its first lines
    # MLflow's Markdown renderer drops the alt text: the image is found by its source, the run's figure
    image = wait.until(expected_conditions.visibility_of_element_located(
        (By.CSS_SELECTOR, "img[src*='path=report%2Flift.png']")))
    wait.until(lambda _: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))
    assert image.get_attribute("src").endswith(f"run_uuid={run_id}")
    assert image.size["width"] > 0 and image.size["height"] > 0
