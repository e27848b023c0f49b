"""Benchmark the nightly training run: model quality against the simulator's ground truth, then the time
and memory of ``nbm train`` at scale.

    .venv/bin/python bench/training.py [--skip-quality] [--skip-speed]

Every ``nbm train`` runs as a child process, as it runs at night, each with its own temporary model
directory and MLflow store, so the bench never touches ``.nbm/model`` or ``.nbm/mlflow.db``. Its peak RSS
is read from ``wait4`` on that child alone: ``RUSAGE_CHILDREN`` would also hold any earlier child's peak.
A missed goal prints MISSED; a failing child prints its output's tail and makes the exit code non-zero.

The quality goal is measured on a world whose customers have a year of history, as a nightly job on a
CRM's interaction log has. The 90-day world (the history the speed goal is set on) is also trained, and
its gain printed for information only: there the journey stage is too ambiguous for a learned policy to reach the
goal: a policy that knows the simulator's true topic affinities barely reaches it with the rule-based
stage feature, and one with estimated affinities falls short even with a stage classifier trained on the
*true* stages, information no real data has (bench/quality_ceiling.py measures this ceiling; its figures
are in docs/benchmarks.md). The customer's own events are what limit it, not the model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.config import Settings  # noqa: E402
from engine.model.bundle import load_bundle  # noqa: E402

NBM = str(Path(sys.executable).with_name("nbm"))
GOAL_GAIN = 0.85  # true normalised gain of the model's choices, overall and per channel
GOAL_SECONDS = 600.0  # the whole nightly run on ~10M events
GOAL_RSS_GB = 8.0
TIMEOUT_SECONDS = 40 * 60
OBJECTIVES = ("binary", "lambdarank")
PHASE_LINE = re.compile(r"^\[(?P<phase>\w+)\] done in (?P<seconds>[\d.]+) s(?:: (?P<detail>.*))?$")
EVENTS_IN_DETAIL = re.compile(r"^([\d,]+) events")


@dataclass(frozen=True)
class World:
    path: Path
    customers: int
    days: int
    messages: int
    seed: int


QUALITY_WORLD = World(REPO / ".nbm" / "bench" / "world-q365", customers=20_000, days=365, messages=300, seed=3)
SHORT_HISTORY_WORLD = World(REPO / ".nbm" / "bench" / "world-q", customers=20_000, days=90, messages=300, seed=3)
SPEED_WORLD = World(REPO / ".nbm" / "bench" / "world-200k", customers=200_000, days=90, messages=300, seed=1)


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    seconds: float
    peak_rss_gb: float
    phases: dict[str, tuple[float, str]]  # phase -> (seconds, detail) from its "[phase] done in" lines
    tail: list[str]
    others_cores: float  # CPU used meanwhile by processes outside this child, in cores on average

    def contention(self) -> str:
        """Say when other processes competed for the CPUs: the times are then inflated."""
        if self.others_cores < 0.25:
            return ""
        benches = sorted({" ".join(p.info["cmdline"][-1:]) for p in psutil.process_iter(["cmdline", "pid"])
                          if p.info["pid"] != os.getpid() and any("bench/" in a for a in p.info["cmdline"] or [])})
        return (f" [other processes used {self.others_cores:.1f} of {os.cpu_count()} CPUs meanwhile"
                f"{' (' + ', '.join(benches) + ' running)' if benches else ''}: times inflated]")


def ensure_world(world: World) -> None:
    """Reuse the world if it was simulated with the same parameters (the features bench shares world-200k)."""
    wanted = {"customers": world.customers, "days": world.days, "messages": world.messages, "seed": world.seed}
    params = world.path / "ground_truth" / "params.json"
    if params.exists() and (world.path / "events.parquet").exists():
        held = json.loads(params.read_text())
        if {k: held.get(k) for k in wanted} != wanted:
            raise ValueError(f"{world.path} holds a world made with other parameters than {wanted}: remove it")
        return
    print(f"training: simulating {world.path} {wanted}", flush=True)
    subprocess.run([NBM, "simulate", "--out", str(world.path), *(f"--{k}={v}" for k, v in wanted.items())],
                   check=True, stdout=subprocess.DEVNULL)


def run_child(command: list[str], label: str, timeout: float) -> ChildRun:
    """Run ``command``, echo its output lines as they come (so a person sees it is alive), time it, and
    read its own peak RSS; kill its whole process group after ``timeout`` seconds."""
    started, busy_before = time.perf_counter(), _busy_cpu_seconds()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                             start_new_session=True, cwd=REPO)
    timer = threading.Timer(timeout, lambda: os.killpg(child.pid, signal.SIGKILL))
    timer.start()
    phases: dict[str, tuple[float, str]] = {}
    tail: deque[str] = deque(maxlen=30)
    assert child.stdout is not None
    for raw in child.stdout:
        line = raw.rstrip("\n")
        tail.append(line)
        print(f"  {label} | {line}", flush=True)
        if match := PHASE_LINE.match(line):
            phases[match["phase"]] = (float(match["seconds"]), match["detail"] or "")
    # wait4, not wait: the rusage it returns is this child's (and its waited-for children's) alone.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    rss_gb = usage.ru_maxrss / (1024**3 if sys.platform == "darwin" else 1024**2)
    others = max(0.0, _busy_cpu_seconds() - busy_before - usage.ru_utime - usage.ru_stime) / seconds
    return ChildRun(child.returncode, seconds, rss_gb, phases, list(tail), others)


def _busy_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def train(data: Path, scratch: Path, label: str, objective: str | None, timeout: float) -> tuple[ChildRun, Path, str]:
    """``nbm train`` into a fresh model dir and MLflow store under ``scratch``; ``objective`` None: default config."""
    model_dir, tracking_uri = scratch / "model", f"sqlite:///{scratch / 'mlflow.db'}"
    command = [NBM, "train", "--data", str(data), "--model-dir", str(model_dir), "--tracking-uri", tracking_uri]
    if objective is not None:
        config = scratch / "nbm.toml"
        config.write_text(f'[training]\nobjective = "{objective}"\n')
        command += ["--config", str(config)]
    return run_child(command, label, timeout), model_dir, tracking_uri


def run_metrics(model_dir: Path, tracking_uri: str) -> dict[str, float]:
    """The run's test metrics: the bundle keeps the overall ones and popularity's; the model's per-channel
    NDCG (``email.ndcg@3``) is only in its MLflow run, where '@' is written '_at_'."""
    import mlflow

    # The bundle is written even when the gate refuses it; it is then not "current", so open it by name.
    bundle = load_bundle(next(model_dir.glob("bundle-*")))
    tracked = mlflow.MlflowClient(tracking_uri).get_run(bundle.metadata["run_id"]).data.metrics
    return {**{k.replace("_at_", "@"): v for k, v in tracked.items()}, **bundle.metadata["metrics"]}


def goal(value: float, met: bool, text: str) -> str:
    return f"{value:.2f} (goal {text}{'' if met else ': MISSED'})"


def quality(world: World) -> tuple[int, int]:
    """Train each objective on the ground-truth world; print per-channel gain and NDCG@3 beside popularity.
    The goal is the default objective's (the model ``nbm train`` makes); the other is there to compare."""
    default = Settings().training.objective
    failed, missed, summary = 0, 0, {}
    for objective in OBJECTIVES:
        with tempfile.TemporaryDirectory(prefix=f"nbm-bench-{objective}-") as scratch:
            run, model_dir, tracking_uri = train(world.path, Path(scratch), objective, objective, TIMEOUT_SECONDS)
            if run.returncode != 0:
                failed += 1
                print(f"training quality [{objective}]: FAILED: nbm train exited {run.returncode}\n" + "\n".join(run.tail))
                continue
            m = run_metrics(model_dir, tracking_uri)

        def judged(gain: float) -> str:
            nonlocal missed
            if objective != default:
                return f"{gain:.2f} (not the default objective: for comparison)"
            missed += gain < GOAL_GAIN
            return goal(gain, gain >= GOAL_GAIN, f">= {GOAL_GAIN}")

        channels = sorted(k.split(".", 1)[1] for k in m if k.startswith("gain."))
        for channel in channels:
            print(f"training quality [{objective}] {channel}: gain {judged(m[f'gain.{channel}'])}, "
                  f"popularity gain {m.get(f'popularity.gain.{channel}', float('nan')):.2f}, "
                  f"ndcg@3 {m.get(f'{channel}.ndcg@3', float('nan')):.3f} "
                  f"vs popularity {m.get(f'popularity.{channel}.ndcg@3', float('nan')):.3f}")
        print(f"training quality [{objective}] all: gain {judged(m['gain'])}, "
              f"popularity gain {m['popularity.gain']:.2f}, ndcg@3 {m['ndcg@3']:.3f} "
              f"vs popularity {m['popularity.ndcg@3']:.3f} ({run.seconds:.0f} s)", flush=True)
        if note := run.contention():
            print(f"training quality [{objective}]:{note}")
        summary[objective] = (m["gain"], m["ndcg@3"])
    if len(summary) == len(OBJECTIVES):
        (b_gain, b_ndcg), (l_gain, l_ndcg) = summary["binary"], summary["lambdarank"]
        print(f"training quality: {'binary' if b_gain >= l_gain else 'lambdarank'} is better on the true gain "
              f"(binary {b_gain:.3f}, lambdarank {l_gain:.3f}); {'binary' if b_ndcg >= l_ndcg else 'lambdarank'} "
              f"is better on ndcg@3 (binary {b_ndcg:.3f}, lambdarank {l_ndcg:.3f}); the default is {default}")
    return failed, missed


