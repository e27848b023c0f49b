"""``make bench``: run every benchmark script in turn; each prints its figures beside its goal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ["simulator.py", "features.py", "ab_features.py", "training.py", "tuning.py", "real_data.py", "gate.py", "serving.py", "ab_serving.py",
           "score.py"]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = 0
    for name in BENCHES:
        print(f"== {name}", flush=True)
        failed += subprocess.run([sys.executable, str(here / name)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
