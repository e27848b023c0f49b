"""Benchmark nbm on a real-data-shaped world against a practitioner's plain LightGBM classifier.

    .venv/bin/python bench/real_data.py [--customers 12000] [--seed 21] [--keep DIR]

The world has the shape of an offer data set (a few offers sent at random at a handful of moments): ten
messages on email, web and app over four topics; on each send day every customer gets exactly one message
drawn uniformly at random (propensity 1/10); each message has its own attribution window of 3 to 10 days
(``messages.attribution_days``) and its conversions fall anywhere inside it; the data stop a few days
after the last send, inside the last windows (``SimulationParams.send_days``). Response rates are those of
an offer data set (most offers viewed, many completed), not of a newsletter.

The decision judged is the LAST send: for every customer, which message to send at the instant the log
shows their last impression. Both models learn from exactly what existed before that send day: the world
cut at its midnight (the earlier sends, their outcomes up to then, organic events). So the test send is
held out of both whatever ``nbm train`` does with its own split (its shipped model may be refit on all
the data it is given), the bundle's feature state ends before the send (the decision engine refuses
earlier instants), and the cut data end inside the windows of the send before, as a nightly job's do.

- nbm: ``nbm train`` (a child process, as at night) on the cut data with ``nbm.toml``:
  ``[training] target = "conversion"`` (the offer's "completed"), ``test_days = 10`` and
  ``validation_days = 5``: the cut data end 5 days after the fifth send, so the test window holds the
  fourth and fifth sends (the fourth's windows have all closed: a test window left with only the short
  windows of the fifth would be tiny), validation the third, training the first two. Then the bundle it
  writes (promoted or not) is served by the API's decision engine (``DecisionEngine.decide_all_channels``,
  the next-best-messages route) with ``[policy.coordination] max_messages_per_customer = 1``: one message
  across the channels, as the campaign sends. Exploration is off (the default).
- the practitioner: ``lightgbm.LGBMClassifier`` with its default parameters (seeded), fit on every logged
  impression before the test send; label: a conversion linked to the impression (decision_id) within the
  message's window and before the cut (windows still open at the cut count as no conversion, as a plain
  script counts them); it sends each customer the message with the highest predicted probability. Two
  feature sets, each a practitioner of its own:
  "attributes": the customer's (segment, age band, region, days since signup) and the message's (id,
  channel, topic, journey stage, offer type, value, attribution days), what a notebook on the offer data
  set uses (the baseline of the external comparison);
  "nbm features": nbm's own feature matrix of the same rows (history, affinities, exposure, ...), built
  by nbm's feature code over the cut data: any gap to it is nbm's pipeline (label, censoring, split,
  refit, hyperparameters), not its features.

Each choice is valued by the simulator's ground truth: the true P(conversion) of that message for that
customer at that instant (history state from the whole world's log, strictly before it). Printed: the mean
over customers for nbm, the practitioner, a uniformly random message and the oracle, each with a 95%
bootstrap interval, and the paired difference nbm - practitioner with its 95% paired bootstrap interval
(resampling customers, seeded), against each practitioner. Goal: nbm not below either practitioner;
FAIL if the upper end of a difference's interval is below 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.config import Settings, load_settings  # noqa: E402
from engine.contract.load import Dataset, load_dataset  # noqa: E402
from engine.contract.write import write_table  # noqa: E402
from engine.features.build import CatalogTable, ProfileTable, build_features  # noqa: E402
from engine.features.spec import FeatureSpec  # noqa: E402
from engine.model.examples import categorical_features, history_for  # noqa: E402
from engine.model.bundle import load_bundle  # noqa: E402
from engine.policy.online import DecisionEngine  # noqa: E402
from engine.simulate import SimulatedWorld, SimulationParams, simulate  # noqa: E402
from engine.simulate.params import DEFAULT_CHANNEL_PARAMS  # noqa: E402

NBM = str(Path(sys.executable).with_name("nbm"))
CHANNELS = ("email", "web", "app")
TOPICS = ("travel", "fashion", "food", "home")
SEND_DAYS = (0, 5, 10, 15, 20, 25)
DAYS = 29  # the data end 4 days after the last send: inside most of its windows
MESSAGES = 10
# P(open), P(click | open), P(conversion | click) of an average customer: offers mostly viewed, often completed.
RATES = {"email": (0.6, 0.5, 0.5), "web": (0.4, 0.5, 0.55), "app": (0.7, 0.45, 0.5)}
CONFIG = """\
[training]
target = "conversion"
test_days = 10.0
validation_days = 5.0

