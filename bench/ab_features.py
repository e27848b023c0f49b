"""The training matrix of this checkout against another commit's, built alternately in the same minutes.

    .venv/bin/python bench/ab_features.py [--base b18a938 --rounds 2 --data .nbm/bench/world-200k]

Goal (issue 23): the feature definitions and their numpy interpreter build the training matrix (one row per
logged impression, every feature) no slower than the feature families they replaced (commit b18a938) by
more than 10%. The machines these benchmarks run on change speed within minutes, so the two versions run
one after the other, round after round, each in a fresh process (``bench/features.py``'s
``_training_matrix`` of its own tree: log + history, then the features); the medians are compared.
``REF`` is checked out into a temporary git worktree, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.10
BEFORE_DEFINITIONS = "b18a938"

_CHILD = """
import json, sys
tree = sys.argv[1]
sys.path[:0] = [tree, tree + "/bench"]
import features
print(json.dumps(features._training_matrix(sys.argv[2])))
"""


def _matrix(tree: Path, data: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(data)], check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BEFORE_DEFINITIONS, help="the commit (or branch, tag) to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=REPO / ".nbm" / "bench" / "world-200k",
                        help="a data set (bench/features.py simulates it when missing)")
    args = parser.parse_args()
    if not (args.data / "events.parquet").exists() and not any(args.data.glob("events.*")):
        subprocess.run([sys.executable, str(REPO / "bench" / "features.py"), "--data", str(args.data), "--comparisons-only"],
                       check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as parent:
        worktree = Path(parent) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(worktree), args.base], check=True)
        try:
            results: dict[str, list[dict[str, float]]] = {"this checkout": [], args.base: []}
            for number in range(1, args.rounds + 1):
                pair = (("this checkout", REPO), (args.base, worktree))
                for name, tree in pair if number % 2 else pair[::-1]:  # A B, B A, ...: neither always goes first
                    m = _matrix(tree, args.data)
                    results[name].append(m)
                    print(f"ab_features: round {number} {name}: {m['rows']:,} rows x {m['cols']} cols, log+history "
                          f"{m['history_s']:.1f} s, features {m['features_s']:.1f} s, peak RSS {m['peak_gb']:.2f} GB", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    mine, base = ({key: statistics.median(m[key] for m in results[name]) for key in ("history_s", "features_s", "peak_gb")}
                  for name in ("this checkout", args.base))
    ratio = (mine["history_s"] + mine["features_s"]) / (base["history_s"] + base["features_s"])
    met = ratio <= GOAL_RATIO
    print(f"ab_features: training matrix, medians of {args.rounds}: this checkout {mine['history_s'] + mine['features_s']:.1f} s "
          f"(features {mine['features_s']:.1f} s, peak {mine['peak_gb']:.2f} GB), {args.base} "
          f"{base['history_s'] + base['features_s']:.1f} s (features {base['features_s']:.1f} s, peak {base['peak_gb']:.2f} GB) "
          f"-> ratio {ratio:.3f} (goal <= {GOAL_RATIO:.2f}) {'PASS' if met else 'FAIL'}", flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
