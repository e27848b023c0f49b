"""The evaluation report: plots and a Markdown page, written to a folder and logged to MLflow."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from training.evaluate import Evaluation  # noqa: E402

TOP_FEATURES = 25


def importance_figure(importance: dict[str, float]):
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES][::-1]
    figure, axis = plt.subplots(figsize=(8, 0.3 * len(top) + 1.2))
    axis.barh([name for name, _ in top], [value for _, value in top], color="#3b6ea8")
    axis.set_xlabel("total gain")
    axis.set_title(f"Top {len(top)} features by gain")
    figure.tight_layout()
    return figure


def validation_figure(curve: list[float], metric: str, best_iteration: int):
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(range(1, len(curve) + 1), curve, color="#3b6ea8")
    axis.axvline(best_iteration, color="#c0392b", linestyle="--", label=f"best iteration {best_iteration}")
    axis.set_xlabel("boosting round")
    axis.set_ylabel(f"validation {metric}")
    axis.legend()
    figure.tight_layout()
    return figure


def markdown_report(evaluation: Evaluation, *, data_stats: dict, split: dict, objective: str, best_iteration: int,
                    gate_reason: str | None, provenance: list[str] = ()) -> str:
    ranking = evaluation.ranking.reset_index()
    overall = ranking[ranking["segment"] == "all"].drop(columns=["segment"]).set_index("policy")
    per_channel = ranking[ranking["policy"] == "model"].drop(columns=["policy"]).set_index("segment")
    lines = [
        "# nbm training report",
        "",
        "## Data",
        *[f"- {k}: {v}" for k, v in data_stats.items()],
        "",
        "## Split (by time)",
        *[f"- {k}: {v}" for k, v in split.items()],
        "",
        f"## Model: LightGBM `{objective}`, best iteration {best_iteration}",
        "",
        *provenance,
        "",
        "### Test window, the model beside its baselines",
        _table(overall),
        "",
        "### Test window, the model per channel",
        _table(per_channel),
        "",
        f"### Off-policy value of what each policy would serve at replayed logged decisions ({evaluation.reward} rate, 95% CI)",
        "Each logged test decision decided again by the decision engine with the configured policy (exploration off) "
        "from the events before it, each policy as its scorer.",
        "",
        _table(evaluation.off_policy) if len(evaluation.off_policy) else "(none)",
        *[f"- {note}" for note in evaluation.notes],
    ]
    if len(evaluation.comparisons):
        lines += ["", "### The model minus each other policy, paired on the same bootstrap resamples (95% CI)",
                  _table(evaluation.comparisons)]
    if not evaluation.gains.empty:
        lines += ["", f"### Ground truth: normalised gain in {evaluation.reward} probability (1 = oracle, 0 = random choice)",
                  _table(evaluation.gains)]
    if gate_reason:
        lines += ["", "## Promotion", gate_reason]
    lines += ["", "![feature importance](feature_importance.png)", "", "![validation curve](validation_curve.png)", ""]
    return "\n".join(lines)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(floatfmt=".4f") if _has_tabulate() else "```\n" + frame.to_string(float_format=lambda v: f"{v:.4f}") + "\n```"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(folder: Path, evaluation: Evaluation, importance: dict[str, float], curve: list[float], metric: str,
                 best_iteration: int, markdown: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in (("feature_importance.png", importance_figure(importance)),
                         ("validation_curve.png", validation_figure(curve, metric, best_iteration))):
        figure.savefig(folder / name, dpi=110)
        plt.close(figure)
        paths.append(folder / name)
    evaluation.ranking.to_csv(folder / "ranking_metrics.csv")
    paths.append(folder / "ranking_metrics.csv")
    if len(evaluation.off_policy):  # none without logged propensities
        evaluation.off_policy.to_csv(folder / "off_policy.csv")
        paths.append(folder / "off_policy.csv")
    if len(evaluation.comparisons):
        evaluation.comparisons.to_csv(folder / "off_policy_differences.csv")
        paths.append(folder / "off_policy_differences.csv")
    if not evaluation.gains.empty:
        evaluation.gains.to_csv(folder / "ground_truth_gain.csv")
        paths.append(folder / "ground_truth_gain.csv")
    (folder / "report.md").write_text(markdown)
    paths.append(folder / "report.md")
    return paths
