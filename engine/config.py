"""The one typed settings object of nbm, loaded from ``nbm.toml`` and ``NBM_`` environment variables.

Precedence, highest first: environment (``NBM_VALIDATION__MAX_REJECT_SHARE=0.05``), the TOML file, defaults.
The tree is frozen and rejects unknown keys, so a typo in the file fails loudly at load time instead of
being silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from engine.contract.schema import JOURNEY_STAGES, OUTCOME_GRADES
from engine.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValidationSettings(_Section):
    # Above this share of rejected events the input is considered broken and the command fails.
    max_reject_share: float = Field(default=0.01, ge=0.0, le=1.0)
    # Events sent to the API may be stamped at most this far after the server's clock (clock skew);
    # later ones are refused as future_ts. Files are not checked: their history may end after today.
    max_future_seconds: float = Field(default=300.0, ge=0.0)


class SimulationSettings(_Section):
    customers: int = Field(default=2_000, ge=1)
    days: int = Field(default=60, ge=1)
    messages: int = Field(default=60, ge=5)
    seed: int = 7
    # The last simulated day ends at this instant (UTC); fixed so that the same seed gives the same files.
    end: AwareDatetime = datetime(2026, 6, 30, tzinfo=timezone.utc)


MAX_HALF_LIVES_PER_WINDOW = 20


class FeatureSettings(_Section):
    """Definitions of the customer features (docs/features.md)."""

    # Count windows in days; the longest one also bounds how much raw history serving keeps.
    windows_days: tuple[int, ...] = (7, 30, 90)
    # Half-life of the decayed topic affinity, in days.
    affinity_half_life_days: float = Field(default=14.0, gt=0)
    # Smoothed response rate = (responses + strength * prior) / (impressions + strength).
    prior_strength: float = Field(default=10.0, gt=0)
    prior_open_rate: float = Field(default=0.2, gt=0, lt=1)
    prior_click_rate: float = Field(default=0.03, gt=0, lt=1)
    prior_conversion_rate: float = Field(default=0.005, gt=0, lt=1)
    # Threads for the large sorted look-ups of history queries; features are identical for any value.
    num_threads: int = Field(default=2, ge=1)

    @field_validator("windows_days")
    @classmethod
    def _windows_are_positive_and_sorted(cls, windows: tuple[int, ...]) -> tuple[int, ...]:
        if not windows or any(w <= 0 for w in windows) or list(windows) != sorted(set(windows)):
            raise ValueError("windows_days must be positive, unique and ascending, e.g. [7, 30, 90]")
        return windows

    @model_validator(mode="after")
    def _decay_fits_its_fixed_point(self) -> FeatureSettings:
        # Decayed weights grow as 2^(age in the epoch / half-life) over an epoch of the longest window and
        # are summed in int64 fixed point at 2^32 (engine.features.history): 2^20 x 2^32 leaves 2^11 events
        # at the heaviest weight per customer x topic and window before a sum could overflow. Events 20
        # half-lives old weigh under a millionth anyway.
        half_lives = self.max_window_days / self.affinity_half_life_days
        if half_lives > MAX_HALF_LIVES_PER_WINDOW:
            raise ValueError(
                f"affinity_half_life_days = {self.affinity_half_life_days:g} is too short for the longest window of "
                f"{self.max_window_days} days ({half_lives:.1f} half-lives; at most {MAX_HALF_LIVES_PER_WINDOW}): "
                f"use at least {self.max_window_days / MAX_HALF_LIVES_PER_WINDOW:g} days")
        return self

    @property
    def max_window_days(self) -> int:
        return self.windows_days[-1]


class TrainingSettings(_Section):
    """How examples are labelled, split and grouped, and how the ranker is fitted."""

    # Outcomes count for an impression if they follow it within this many days (a message's own
    # `attribution_days` column wins). Impressions whose window reaches past the end of the data are
    # left out of training and evaluation: their outcomes are not all in the data yet.
    attribution_days: float = Field(default=7.0, gt=0)
    # graded: labels 0 none, 1 open, 2 click, 3 conversion, and `relevant_from` says what counts as a
    # success; open|click|conversion: label 1 if the impression earned at least that outcome, else 0, for
    # the model, every metric, the baselines and the off-policy reward.
    target: Literal["graded", "open", "click", "conversion"] = "graded"
    test_days: float = Field(default=14.0, gt=0)
    validation_days: float = Field(default=7.0, gt=0)
    # Impressions without a multi-message slate are grouped per customer x channel x this many days.
    group_window_days: float = Field(default=28.0, gt=0)
    objective: Literal["lambdarank", "binary"] = "binary"
    # Small trees: on the 20k-customer simulated world (make bench) 15 leaves of at least 100 rows gave the
    # best true gain; deeper trees fit noise in the responses, and larger leaves than 100 rows starve a
    # small data set (a 400-customer world then no longer beats popularity). Figures: docs/benchmarks.md.
    num_leaves: int = Field(default=15, ge=2)
    learning_rate: float = Field(default=0.05, gt=0)
    max_rounds: int = Field(default=400, ge=1)
    early_stopping_rounds: int = Field(default=30, ge=1)
    min_data_in_leaf: int = Field(default=100, ge=1)
    feature_fraction: float = Field(default=0.9, gt=0, le=1)
    # Each round grows its trees on this share of the rows (seeded); below 1 it cuts the cost of a round
    # but on the simulated world it cost normalised gain (0.644 -> 0.619 at 0.5), so it is off by default.
    bagging_fraction: float = Field(default=1.0, gt=0, le=1)
    # L2 penalty on leaf values (LightGBM's lambda_l2); one of the settings `nbm train --tune` searches.
    lambda_l2: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    # binary objective only: every positive and this share of the negatives (seeded), each kept negative
    # weighted 1 / rate, so probabilities stay calibrated while a boosting round costs a fraction. On the
    # 20k-customer simulated world: gain 0.666 at 1.0, 0.663 at 0.5, 0.652 at 0.25; fit time about halved.
    negative_sample_rate: float = Field(default=0.5, gt=0, le=1)
    seed: int = 17
    # Fixed so that the same data and config give the same model on any machine.
    num_threads: int = Field(default=2, ge=1)
    # What the promotion gate compares (training/gate.py, docs/training.md). auto: the off-policy value of
    # the served policy on the replayed test decisions, dr for the binary objective (its probabilities are
    # the reward model), snips for lambdarank; when the data logs no propensities, a ranking metric on the
    # test window: auc for binary, ndcg@3 for lambdarank. ips, snips and dr need logged propensities; dr
    # needs the binary objective.
    gate_metric: Literal["auto", "ips", "snips", "dr", "ndcg@1", "ndcg@3", "ndcg@5", "map", "auc"] = "auto"
    # Promote only if the candidate beats popularity: with an off-policy metric, the lower end of the
    # paired 95% interval of (candidate - popularity) must exceed this; with a ranking metric, the difference.
    min_gain_over_popularity: float = 0.0
    # The candidate may fall this share below the champion's value (relative) and still be promoted: two
    # equally good models differ by noise, and a nightly run should not be refused for it.
    gate_tolerance: float = Field(default=0.02, ge=0, le=1)
    # Logged test decisions replayed through the decision engine for off-policy and ground-truth evaluation.
    replay_decisions: int = Field(default=20_000, ge=100)
    # With target = "graded": an outcome at least this good is a success (binary objective, MAP, AUC, OPE
    # reward); absent: 2, a click. Another target sets it (a conversion is 3); a different value is refused.
    relevant_from: int | None = Field(default=None, ge=1, le=3)
    # After evaluation, fit the shipped model again on train + validation + test with the number of
    # rounds early stopping chose; the evaluated model (train split only) stays in the bundle for fair
    # comparisons with later models. false: ship the evaluated model.
    refit_on_all_data: bool = True
    # Without --tune: fit with the settings the last `nbm train --tune` chose (<model-dir>/tuned.json:
    # num_leaves, min_data_in_leaf, learning_rate, feature_fraction, lambda_l2) instead of those above,
    # if that file exists; the run says which it used.
    use_tuned: bool = False

    @model_validator(mode="after")
    def _target_and_threshold_agree(self) -> TrainingSettings:
        if self.target != "graded" and self.relevant_from not in (None, OUTCOME_GRADES[self.target]):
            raise ValueError(f"relevant_from = {self.relevant_from} contradicts target = {self.target!r} (a {self.target} "
                             f"is grade {OUTCOME_GRADES[self.target]}); set only one of them")
        return self

    @model_validator(mode="after")
    def _gate_metric_fits_the_objective(self) -> TrainingSettings:
        if self.gate_metric == "dr" and self.objective != "binary":
            raise ValueError(f'gate_metric = "dr" needs probabilities, which the {self.objective} objective does not give: '
                             'set gate_metric = "snips" or objective = "binary"')
        return self

    @property
    def success_grade(self) -> int:
        """The least outcome grade (1 open, 2 click, 3 conversion) that counts as a success."""
        if self.target != "graded":
            return OUTCOME_GRADES[self.target]
        return OUTCOME_GRADES["click"] if self.relevant_from is None else self.relevant_from

    @property
    def success_label(self) -> int:
        """The least training label that counts as a success: labels are grades for the graded target,
        else 0/1."""
        return self.success_grade if self.target == "graded" else 1

    @property
    def reward_outcome(self) -> str:
        """The outcome a success is: open, click or conversion (the off-policy reward's name)."""
        return {grade: name for name, grade in OUTCOME_GRADES.items()}[self.success_grade]


class PathSettings(_Section):
    # Everything nbm writes by default lives here (gitignored in the checkout).
    home: Path = Path(".nbm")


Cap = Annotated[int, Field(ge=0)]  # 0 blocks entirely; an absent cap (None) means no cap
Lever = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ChannelCaps(_Section):
    # An absent value falls back to the [policy.contact] default for every channel.
    daily_cap: Cap | None = None
    weekly_cap: Cap | None = None


class ContactSettings(_Section):
    """Contact policy (docs/policy.md). Caps are off by default: TOML cannot write "no cap" over a default."""

    channel_daily_cap: Cap | None = None  # per channel, impressions in the 24 h before as_of
    channel_weekly_cap: Cap | None = None  # per channel, in the 7 days before as_of
    channels: dict[str, ChannelCaps] = {}  # per-channel overrides of the two caps above
    global_daily_cap: Cap | None = None  # all channels together
    global_weekly_cap: Cap | None = None
    cooldown_days: float | None = Field(default=None, gt=0)  # since this message was last shown
    lifetime_max: int | None = Field(default=None, ge=1)  # times this message may ever be shown
    complaint_suppression_days: float = Field(default=30.0, ge=0)  # 0 turns suppression off
    # Topics silenced after a complaint; absent: every topic, []: none.
    promotional_topics: tuple[str, ...] | None = None
    # A message whose offer (messages.offer_id) was shown on ANOTHER channel this recently waits; 0 turns it off.
    offer_spacing_hours: float = Field(default=24.0, ge=0, allow_inf_nan=False)


class CoordinationSettings(_Section):
    allow_same_topic_across_channels: bool = False
    max_messages_per_customer: int | None = Field(default=None, ge=1)  # None: one per channel


class StageTargetingSettings(_Section):
    enabled: bool = False
    # Message stage -> customer stages it may reach. A stage not listed reaches its own stage and the
    # adjacent ones: a customer between two stages still hears messages of both.
    allowed: dict[str, tuple[str, ...]] = {}

    @field_validator("allowed")
    @classmethod
    def _stages_exist(cls, allowed: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted({s for k, v in allowed.items() for s in (k, *v)} - set(JOURNEY_STAGES))
        if unknown:
            raise ValueError(f"unknown journey stage(s) {unknown}; expected some of {list(JOURNEY_STAGES)}")
        return allowed


class MessageRule(_Section):
    """One eligibility rule for a message (by ``message_id``) or for every message of a ``topic``."""

    message_id: str | None = None
    topic: str | None = None
    # Customer attribute (a customers-table column) -> accepted values, compared as text.
    attribute_in: dict[str, tuple[str, ...]] = {}
    min_days_since_purchase: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_target_and_a_condition(self) -> MessageRule:
        if (self.message_id is None) == (self.topic is None):
            raise ValueError("a rule names exactly one of message_id or topic")
        if not self.attribute_in and self.min_days_since_purchase is None:
            raise ValueError("a rule needs attribute_in or min_days_since_purchase")
        empty = sorted(k for k, v in self.attribute_in.items() if not v)
        if empty:
            raise ValueError(f"attribute_in lists no accepted value for {empty}")
        return self


class PolicySettings(_Section):
    """Decision policy of the API (docs/policy.md); `nbm score` applies channel, validity and consent only."""

    exploration: Literal["none", "epsilon_greedy", "softmax"] = "none"
    # Share of slots explored: uniformly (epsilon_greedy) or by softmax(priority / temperature).
    exploration_rate: float = Field(default=0.1, ge=0, le=1)
    softmax_temperature: float = Field(default=0.1, gt=0)
    # priority = propensity^a * value^b * channel lever * topic lever (Pega-style arbitration)
    propensity_exponent: float = Field(default=1.0, gt=0)
    value_exponent: float = Field(default=0.0, ge=0)
    channel_levers: dict[str, Lever] = {}
    topic_levers: dict[str, Lever] = {}
    contact: ContactSettings = ContactSettings()
    coordination: CoordinationSettings = CoordinationSettings()
    stage_targeting: StageTargetingSettings = StageTargetingSettings()
    rules: tuple[MessageRule, ...] = ()


MIN_KEY_CHARS = 16


class ServingSettings(_Section):
    """The decision API (``nbm serve``). Keys also come from ``NBM_API_KEYS`` / ``NBM_ADMIN_KEYS``
    (comma-separated), which win over the file; they are secrets: never logged, echoed as ``**********``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    model_dir: Path | None = None  # absent: <paths.home>/model
    # Empty: /v1 is open (a warning is logged at startup). Each key: at least MIN_KEY_CHARS characters.
    api_keys: tuple[SecretStr, ...] = ()
    # Empty: /admin is refused (403); there is no default admin key.
    admin_keys: tuple[SecretStr, ...] = ()
    max_body_bytes: int = Field(default=1_048_576, ge=1024)  # larger request bodies get 413
    max_batch_size: int = Field(default=1_000, ge=1)  # decisions per batch request, events per POST /v1/events
    # Check the model dir's `current` symlink this often and load a new bundle; absent: only /admin/reload.
    # With `nbm serve --model-uri models:/<name>@<alias>`, the alias is re-read at this interval too.
    reload_poll_seconds: float | None = Field(default=None, gt=0)
    # Log lines show customer ids as a keyed hash (HMAC-SHA256 with log_customer_id_key): a plain hash of
    # an id could be reversed by hashing a list of known ids. The key is a secret, like the API keys.
    hash_customer_ids_in_logs: bool = False
    log_customer_id_key: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_decisions: bool = True  # append every decision to the decision log (events.db) for off-policy evaluation
    # Decisions older than this are deleted from the log (checked every minute); 0: keep them all. At full
    # load a day of decisions can take hundreds of GB (docs/operations.md, "Where state lives").
    decision_log_retention_days: float = Field(default=30.0, ge=0, le=36_500, allow_inf_nan=False)
    seed: int = 0  # of the decision engine's exploration
    # What computes the features of decisions, to the same values: "numba" (the definitions compiled when a
    # model loads; fast for a few customers at a time) or "numpy" (the interpreter training uses).
    feature_interpreter: Literal["numba", "numpy"] = "numba"
    store_busy_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _keys_are_long_enough(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for i, key in enumerate(keys):
            text = key.get_secret_value()
            if len(text) < MIN_KEY_CHARS or not text.isprintable() or any(c.isspace() or c == "," for c in text):
                # The message never shows the key itself.
                raise ValueError(
                    f"key {i + 1} is too short or has spaces, commas or control characters; use at least "
                    f"{MIN_KEY_CHARS} printable characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return keys

    @model_validator(mode="after")
    def _hashing_has_a_key(self) -> ServingSettings:
        key = self.log_customer_id_key
        if key is not None and len(key.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(f"log_customer_id_key must have at least {MIN_KEY_CHARS} characters")
        if self.hash_customer_ids_in_logs and key is None:
            raise ValueError("hash_customer_ids_in_logs needs a secret log_customer_id_key (at least "
                             f"{MIN_KEY_CHARS} characters; environment: NBM_SERVING__LOG_CUSTOMER_ID_KEY), e.g. "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return self


class Settings(BaseSettings):
    """Root of the configuration tree; build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="NBM_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    paths: PathSettings = PathSettings()
    validation: ValidationSettings = ValidationSettings()
    simulation: SimulationSettings = SimulationSettings()
    features: FeatureSettings = FeatureSettings()
    training: TrainingSettings = TrainingSettings()
    policy: PolicySettings = PolicySettings()
    serving: ServingSettings = ServingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML content arrives as init kwargs; the environment must win over it.
        return (env_settings, _HomeShortcut(settings_cls), init_settings)


HOME_ENV = "NBM_HOME"  # the conventional short form of NBM_PATHS__HOME (as MLFLOW_TRACKING_URI, AIRFLOW_HOME)


class _HomeShortcut(PydanticBaseSettingsSource):
    """``NBM_HOME`` as ``paths.home``. ``NBM_PATHS__HOME`` says the same; set both, they must agree."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # the whole tree comes from __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        short, long = os.environ.get(HOME_ENV), os.environ.get("NBM_PATHS__HOME")
        if not short:
            return {}
        if long and Path(long) != Path(short):
            raise ConfigError(f"{HOME_ENV}={short} and NBM_PATHS__HOME={long} name two homes: set one of them")
        return {"paths": {"home": short}}


def load_settings(path: Path | None = None, *, environ: bool = True) -> Settings:
    """Load settings from ``path`` (TOML) if given, then apply ``NBM_*`` environment overrides.

    Raises :class:`ConfigError` naming the file, the key and the reason for any invalid value.
    """
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        if environ:
            return Settings(**file_values)
        return _SettingsWithoutEnv(**file_values)
    except ValidationError as exc:
        where = str(path) if path is not None else "configuration"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None


class _SettingsWithoutEnv(Settings):
    """Settings that ignore the environment: for tests and for reproducing a logged configuration."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # type: ignore[override]
        return (init_settings,)
