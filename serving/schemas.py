"""Request and response bodies of the API (pydantic v2); these are what OpenAPI documents."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import pandas as pd
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

if TYPE_CHECKING:
    from engine.policy.online import Decision
    from serving.model_holder import LoadedModel

MAX_ID_CHARS = 128
MAX_K = 20


def printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must be printable text: no control characters, line breaks or tabs")
    return value


_EARLIEST, _LATEST = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


def in_timestamp_range(value: datetime) -> datetime:
    # Decisions compute in nanoseconds since the epoch: an instant outside that range would overflow (a 500).
    if not _EARLIEST <= pd.Timestamp(value) <= _LATEST:
        raise ValueError(f"must be between {_EARLIEST.isoformat()} and {_LATEST.isoformat()}")
    return value


AsOf = Annotated[AwareDatetime, AfterValidator(in_timestamp_range)]
# Trimmed like ids in data files; channels are lower-cased like the data contract does.
CustomerId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS),
                       AfterValidator(printable), Field(description="1-128 printable characters.", examples=["c000042"])]
Channel = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=MAX_ID_CHARS),
                    AfterValidator(printable), Field(description="A channel of the catalog.", examples=["email"])]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class DecisionRequest(_Request):
    customer_id: CustomerId
    channel: Channel
    k: int = Field(default=1, ge=1, le=MAX_K, description="How many messages (slots) to return.")
    as_of: AsOf | None = Field(
        default=None, description="Decision time, ISO-8601 with a zone (Z or +hh:mm); default: now (UTC).",
        examples=["2026-07-01T09:00:00Z"])
    explain: bool = Field(default=False, description="Add each served message's top feature contributions.")


class BatchDecisionRequest(_Request):
    requests: list[DecisionRequest] = Field(
        min_length=1, description="Up to [serving] max_batch_size (default 1,000) decisions; more is refused with 413.")


class Reason(BaseModel):
    feature: str
    label: str = Field(description="The feature in words.")
    contribution: float = Field(description="In raw score units; > 0 raised the score.")
    value: float | None = Field(description="The feature's value for this customer and message, as the model read it (null: unknown).")
    text: str = Field(description="The reason in a sentence, e.g. 'click rate on email over the last 90 days: 4.2% (raised the score)'.")


class Displaced(BaseModel):
    message_id: str = Field(description="The channel's best message, not served here.")
    reason: str = Field(description="topic_taken or offer_taken: a customer gets a topic (unless allowed) and an offer on one channel at a time.")
    by_channel: str = Field(description="The channel of this answer that serves its topic or offer.")
    by_message_id: str = Field(description="What that channel serves.")


CatalogValue = Union[bool, int, float, str, None]


class ServedMessage(BaseModel):
    message_id: str
    topic: str
    score: float = Field(description="The model's score.")
    priority: float = Field(description="What arbitration ranked the message by: its probability times the configured levers and value.")
    propensity: float = Field(description="Probability that the policy served this message in this slot (for off-policy evaluation).")
    reasons: list[Reason] = Field(description="Empty unless explain=true.")
    catalog: dict[str, CatalogValue] = Field(description="The message's row of the catalog the model was trained with: message_id, "
                                                         "channel, topic, journey_stage, value, valid_from, valid_to, offer_id and "
                                                         "any extra column (name, title, ...); null where the catalog has none.")


class DecisionResponse(BaseModel):
    decision_id: str = Field(description="Send it back with the impression and outcome events of these messages. "
                                         "A version-7 UUID in 32 hex digits: ids sort by the instant of the decision.")
    customer_id: str
    channel: str
    as_of: datetime
    model_version: str
    cold_start: bool = Field(description="The model knows nothing of this customer: features are defaults.")
    messages: list[ServedMessage] = Field(description="Best first; empty when everything was suppressed or ineligible.")
    suppressed: dict[str, int] = Field(description="Candidates removed, by policy rule (consent, channel_daily_cap, ...).")
    displaced: Displaced | None = Field(default=None, description="Next best messages only: this channel's best message "
                                                                   "lost to another channel of the answer (null: it did not).")

    @classmethod
    def of(cls, decision: Decision) -> DecisionResponse:
        return cls(
            decision_id=decision.decision_id, customer_id=decision.customer_id, channel=decision.channel,
            as_of=pd.Timestamp(decision.as_of).to_pydatetime(), model_version=decision.model_version,
            cold_start=decision.cold_start,
            messages=[ServedMessage(message_id=m.message_id, topic=m.topic, score=m.score, priority=m.priority, propensity=m.propensity,
                                    reasons=[Reason(feature=r.feature, label=r.label, contribution=r.contribution, value=r.value,
                                                    text=r.text) for r in m.reasons],
                                    catalog=dict(m.catalog))
                      for m in decision.messages],
            suppressed={str(rule): int(count) for rule, count in decision.suppressed.items()},
            displaced=None if decision.displaced is None else Displaced(**vars(decision.displaced)),
        )


class MessagesResponse(BaseModel):
    model_version: str
    messages: list[dict[str, CatalogValue]] = Field(description="The catalog the model serves, one row per message (as ServedMessage.catalog).")


class BatchDecisionResponse(BaseModel):
    decisions: list[DecisionResponse] = Field(description="In request order.")


class CustomerDecisionsResponse(BaseModel):
    customer_id: str
    model_version: str
    decisions: list[DecisionResponse] = Field(description="One per channel of the catalog.")


class EventsRequest(_Request):
    events: list[Any] = Field(
        min_length=1,
        description=("Events in the data contract (docs/data-contract.md): ts (with a zone), customer_id, event_type, "
                     "event_id (required here), and channel, message_id, value, topic, decision_id, propensity as the "
                     "event type needs. The batch is stored whole or not at all."),
        examples=[[{"event_id": "e-1", "ts": "2026-07-01T09:00:00Z", "customer_id": "c000042", "event_type": "unsubscribe",
                    "channel": "sms"}]])


class EventsResponse(BaseModel):
    stored: int = Field(description="Events new to the store.")
    duplicates: int = Field(description="Identical resends: events whose event_id was already stored (or used earlier in the batch) "
                                        "with the same content; acknowledged, not stored again.")
    late: int = Field(description="Of the stored events, those the serving model cannot use until the next training: stamped "
                                  "before its feature cutoff (decisions read live events from the cutoff on). They are kept "
                                  "for the nightly export. Unsubscribes and complaints never count: they apply whatever their time.")


class ModelInfo(BaseModel):
    model_version: str
    model_name: str | None
    run_id: str | None
    trained_at: str | None
    data_start: str | None
    data_end: str | None
    feature_cutoff: datetime = Field(description="Requests must have as_of at or after this instant (rounded up to the microsecond).")
    objective: str | None
    promoted: bool | None
    gate: str | None = Field(description="Why the quality gate promoted (or refused) this model.")
    metrics: dict[str, float | None] = Field(description="Headline test metrics from training (null: not computable).")
    bundle: str
    predictor: str = Field(description="What computes the scores: 'lleaves' (the model compiled to machine code) or 'lightgbm' (its fallback).")
    features: str = Field(description="What computes the features of decisions, to the same values: 'numba' (the feature definitions "
                                      "compiled) or 'numpy' ([serving] feature_interpreter).")
    loaded_at: datetime

    @classmethod
    def of(cls, loaded: LoadedModel) -> ModelInfo:
        meta = loaded.bundle.metadata

        def text(key: str) -> str | None:
            return None if meta.get(key) is None else str(meta[key])

        metrics = {str(k): (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
                   for k, v in (meta.get("metrics") or {}).items()}
        return cls(
            model_version=loaded.version, model_name=text("model_name"), run_id=text("run_id"),
            trained_at=text("trained_at"), data_start=text("data_start"), data_end=text("data_end"),
            feature_cutoff=pd.Timestamp(loaded.bundle.state.cutoff_ns, tz="UTC").ceil("us").to_pydatetime(),
            objective=text("objective"), promoted=meta.get("promoted"), gate=text("gate"), metrics=metrics,
            bundle=loaded.bundle.path.name, predictor=loaded.bundle.predictor.kind, features=loaded.engine.interpreter,
            loaded_at=loaded.loaded_at.to_pydatetime(),
        )


class ReloadRequest(_Request):
    model_dir: str | None = Field(default=None, description="Another model directory (or bundle) to serve from now on; default: the current one.")


class ReloadResponse(BaseModel):
    model_version: str
    previous_version: str | None
    bundle: str
    predictor: str = Field(description="What computes the scores: 'lleaves' (the model compiled to machine code) or 'lightgbm' (its fallback).")
    features: str = Field(description="What computes the features of decisions, to the same values: 'numba' (the feature definitions "
                                      "compiled) or 'numpy' ([serving] feature_interpreter).")
    loaded_at: datetime


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    model_version: str | None
    store: str = Field(description="ok, or why the event store is unavailable.")
    last_reload_error: str | None = Field(description="Why the last model load failed (the previous model keeps serving).")
    reasons: list[str] = Field(description="Why the server is not ready; empty when ready.")


class ErrorMessage(BaseModel):
    detail: str


class RequestProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the field names and list positions.")
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """The request does not match its schema (FastAPI's shape, without echoing the input)."""

    detail: list[RequestProblem]


class EventProblem(BaseModel):
    index: int = Field(description="Position of the event in the batch, from 0.")
    column: str | None
    reason: str = Field(description="A reason code of docs/data-contract.md.")
    message: str


class InvalidEvents(BaseModel):
    detail: list[EventProblem]


class EventIdConflictOut(EventProblem):
    event_id: str = Field(description="The event_id reused.")
    differs: list[str] = Field(description="The columns in which this event differs from the earlier one with its event_id.")


class ConflictingEvents(BaseModel):
    detail: list[EventIdConflictOut] = Field(description="One entry per event that reuses an event_id with other content "
                                                         "(reason conflicting_event_id, column event_id).")
