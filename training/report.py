"""The evaluation report as MLflow shows it: the run's description (a one-minute summary), the figures, the
tables, the full Markdown page, and the words on the experiment, the registered model and its versions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from training.evaluate import MODEL, Evaluation  # noqa: E402
from training.gate import GateDecision  # noqa: E402

TOP_FEATURES = 25
FIGURES = {"feature_importance.png": "feature importance", "validation_curve.png": "validation curve"}
EXPERIMENT_DESCRIPTION = (
    "Model training for nbm, the next-best-message engine: each run is one `nbm train` (fit the LightGBM ranker on "
    "the events, evaluate it against popularity and random choice on a later test window, replay logged decisions "
    "off-policy, and let the promotion gate decide). A run's description is its summary; its artifacts hold the "
    "figures, the tables (report/), the full report (report/report.md) and the bundle serving loads (bundle/).")
MODEL_DESCRIPTION = (
    "nbm's next-best-message ranker: a LightGBM model scoring (customer, message) pairs from the customer's event "
    "history and the catalog, served by `nbm serve`. The `champion` alias is the version the gate promoted "
    "(served); `challenger` the last one it refused. Each version's description names its run and the verdict.")


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


def report_figures(importance: dict[str, float], curve: list[float], metric: str,
                   best_iteration: int) -> Iterator[tuple[str, matplotlib.figure.Figure]]:
    """(file name, figure) of each figure in ``FIGURES``; a figure is closed once the caller moves on."""
    for name, figure in (("feature_importance.png", importance_figure(importance)),
                         ("validation_curve.png", validation_figure(curve, metric, best_iteration))):
        try:
            yield name, figure
        finally:
            plt.close(figure)


def report_tables(evaluation: Evaluation) -> dict[str, pd.DataFrame]:
    """The evaluation's tables by file name; the ones this run has no rows for are left out."""
    tables = {"ranking_metrics.json": evaluation.ranking, "off_policy.json": evaluation.off_policy,
              "off_policy_differences.json": evaluation.comparisons, "ground_truth_gain.json": evaluation.gains}
    return {name: frame for name, frame in tables.items() if len(frame)}


def run_description(evaluation: Evaluation, *, data_stats: Mapping, split: Mapping, gate_metric: str,
                    decision: GateDecision, figure_urls: Mapping[str, str]) -> str:
    """The Markdown the MLflow run page opens with: the gate's verdict and why, the data, the split, the
    model beside its baselines, the off-policy values with their intervals, and the figures (``figure_urls``:
    title -> URL)."""
    verdict = "the new champion (served)" if decision.promote else "kept as challenger (not served)"
    d, s = data_stats, split
    lines = [
        f"**Gate verdict on {gate_metric}: {verdict}.** {decision.reason}",
        "",
        f"**Data:** {d['events']:,} events of {d['customers']:,} customers on {d['messages']:,} messages, "
        f"{_when(d['start'])} to {_when(d['end'])}; {d['impressions']:,} impressions, {d['rejected_rows']:,} rows rejected.",
        "",
        f"**Split by time:** train {s['train_rows']:,} impressions before {_when(s['validation_start'])}, validation "
        f"{s['validation_rows']:,}, test {s['test_rows']:,} from {_when(s['test_start'])} to {_when(s['end'])}.",
        "",
        "**The model against its baselines** (test window, all channels):",
        "",
        _markdown_table(_baselines(evaluation).map(lambda value: f"{value:.4f}")),
    ]
    if len(evaluation.off_policy):
        lines += ["", f"**Off-policy value** ({evaluation.reward} rate of what each policy would serve at replayed "
                      "logged decisions, 95% interval):", "", _markdown_table(_with_intervals(evaluation.off_policy, "value"))]
    if len(evaluation.comparisons):
        lines += ["", "**The model minus each other policy** (paired, 95% interval):", "",
                  _markdown_table(_with_intervals(evaluation.comparisons, "difference"))]
    lines += [f"- {note}" for note in evaluation.notes]
    lines += ["", "**Figures:**", "", *[f"![{title}]({url})" for title, url in figure_urls.items()], "",
              "Tables and the full report: artifacts `report/`; the configuration: `config.json`; the data's "
              "validation: `validation_report.txt`. Metric keys: `@` is written `_at_` (`ndcg@3` is `ndcg_at_3`)."]
    return "\n".join(lines)


def version_description(run_id: str, decision: GateDecision) -> str:
    """A registered model version's description: what it is, its run and the gate's verdict."""
    verdict = "promoted (champion)" if decision.promote else "not promoted (challenger)"
    return (f"nbm ranker trained by run {run_id} (its description has the evaluation). Gate: {verdict}: "
            f"{decision.reason}")


def _baselines(evaluation: Evaluation) -> pd.DataFrame:
    overall = evaluation.ranking.xs("all", level="segment")
    columns = [c for c in ("auc", "ndcg@3", "map") if c in overall.columns]
    return overall[columns].sort_index(key=lambda policies: policies != MODEL)  # the model first


def _with_intervals(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """(policy, estimator) rows -> a policy x estimator table of 'value [low, high]' ('value' without an
    interval, empty where the estimator has no value for the policy)."""
    def cell(row: pd.Series) -> str:
        if pd.isna(row[column]):
            return ""
        interval = "" if pd.isna(row["ci_low"]) else f" [{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
        return f"{row[column]:.4f}{interval}"

    return frame.apply(cell, axis=1).unstack("estimator", fill_value="").rename_axis(columns=None)


def _markdown_table(cells: pd.DataFrame) -> str:
    """A table of text cells as Markdown (GitHub's pipe tables, which MLflow's description renders), the
    index as the first column."""
    header = [cells.index.name or "", *map(str, cells.columns)]
    rows = [[str(label), *map(str, values)] for label, values in zip(cells.index, cells.to_numpy(), strict=True)]
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *rows])


def _when(timestamp: str) -> str:
    return pd.Timestamp(timestamp).strftime("%Y-%m-%d %H:%M UTC")


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
    lines += [item for name, title in FIGURES.items() for item in ("", f"![{title}]({name})")] + [""]
    return "\n".join(lines)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(floatfmt=".4f") if _has_tabulate() else "```\n" + frame.to_string(float_format=lambda v: f"{v:.4f}") + "\n```"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
