"""Example Airflow DAG for nbm's nightly job: export-events -> validate -> train (docs/operations.md).

An example to copy and adapt, not part of nbm: Airflow is not one of nbm's dependencies and nothing imports
this file (tests only compile it). It assumes nbm is installed on the worker (``make install`` in
NBM_REPO) and that the API and this job share one state directory (``paths.home``, here NBM_STATE).

Data layout: the upstream catalog job keeps ``messages.parquet`` and ``customers.parquet`` in NBM_DATA, and
the history from before the API in ``events/00-history.parquet``; each night this DAG replaces
``events/10-api.parquet`` with every event the API stored (a full export, never a ``--since`` window that
overlaps an earlier one: repeated event ids are rejected as ``duplicate_event_id``). ``events/`` is read
in name order.

Exit codes: nbm exits 1 for an internal error or an unreachable store (worth a retry) and 2 for bad input
(data, configuration, usage: a retry will fail the same way). Airflow retries any non-zero exit; the
validate task therefore gets no retries.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator  # Airflow 3: airflow.providers.standard.operators.bash

NBM_REPO = "/opt/nbm"  # the checkout where `make install` made .venv
NBM = f"{NBM_REPO}/.venv/bin/nbm"
NBM_STATE = "/var/lib/nbm"  # paths.home of the API: events.db, model/, mlflow.db
NBM_DATA = "/var/lib/nbm/nightly/data"

# BashOperator's env replaces the worker's environment (unless append_env=True): name everything nbm needs.
ENV = {
    "NBM_PATHS__HOME": NBM_STATE,
    "MLFLOW_TRACKING_URI": f"sqlite:///{NBM_STATE}/mlflow.db",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}

with DAG(
    dag_id="nbm_nightly",
    description="Export the API's events, validate the data directory, train and promote nbm's ranker",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # never two trainings at once (the cron recipe uses flock for the same reason)
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(hours=3)},
    tags=["nbm"],
) as dag:
    export_events = BashOperator(
        task_id="export_events",
        bash_command=f"mkdir -p {NBM_DATA}/events && {NBM} export-events --out {NBM_DATA}/events/10-api.parquet",
        env=ENV,
    )

    validate = BashOperator(
        task_id="validate",
        bash_command=f"{NBM} validate --data {NBM_DATA} --rejects-out {NBM_STATE}/nightly/rejects.csv",
        env=ENV,
        retries=0,  # exit 2 (too many rejects) does not heal by itself: look at rejects.csv
    )

    train = BashOperator(
        task_id="train",
        bash_command=f"{NBM} train --data {NBM_DATA} --model-dir {NBM_STATE}/model",
        env=ENV,
    )

    export_events >> validate >> train