[policy.coordination]
max_messages_per_customer = 1
"""
BOOTSTRAP = 2_000
TIMEOUT_SECONDS = 15 * 60
CUSTOMER_FEATURES = ("segment", "age_band", "region")
MESSAGE_FEATURES = ("message_id", "channel", "topic", "journey_stage", "offer_type")
NUMERIC_MESSAGE_FEATURES = ("value", "attribution_days")


def world_params(customers: int, seed: int) -> SimulationParams:
    """The real-data-shaped world. No opt-outs or complaints (the offer data set has none), so every
    customer gets a message at every send and every policy may send every message. As in an offer data
    set, few site visits (its history is mostly the offers' own responses and transactions) and topic
    interests driven more by who the customer is (segment) than by individual taste: the attributes a
    practitioner reads then explain much of the response, as they did on the external data."""
    channel_params = {c: DEFAULT_CHANNEL_PARAMS[c].model_copy(update={
        "open_rate": o, "click_rate": k, "conversion_rate": v, "unsubscribe_rate": 0.0}) for c, (o, k, v) in RATES.items()}
    return SimulationParams(customers=customers, days=DAYS, messages=MESSAGES, seed=seed, channels=CHANNELS,
                            channel_params=channel_params, topics=TOPICS, send_days=SEND_DAYS,
                            attribution_days_range=(3, 10), complaint_base_rate=0.0, complaint_per_impression=0.0,
                            visit_rate=0.02, interest_segment_scale=1.0, interest_noise_scale=0.5)


@dataclass(frozen=True)
class LastSend:
    """The held-out send: each customer's instant and the messages anyone may choose."""

    customer_id: np.ndarray  # (n,) str
    ts: pd.Series  # (n,) UTC instants of the customers' logged impressions
    message_ids: np.ndarray  # (m,) the catalog


def cut_before(world: SimulatedWorld, cut: pd.Timestamp) -> pd.DataFrame:
    """The world's events strictly before ``cut``: what existed at the test send's midnight."""
    return world.events.loc[(world.events["ts"] < cut).to_numpy()].reset_index(drop=True)


def last_send(world: SimulatedWorld, cut: pd.Timestamp) -> LastSend:
    events = world.events
    sent = events.loc[((events["event_type"] == "impression") & (events["ts"] >= cut)).to_numpy()]
    sent = sent.sort_values("customer_id", kind="stable")
    return LastSend(sent["customer_id"].astype(str).to_numpy(), sent["ts"].reset_index(drop=True),
                    world.messages["message_id"].astype(str).to_numpy())


def candidate_rows(send: LastSend) -> pd.DataFrame:
    """customer_id, message_id, ts: every message for every customer at their instant (customer-major)."""
    n, m = len(send.customer_id), len(send.message_ids)
    return pd.DataFrame({"customer_id": np.repeat(send.customer_id, m), "message_id": np.tile(send.message_ids, n),
                         "ts": send.ts.iloc[np.repeat(np.arange(n), m)].reset_index(drop=True)})


def true_conversion(world: SimulatedWorld, send: LastSend) -> np.ndarray:
    """(customers, messages) true P(conversion) of each message for each customer at their instant."""
    probabilities = world.truth.response_probabilities(candidate_rows(send), world.events)
    return probabilities["p_conversion"].to_numpy().reshape(len(send.customer_id), len(send.message_ids))


# --- nbm -------------------------------------------------------------------------------------------------

def train_nbm(data_dir: Path, scratch: Path) -> tuple[Path, Settings, float]:
    """``nbm train`` in a child process on the cut data; the bundle it wrote, the settings, its seconds."""
    config = scratch / "nbm.toml"
    config.write_text(CONFIG)
    model_dir = scratch / "model"
    command = [NBM, "train", "--data", str(data_dir), "--model-dir", str(model_dir),
               "--tracking-uri", f"sqlite:///{scratch / 'mlflow.db'}", "--config", str(config)]
    started = time.perf_counter()
    child = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                           timeout=TIMEOUT_SECONDS, check=False)
    seconds = time.perf_counter() - started
    for line in child.stdout.splitlines():
        if child.returncode != 0 or line.startswith("[") or "promot" in line:
            print(f"  nbm train | {line}", flush=True)
    if child.returncode != 0:
        raise RuntimeError(f"nbm train exited {child.returncode}")
    # The bundle is written even when the gate refuses it (then it is not "current"): open it by name.
    bundle = max(model_dir.glob("bundle-*"))
    return bundle, load_settings(config, environ=False), seconds


