"""The ``nbm`` command. Errors are mapped to exit codes here and nowhere else:
0 success, 2 bad input (data, configuration, usage), 1 internal error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.exceptions import TyperException

from engine.config import Settings, load_settings
from engine.errors import ConfigError, DataError, NbmError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1

app = typer.Typer(
    name="nbm",
    help="nbm, the next-best-message engine: simulate, validate, train, score and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="nbm.toml settings file; NBM_* environment variables override it."),
]


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _echo(line: str) -> None:
    typer.echo(line, err=True)


def nbm_version() -> str:
    """The installed distribution's version; pyproject.toml's when nbm runs from a source tree not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nbm")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"nbm {nbm_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print nbm's version and exit."),
    ] = False,
) -> None:
    """nbm, the next-best-message engine: simulate, validate, train, score and serve."""


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write the simulated data set to.")],
    customers: Annotated[Optional[int], typer.Option(min=1, help="Number of customers.")] = None,
    days: Annotated[Optional[int], typer.Option(min=1, help="Days of history.")] = None,
    messages: Annotated[Optional[int], typer.Option(min=40, help="Catalog size (>= 40).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: same seed, same files.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl.")] = "parquet",
    config: ConfigOption = None,
) -> None:
    """Simulate a realistic world in the data contract, with its ground truth beside it."""
    from training.commands.simulate import run_simulate

    run_simulate(_settings(config), out=out, customers=customers, days=days, messages=messages, seed=seed, fmt=fmt)


