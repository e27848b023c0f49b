"""The bring-your-own-data tutorial (docs/tutorial.md) on its shipped CSVs (docs/examples/byo/), run as written.

The `nbm` commands and the request bodies of the `curl` calls are read from the tutorial itself and run here
(its work folder /tmp/nbm-byo replaced by a temporary one), so the tutorial cannot go stale: a renamed
option, a moved file or a request the API no longer takes fails these tests.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from engine.config import load_settings
from engine.model.bundle import load_bundle
from serving.app import create_app
from training.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.md"
EXAMPLE = REPO / "docs" / "examples" / "byo"
WORK = "/tmp/nbm-byo"  # the tutorial's work folder
# The data's last event is on 2026-11-15; the tutorial's requests are stamped on 2026-11-16.
NOW = pd.Timestamp("2026-11-16T12:00:00Z")
# Opt-outs in events.csv (customer, channel): nbm score serves these pairs nothing, and says consent.
OPTED_OUT = {("c012", "sms"), ("c031", "email"), ("c040", "sms")}


def shell_blocks(markdown: str) -> list[str]:
    """The commands of the tutorial's ```sh blocks, one string each (backslash continuations joined,
    comments and `$ ` prompts dropped); outputs are in other blocks."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def nbm_commands(markdown: str, work: Path) -> list[list[str]]:
    """Arguments of every `nbm ...` command (without a leading `NAME=value` environment), work folder replaced."""
    found = []
    for command in shell_blocks(markdown):
        words = shlex.split(command.replace(WORK, str(work)))
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words and words[0] == "nbm":
            found.append(words[1:])
    return found


