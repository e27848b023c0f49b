"""One tiny model trained once per session by the real ``nbm train``, and apps over copies of it.

Every app gets its own home (event store) and a fixed clock one hour after the bundle's feature cutoff, so
that default ``as_of`` and the events' future limit do not depend on when the tests run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from engine.config import Settings, load_settings
from engine.model.bundle import CURRENT, load_bundle
from serving.app import create_app
from training.cli import main

API_KEY = "k" * 16 + "-api-key-for-tests"
ADMIN_KEY = "a" * 16 + "-admin-key-for-tests"


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A model dir holding one bundle (version 1) trained on a tiny simulated world."""
    root = tmp_path_factory.mktemp("serving-model")
    data = root / "data"
    assert main(["simulate", "--out", str(data), "--customers", "150", "--days", "30", "--seed", "5"]) == 0
    assert main(["train", "--data", str(data), "--model-dir", str(root / "model"),
                 "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}", "--force-promote"]) == 0  # whatever the gate says
    return root / "model"


@pytest.fixture(scope="session")
def bundle_facts(trained):
    """What tests need to know about the trained bundle: cutoff, channels, a known customer."""
    bundle = load_bundle(trained)
    cutoff = pd.Timestamp(bundle.state.cutoff_ns, tz="UTC")
    channels = sorted(bundle.messages["channel"].astype(str).unique())
    return {"cutoff": cutoff, "now": (cutoff + pd.Timedelta(hours=1)).ceil("us"), "channels": channels, "version": bundle.version,
            "customer": str(bundle.customers["customer_id"].iloc[0]), "messages": bundle.messages}


@pytest.fixture
def model_dir(trained, tmp_path) -> Path:
    """A private copy of the trained model dir (tests may add, break or re-point bundles)."""
    target = tmp_path / "model"
    shutil.copytree(trained, target, symlinks=True)
    return target


def copy_bundle(model_dir: Path, version: str, *, source: Path | None = None, make_current: bool = True) -> Path:
    """Another bundle: a copy of ``source`` (default: the current one) with another model_version."""
    source = source or (model_dir / CURRENT).resolve()
    target = model_dir / f"bundle-copy-v{version}"
    shutil.copytree(source, target)
    meta = json.loads((target / "metadata.json").read_text())
    meta["model_version"] = version
    (target / "metadata.json").write_text(json.dumps(meta))
    if make_current:
        point_current(model_dir, target)
    return target


def point_current(model_dir: Path, bundle: Path) -> None:
    link = model_dir / ".current-test"
    os.symlink(bundle.name, link)
    os.replace(link, model_dir / CURRENT)


def settings_for(tmp_path: Path, toml: str = "", home: Path | None = None) -> Settings:
    path = tmp_path / "nbm.toml"
    path.write_text(f'[paths]\nhome = "{home or tmp_path / "home"}"\n{toml}')
    return load_settings(path, environ=False)


@pytest.fixture
def make_client(tmp_path, model_dir, bundle_facts) -> Iterator[Callable[..., TestClient]]:
    """``make_client(toml="", environ=None, home=None, **create_app_kwargs)`` -> a started TestClient."""
    clients: list[TestClient] = []

    def make(toml: str = "", environ: dict[str, str] | None = None, home: Path | None = None, **kwargs) -> TestClient:
        kwargs.setdefault("model_dir", model_dir)
        kwargs.setdefault("clock", lambda: bundle_facts["now"])
        app = create_app(settings_for(tmp_path, toml, home), environ=environ or {}, **kwargs)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