@app.command()
def validate(
    data: Annotated[Path, typer.Option(help="Data directory holding messages, customers and events.")],
    rejects_out: Annotated[
        Optional[Path], typer.Option(help="Write rejected rows with file, row and reason (.csv, .parquet or .jsonl).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check a data directory against the data contract; exit 2 if it is unusable."""
    from training.commands.validate import run_validate

    run_validate(_settings(config), data=data, rejects_out=rejects_out)


@app.command("train")
def train_command(
    data: Annotated[Path, typer.Option(help="Data directory (messages, customers, events).")],
    model_dir: Annotated[Optional[Path], typer.Option(help="Where bundles are published (default: <home>/model).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///<home>/mlflow.db).")] = None,
    force_promote: Annotated[bool, typer.Option("--force-promote", help="Make the new model champion even if the gate says no.")] = False,
    tune: Annotated[bool, typer.Option("--tune", help="First search the LightGBM settings on the validation window (Optuna); fit with the best and keep them in <model-dir>/tuned.json.")] = False,
    tune_minutes: Annotated[Optional[float], typer.Option(min=0.0, help="With --tune: the search's time budget, checked between trials (default 10).")] = None,
    tune_trials: Annotated[Optional[int], typer.Option(min=1, help="With --tune: at most this many trials (default 100).")] = None,
    config: ConfigOption = None,
) -> None:
    """Train, evaluate against baselines, log to MLflow, publish a bundle and promote it if it is better."""
    from training.commands.train import run_train
    from training.tuning import DEFAULT_TUNE_MINUTES, DEFAULT_TUNE_TRIALS, TuneRequest

    if not tune and (tune_minutes is not None or tune_trials is not None):
        raise DataError("--tune-minutes and --tune-trials only apply with --tune")
    request = TuneRequest(budget_seconds=60 * (DEFAULT_TUNE_MINUTES if tune_minutes is None else tune_minutes),
                          max_trials=DEFAULT_TUNE_TRIALS if tune_trials is None else tune_trials) if tune else None
    run_train(_settings(config), data=data, model_dir=model_dir, tracking_uri=tracking_uri, force_promote=force_promote, tune=request)


@app.command()
def score(
    data: Annotated[Path, typer.Option(help="Data directory: history up to --as-of, catalog, customers.")],
    as_of: Annotated[str, typer.Option(help="Decision time, ISO-8601 (offsets converted to UTC).")],
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet.")],
    model_dir: Annotated[Optional[Path], typer.Option(help="Model directory or bundle (default: <home>/model).")] = None,
    channel: Annotated[str, typer.Option(help="A channel, or all.")] = "all",
    k: Annotated[int, typer.Option(min=1, help="Messages per customer and channel.")] = 1,
    customers: Annotated[Optional[Path], typer.Option(help="Only these customers: one id a line, or a CSV with customer_id.")] = None,
    bundle: Annotated[Optional[Path], typer.Option(help="Score with this bundle folder (e.g. a challenger that was not promoted) instead of the model directory's current one.")] = None,
    explore: Annotated[bool, typer.Option(help="Explore as [policy] exploration says (off by default); the propensities and decision ids written then allow off-policy evaluation.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes deciding parts of the customers at once (each holds one part's events in memory).")] = 1,
    config: ConfigOption = None,
) -> None:
    """Decide every customer's next best message(s) at --as-of with the API's decision engine and policy (rules, contact
    policy, complaint suppression, arbitration, coordination across channels with --channel all), the data's events
    before --as-of as history. One row per served message (customer_id, channel, rank, message_id, topic, score,
    priority, propensity, decision_id, suppressed) and one per decision that served nothing, with why (suppressed)."""
    from training.commands.score import run_score

    if bundle is not None and model_dir is not None:
        raise DataError("give --bundle or --model-dir, not both")
    if bundle is not None and not (bundle / "metadata.json").is_file():
        raise DataError("not a model bundle (no metadata.json); bundles are the bundle-* folders of a model directory", path=str(bundle))
    settings = _settings(config)
    run_score(settings, data=data, model_dir=bundle or model_dir or settings.paths.home / "model", as_of=as_of, channel=channel,
              k=k, customers=customers, out=out, explore=explore, workers=workers)


@app.command()
def show(
    scores: Annotated[Path, typer.Option(help="A file written by nbm score.")],
    customers: Annotated[int, typer.Option(min=1, help="How many customers to show.")] = 8,
) -> None:
    """Print the best message per channel for a few customers of a scores file."""
    from training.commands.show import run_show

    run_show(scores, customers)


@app.command("export-events")
def export_events(
    out: Annotated[Path, typer.Option(help="Events file to write: .csv, .parquet or .jsonl, in the data contract.")],
    since: Annotated[Optional[str], typer.Option(help="Only events at or after this time, ISO-8601 (offsets converted to UTC).")] = None,
    home: Annotated[Optional[Path], typer.Option(help="The API's state directory holding events.db (default: paths.home).")] = None,
    config: ConfigOption = None,
) -> None:
    """Export the events stored by the API as a contract events file for the nightly training."""
    from training.commands.export_events import run_export_events

    run_export_events(_settings(config), out=out, since=since, home=home)


@app.command()
def serve(
    model_dir: Annotated[Optional[Path], typer.Option(help="Model directory (default: serving.model_dir or <home>/model).")] = None,
    model_uri: Annotated[Optional[str], typer.Option(help="Serve a registered version instead, e.g. models:/nbm-ranker@champion or models:/nbm-ranker/3: its bundle is downloaded from the MLflow run into <home>/served/.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI for --model-uri (default: MLFLOW_TRACKING_URI or sqlite:///<home>/mlflow.db).")] = None,
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (default: serving.host, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default: serving.port, 8000).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: serving.workers, 1).")] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the real-time decision API (HTTP, OpenAPI docs at /docs) until interrupted."""
    from serving.server import run_server

    if model_dir is not None and model_uri is not None:
        raise ConfigError("--model-dir and --model-uri exclude each other: serve a local model dir or a registered version")
    if tracking_uri is not None and model_uri is None:
        raise ConfigError("--tracking-uri is only used with --model-uri")
    settings = _settings(config)
    follower = None
    if model_uri is not None:
        from training.commands.serve import AliasFollower, alias_dir, fetch_served_model

        # An alias with a poll interval is followed: a newly aliased version is served without a restart.
        poll = settings.serving.reload_poll_seconds
        follow_dir = alias_dir(settings, model_uri) if poll else None
        served = fetch_served_model(settings, model_uri, tracking_uri=tracking_uri, model_dir=follow_dir)
        v = served.version
        _echo(f"{model_uri}: {v.name} version {v.version} (run {v.run_id}), bundle "
              f"{'downloaded to' if served.downloaded else 'already in'} {served.model_dir}"
              + (f"; the alias is re-read every {poll:g} s" if follow_dir else ""))
        model_dir = served.model_dir
        if follow_dir is not None:
            follower = AliasFollower(settings, model_uri, follow_dir, poll, tracking_uri=tracking_uri)
            follower.start()
    try:
        run_server(settings, config=config, model_dir=model_dir, host=host, port=port, workers=workers)
    finally:
        if follower is not None:
            follower.stop()


@app.command("export-decisions")
def export_decisions(
    out: Annotated[Path, typer.Option(help="File to write (.csv, .parquet or .jsonl): one row per candidate of each decision.")],
    since: Annotated[Optional[str], typer.Option(help="Only decisions made at or after this time, ISO-8601.")] = None,
    home: Annotated[Optional[Path], typer.Option(help="The API's state directory holding events.db (default: paths.home).")] = None,
    config: ConfigOption = None,
) -> None:
    """Export the API's decision log (candidates, scores, propensities, served ranks) for off-policy evaluation."""
    from training.commands.export_decisions import run_export_decisions

    run_export_decisions(_settings(config), out=out, since=since, home=home)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        code = app(args=argv, standalone_mode=False)
    except NbmError as err:
        _echo(f"error: {err}")
        return EXIT_INTERNAL if _is_infrastructure(err) else EXIT_BAD_INPUT
    except TyperException as exc:  # usage errors: unknown command, missing or invalid option
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _echo(f"error: {exc}")
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT) or EXIT_BAD_INPUT)
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit code 1
        _echo(f"internal error: {type(exc).__name__}: {exc} (please report it; rerun with NBM_DEBUG=1 for a traceback)")
        if _debug():
            raise
        return EXIT_INTERNAL
    return code if isinstance(code, int) else 0


def _is_infrastructure(err: NbmError) -> bool:
    # An unreachable tracking or event store is not the user's input: exit 1 so schedulers retry or alert.
    from engine.store.interface import StoreUnavailableError
    from training.tracking import TrackingUnavailableError

    return isinstance(err, (TrackingUnavailableError, StoreUnavailableError))


def _debug() -> bool:
    import os

    return os.environ.get("NBM_DEBUG", "") not in ("", "0")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