def short_history(world: World) -> tuple[int, int]:
    """The default objective on 90 days of history: its gain, for information (no goal; see the docstring)."""
    with tempfile.TemporaryDirectory(prefix="nbm-bench-short-") as scratch:
        run, model_dir, tracking_uri = train(world.path, Path(scratch), "90-day", None, TIMEOUT_SECONDS)
        if run.returncode != 0:
            print("training quality [90-day history]: FAILED: nbm train exited "
                  f"{run.returncode}\n" + "\n".join(run.tail))
            return 1, 0
        m = run_metrics(model_dir, tracking_uri)
    channels = sorted(k.split(".", 1)[1] for k in m if k.startswith("gain."))
    print(f"training quality [90-day history, information only] all: gain {m['gain']:.2f} ("
          + ", ".join(f"{c} {m[f'gain.{c}']:.2f}" for c in channels)
          + f"), popularity gain {m['popularity.gain']:.2f}", flush=True)
    return 0, 0


def speed(world: World) -> tuple[int, int]:
    """The whole nightly run on ~10M events with the default config: wall time, peak RSS, time per phase."""
    with tempfile.TemporaryDirectory(prefix="nbm-bench-speed-") as scratch:
        run, _, _ = train(world.path, Path(scratch), "nightly", None, TIMEOUT_SECONDS)
    if run.returncode != 0:
        reason = "killed after the time limit" if run.seconds >= TIMEOUT_SECONDS else f"exited {run.returncode}"
        print(f"training speed: FAILED: nbm train {reason} after {run.seconds:.0f} s, peak RSS {run.peak_rss_gb:.1f} GB\n"
              + "\n".join(run.tail))
        return 1, 0
    events = EVENTS_IN_DETAIL.match(run.phases.get("validate", (0.0, ""))[1])
    time_met, rss_met = run.seconds < GOAL_SECONDS, run.peak_rss_gb < GOAL_RSS_GB
    print(f"training speed: {events[1] if events else '?'} events, whole run {run.seconds:.1f} s "
          f"(goal < {GOAL_SECONDS:.0f} s{'' if time_met else ': MISSED'}), peak RSS {run.peak_rss_gb:.1f} GB "
          f"(goal < {GOAL_RSS_GB:.0f} GB{'' if rss_met else ': MISSED'}){run.contention()}")
    for phase, (seconds, detail) in run.phases.items():
        print(f"training speed: [{phase}] {seconds:7.1f} s {100 * seconds / run.seconds:4.0f}%  {detail}")
    startup = run.seconds - sum(s for s, _ in run.phases.values())
    print(f"training speed: outside the phases (imports, startup, exit) {startup:.1f} s", flush=True)
    return 0, (not time_met) + (not rss_met)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    failed, missed = 0, 0
    steps = ((args.skip_quality, QUALITY_WORLD, quality), (args.skip_quality, SHORT_HISTORY_WORLD, short_history),
             (args.skip_speed, SPEED_WORLD, speed))
    for skip, world, step in steps:
        if skip:
            continue
        try:
            ensure_world(world)
            step_failed, step_missed = step(world)
        except Exception as exc:  # reported, and the exit code says so
            step_failed, step_missed = 1, 0
            print(f"training {step.__name__}: FAILED: {type(exc).__name__}: {exc}", flush=True)
        failed, missed = failed + step_failed, missed + step_missed
    print(f"training: {'FAILED' if failed else 'MISSED' if missed else 'PASS'} ({failed} runs failed, {missed} goals missed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