def curl_requests(markdown: str) -> list[tuple[str, str, dict | None]]:
    """(method, path, JSON body) of every `curl` call to the local server."""
    found = []
    for command in shell_blocks(markdown):
        words = shlex.split(command)
        if not words or words[0] != "curl":
            continue
        url = next(w for w in words if w.startswith("http://"))
        body = json.loads(words[words.index("-d") + 1]) if "-d" in words else None
        found.append(("POST" if body is not None else "GET", re.sub(r"^http://[^/]+", "", url), body))
    return found


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.fixture(scope="module")
def tutorial() -> str:
    return TUTORIAL.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ran(tutorial, tmp_path_factory) -> dict[str, tuple[list[str], int | None]]:
    """Every `nbm` command of the tutorial, in order, from the repository root as the tutorial says:
    subcommand -> (arguments, exit code). `serve` is not run (None): the test builds its app."""
    work = tmp_path_factory.mktemp("nbm-byo")
    results: dict[str, tuple[list[str], int | None]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        for args in nbm_commands(tutorial, work):
            results[args[0]] = (args, None if args[0] == "serve" else main(args))
    return results


def test_the_tutorial_walks_through_validate_train_score_and_serve(tutorial):
    assert [args[0] for args in nbm_commands(tutorial, Path("/w"))][:4] == ["validate", "train", "score", "show"]
    assert "serve" in {args[0] for args in nbm_commands(tutorial, Path("/w"))}
    methods_paths = [(method, path) for method, path, _ in curl_requests(tutorial)]
    assert ("POST", "/v1/decisions") in methods_paths and ("POST", "/v1/events") in methods_paths


def test_every_file_the_tutorial_names_exists(tutorial):
    # Links are relative to docs/; paths in commands relative to the repository root (where they run).
    links = {TUTORIAL.parent / target for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", tutorial)}
    in_commands = {REPO / word for command in shell_blocks(tutorial) for word in shlex.split(command)
                   if re.match(r"(docs|tests|training|engine|serving)/", word)}
    assert TUTORIAL.parent / "data-contract.md" in links and REPO / "docs/examples/byo/nbm.toml" in in_commands
    missing = sorted(str(path) for path in links | in_commands if not path.exists())
    assert missing == []


def test_the_tutorial_quotes_the_files_as_they_are(tutorial):
    quoted = re.findall(r"```csv\n(.*?)```", tutorial, flags=re.S)
    assert len(quoted) == 3
    for block in quoted:
        header, *rows = block.splitlines()
        source = next(path for path in EXAMPLE.glob("*.csv") if path.read_text().splitlines()[0] == header)
        assert set(rows) <= set(source.read_text().splitlines()[1:]), source.name
    assert re.findall(r"```toml\n(.*?)```", tutorial, flags=re.S) == [(EXAMPLE / "nbm.toml").read_text()]


def test_the_shipped_files_are_the_ones_the_script_writes(tmp_path):
    # make_events.py is seeded: running it again must give the committed events.csv, byte for byte.
    subprocess.run([sys.executable, str(EXAMPLE / "make_events.py"), str(tmp_path / "events.csv")], check=True)
    assert (tmp_path / "events.csv").read_bytes() == (EXAMPLE / "events.csv").read_bytes()
    assert sum(p.stat().st_size for p in EXAMPLE.iterdir()) < 300_000


def test_validate_accepts_every_row(ran, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    args, code = ran["validate"]
    assert option(args, "--data") == "docs/examples/byo" and code == 0
    events = pd.read_csv(EXAMPLE / "events.csv")
    assert "propensity" not in events.columns  # the point of the example
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(rf"events\s+{len(events):,} accepted\s+0 rejected", out), out
    assert "PASS: 0.00% of events rejected" in out


def test_train_succeeds_and_promotes_a_model_that_splits(ran):
    args, code = ran["train"]
    assert option(args, "--config") == "docs/examples/byo/nbm.toml"
    assert code == 0
    bundle = load_bundle(Path(option(args, "--model-dir")))  # the current bundle: promoted
    assert bundle.metadata["promoted"] is True
    # A model that splits gives messages different scores.
    trees = bundle.booster.dump_model()["tree_info"]
    assert any("split_index" in tree["tree_structure"] for tree in trees)


def test_score_writes_a_row_per_customer_and_channel(ran):
    args, code = ran["score"]
    assert code == 0 and option(args, "--k") == "1" and option(args, "--channel") == "all"
    scores = pd.read_csv(option(args, "--out"), dtype={"customer_id": str})
    customers = pd.read_csv(EXAMPLE / "customers.csv", dtype=str)["customer_id"]
    channels = sorted(pd.read_csv(EXAMPLE / "messages.csv")["channel"].unique())
    pairs = list(zip(scores["customer_id"], scores["channel"], strict=True))
    assert len(pairs) == len(set(pairs)) and set(pairs) == {(c, ch) for c in customers for ch in channels}
    opted_out = scores.loc[[pair in OPTED_OUT for pair in pairs]]
    assert len(opted_out) == len(OPTED_OUT) and opted_out["message_id"].isna().all()
    assert opted_out["suppressed"].str.fullmatch(r"consent:\d+").all()
    assert ran["show"][1] == 0


def test_the_served_model_answers_the_tutorial_requests(ran, tutorial, tmp_path):
    model_dir = Path(option(ran["serve"][0], "--model-dir"))
    assert model_dir == Path(option(ran["train"][0], "--model-dir"))
    settings_file = tmp_path / "nbm.toml"
    settings_file.write_text(f'[paths]\nhome = "{tmp_path / "home"}"\n')
    app = create_app(load_settings(settings_file, environ=False), model_dir=model_dir, environ={}, clock=lambda: NOW)
    answers = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path, body in curl_requests(tutorial):
            response = client.request(method, path, json=body)
            assert response.status_code == 200, (path, body, response.text)
            answers.append((path, body, response.json()))
    decisions = [(body, answer) for path, body, answer in answers if path == "/v1/decisions"]
    _, first = decisions[0]
    assert first["messages"] and first["messages"][0]["message_id"] in set(pd.read_csv(EXAMPLE / "messages.csv")["message_id"])
    # The tutorial posts an unsubscribe and asks again: the same customer gets nothing on that channel.
    posted = next(body for path, body, _ in answers if path == "/v1/events")["events"]
    unsubscribe = next(e for e in posted if e["event_type"] == "unsubscribe")
    again = [answer for body, answer in decisions[1:]
             if (body["customer_id"], body["channel"]) == (unsubscribe["customer_id"], unsubscribe["channel"])]
    assert again and again[-1]["messages"] == [] and again[-1]["suppressed"].get("consent", 0) > 0