def nbm_choices(bundle_path: Path, settings: Settings, send: LastSend) -> np.ndarray:
    """The message the served policy sends each customer (index into the catalog; -1: none served)."""
    engine = DecisionEngine(load_bundle(bundle_path), settings, seed=0)
    column = {message_id: i for i, message_id in enumerate(send.message_ids)}
    chosen = np.full(len(send.customer_id), -1, dtype=np.int64)
    for i, (customer_id, as_of) in enumerate(zip(send.customer_id, send.ts)):
        decisions = engine.decide_all_channels(customer_id, as_of=as_of, live_events=None)
        served = [d.messages[0].message_id for d in decisions if d.messages]
        if served:
            chosen[i] = column[served[0]]
    return chosen


# --- the practitioner ------------------------------------------------------------------------------------

def practitioner_rows(events: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """Every logged impression with its label: converted within the message's window (as the data show)."""
    impressions = events.loc[(events["event_type"] == "impression").to_numpy(), ["ts", "customer_id", "message_id", "decision_id"]]
    conversions = events.loc[(events["event_type"] == "conversion").to_numpy(), ["ts", "decision_id"]]
    rows = impressions.astype({"customer_id": str, "message_id": str, "decision_id": str}).reset_index(drop=True)
    first = conversions.astype({"decision_id": str}).groupby("decision_id")["ts"].min()
    window = pd.to_timedelta(messages.set_index("message_id")["attribution_days"].reindex(rows["message_id"]).to_numpy(), unit="D")
    lag = rows["decision_id"].map(first) - rows["ts"]
    rows["converted"] = (lag.notna() & (lag >= pd.Timedelta(0)) & (lag <= window)).to_numpy().astype(np.int8)
    return rows


def practitioner_features(rows: pd.DataFrame, customers: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """Customer and message attributes of (customer_id, message_id, ts) rows; categories fixed by the tables."""
    who = customers.assign(customer_id=customers["customer_id"].astype(str)).set_index("customer_id")
    what = messages.assign(message_id=messages["message_id"].astype(str)).set_index("message_id")
    out = pd.DataFrame(index=rows.index)
    for name in CUSTOMER_FEATURES:
        out[name] = pd.Categorical(who[name].astype(str).reindex(rows["customer_id"]).to_numpy(),
                                   categories=sorted(who[name].astype(str).unique()))
    signup = who["signup_date"].reindex(rows["customer_id"]).reset_index(drop=True)
    out["tenure_days"] = ((rows["ts"].reset_index(drop=True) - signup) / pd.Timedelta(days=1)).to_numpy()
    for name in MESSAGE_FEATURES:
        values = what.index.to_series() if name == "message_id" else what[name].astype(str)
        out[f"msg_{name}"] = pd.Categorical(values.reindex(rows["message_id"]).to_numpy(), categories=sorted(values.unique()))
    for name in NUMERIC_MESSAGE_FEATURES:
        out[f"msg_{name}"] = what[name].astype(float).reindex(rows["message_id"]).to_numpy()
    return out


@dataclass(frozen=True, eq=False)
class PractitionerData:
    """What both practitioners read: the cut data as nbm's loader gives them, labelled rows, candidates."""

    dataset: Dataset
    rows: pd.DataFrame  # every logged impression before the test send, with ``converted``
    candidates: pd.DataFrame  # (customer_id, message_id, ts): every message for every customer of the send


def practitioner_data(data_dir: Path, settings: Settings, send: LastSend) -> PractitionerData:
    dataset = load_dataset(data_dir, settings.validation)
    return PractitionerData(dataset, practitioner_rows(dataset.events, dataset.messages), candidate_rows(send))


def attribute_matrices(data: PractitionerData) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Training and candidate features from the customer and message attributes (pandas categories)."""
    customers, messages = data.dataset.customers, data.dataset.messages
    return (practitioner_features(data.rows, customers, messages),
            practitioner_features(data.candidates, customers, messages), "auto")  # "auto": the pandas categories


def nbm_matrices(data: PractitionerData, settings: Settings) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Training and candidate features from nbm's own feature code over the cut data's history."""
    dataset = data.dataset
    spec = FeatureSpec.fit(dataset.messages, dataset.customers, settings.features)
    history = history_for(dataset.events, spec)
    catalog, profiles = CatalogTable.from_messages(dataset.messages, spec), ProfileTable.from_customers(dataset.customers)

    def matrix(rows: pd.DataFrame):
        requests = pd.DataFrame({"customer_id": rows["customer_id"], "as_of": rows["ts"], "message_id": rows["message_id"]})
        return build_features(requests, history, catalog, profiles, spec)

    train, candidates = matrix(data.rows), matrix(data.candidates)
    categorical = [train.names.index(name) for name in categorical_features(spec, train.names)]
    return train.values, candidates.values, categorical


def practitioner_choices(x: pd.DataFrame | np.ndarray, candidates: pd.DataFrame | np.ndarray, categorical: str | list[int],
                         label: pd.Series, n: int, seed: int) -> np.ndarray:
    """A default ``LGBMClassifier`` (seeded) fit on the rows; each customer's highest-probability message."""
    import lightgbm as lgb

    model = lgb.LGBMClassifier(random_state=seed, n_jobs=2, verbose=-1)
    model.fit(x, label, categorical_feature=categorical)
    return model.predict_proba(candidates)[:, 1].reshape(n, -1).argmax(axis=1)


PRACTITIONERS = {"practitioner (attributes)": lambda data, settings: attribute_matrices(data),
                 "practitioner (nbm features)": nbm_matrices}


# --- intervals and the report ----------------------------------------------------------------------------

def bootstrap_means(values: np.ndarray, rng: np.random.Generator, draws: int = BOOTSTRAP, chunk: int = 200) -> np.ndarray:
    """Means of ``draws`` resamples (with replacement) of the rows of ``values`` (n,) or (n, k): the same
    resampled customers for every column, so that differences of columns are paired."""
    values = values.reshape(len(values), -1)
    means = []
    for start in range(0, draws, chunk):
        at = rng.integers(0, len(values), size=(min(chunk, draws - start), len(values)))
        means.append(values[at].mean(axis=1))
    return np.concatenate(means)


def interval(draws: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(draws, [0.025, 0.975])
    return float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--keep", type=Path, default=None, help="keep the cut data and the model here (default: a temp dir)")
    args = parser.parse_args()
    started = time.perf_counter()

    params = world_params(args.customers, args.seed)
    world = simulate(params)
    cut = pd.Timestamp(params.end) - pd.Timedelta(days=params.days - SEND_DAYS[-1])  # the last send day's midnight
    send = last_send(world, cut)
    windows = world.messages["attribution_days"]
    print(f"real data: {params.customers:,} customers, {MESSAGES} messages on {'/'.join(CHANNELS)} over {len(TOPICS)} topics "
          f"(windows {windows.min():.0f}-{windows.max():.0f} days), a random message to everyone on days "
          f"{', '.join(map(str, SEND_DAYS))}; the data end {DAYS - SEND_DAYS[-1]} days after the last send", flush=True)

    with tempfile.TemporaryDirectory(prefix="nbm-bench-real-") as temporary:
        scratch = args.keep or Path(temporary)
        data_dir = scratch / "data"
        for name, frame in (("messages", world.messages), ("customers", world.customers), ("events", cut_before(world, cut))):
            write_table(frame, data_dir, name)
        try:
            bundle, settings, train_seconds = train_nbm(data_dir, scratch)
            chosen = {"nbm": nbm_choices(bundle, settings, send)}
            metadata = load_bundle(bundle).metadata
            data = practitioner_data(data_dir, settings, send)
            label = data.rows["converted"]
            for name, make in PRACTITIONERS.items():
                chosen[name] = practitioner_choices(*make(data, settings), label, len(send.customer_id), args.seed)
        except Exception as exc:  # reported, and the exit code says so
            print(f"real data: FAILED: {type(exc).__name__}: {exc}")
            return 1
    print(f"real data: trained on the {len(SEND_DAYS) - 1} sends before the last ({len(data.rows):,} impressions, "
          f"{label.mean():.3f} converted as the cut data show); nbm train {train_seconds:.0f} s, bundle best iteration "
          f"{metadata.get('best_iteration')}, gate: {metadata.get('gate')}")
    return report(chosen, true_conversion(world, send), args.seed, started)


def report(chosen: dict[str, np.ndarray], truth: np.ndarray, seed: int, started: float) -> int:
    """Print every policy's true value with its interval, nbm's paired differences and the verdict."""
    n = len(truth)
    everyone = np.arange(n)
    unserved = int((chosen["nbm"] < 0).sum())
    columns = {name: np.where(c >= 0, truth[everyone, np.maximum(c, 0)], 0.0) for name, c in chosen.items()}  # none sent: 0
    columns.update({"random": truth.mean(axis=1), "oracle": truth.max(axis=1)})
    names = list(columns)
    values = np.column_stack([columns[name] for name in names])
    draws = bootstrap_means(values, np.random.default_rng(seed))
    mean = values.mean(axis=0)
    random, oracle = mean[names.index("random")], mean[names.index("oracle")]
    print(f"real data: the last send, {n:,} customers; true P(conversion) of the message each policy sends, mean "
          "[95% bootstrap interval]:")
    for i, name in enumerate(names):
        low, high = interval(draws[:, i])
        gain = f", normalised gain {(mean[i] - random) / (oracle - random):.2f}" if name in chosen else ""
        print(f"real data:   {name:<28} {mean[i]:.4f} [{low:.4f}, {high:.4f}]{gain}")
    if unserved:
        print(f"real data:   nbm served no message to {unserved:,} customers (valued 0)")
    missed = 0
    for name in PRACTITIONERS:
        at = names.index(name)
        low, high = interval(draws[:, 0] - draws[:, at])
        met = high >= 0
        missed += not met
        print(f"real data: nbm - {name} {mean[0] - mean[at]:+.4f} [{low:+.4f}, {high:+.4f}] (goal: not below, "
              f"upper end >= 0{'' if met else ': MISSED'}); the same message for {(chosen['nbm'] == chosen[name]).mean():.0%}")
    print(f"real data: {'FAIL' if missed else 'PASS'} ({time.perf_counter() - started:.0f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
