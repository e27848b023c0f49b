"""Every knob of the world simulator, with its meaning and a realistic default.

Rates are per customer per day unless said otherwise. Response rates are the *base* rates of an average
customer (centred interest, average responsiveness, no fatigue); the latent factors in ``response.py`` move
each impression's probability around them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.contract.schema import JOURNEY_STAGES

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "web", "app")
TOPICS: tuple[str, ...] = ("travel", "fashion", "electronics", "home", "beauty", "sports", "finance", "food")
SEGMENTS: tuple[str, ...] = ("bargain_hunter", "mainstream", "premium", "new_family")
# Ordered from youngest to oldest: channel responsiveness is a function of this order.
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")

MIN_TOPICS = 8
MIN_DAILY_MESSAGES = 40  # the daily logging policy's catalog; a send-moment world may have a handful


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelParams(_Frozen):
    """Logging-policy contact rate and ground-truth response of one channel."""

    contact_rate: float = Field(ge=0, le=1, description="P(the logging policy contacts a subscribed customer on a day)")
    open_rate: float = Field(gt=0, lt=1, description="base P(open | impression); for sms/web/app: read / viewed")
    click_rate: float = Field(gt=0, lt=1, description="base P(click | open)")
    conversion_rate: float = Field(gt=0, lt=1, description="base P(conversion | click)")
    unsubscribe_rate: float = Field(ge=0, le=1, description="P(unsubscribe from this channel | impression), unfatigued")
    youth_affinity: float = Field(description="logit lift of responsiveness for the youngest vs the average age band")
    open_delay_minutes: float = Field(gt=0, description="median delay from impression to open")


DEFAULT_CHANNEL_PARAMS: dict[str, ChannelParams] = {
    # With the default latent spread these give, on the logged data: email ~18% open, ~11% click given
    # open; sms ~89% read, ~4% click-through; push/web/app click-through of 2-4%.
    "email": ChannelParams(contact_rate=0.12, open_rate=0.18, click_rate=0.05, conversion_rate=0.03,
                           unsubscribe_rate=0.002, youth_affinity=-0.4, open_delay_minutes=90.0),
    "sms": ChannelParams(contact_rate=0.02, open_rate=0.90, click_rate=0.02, conversion_rate=0.04,
                         unsubscribe_rate=0.004, youth_affinity=-0.2, open_delay_minutes=5.0),
    "push": ChannelParams(contact_rate=0.08, open_rate=0.07, click_rate=0.25, conversion_rate=0.03,
                          unsubscribe_rate=0.003, youth_affinity=0.4, open_delay_minutes=10.0),
    "web": ChannelParams(contact_rate=0.07, open_rate=0.35, click_rate=0.025, conversion_rate=0.03,
                         unsubscribe_rate=0.0005, youth_affinity=0.1, open_delay_minutes=1.0),
    "app": ChannelParams(contact_rate=0.05, open_rate=0.45, click_rate=0.03, conversion_rate=0.04,
                         unsubscribe_rate=0.001, youth_affinity=0.5, open_delay_minutes=1.0),
}


class SimulationParams(_Frozen):
    """The whole simulated world: size, seed, vocabularies, behaviour rates and the response model."""

    # --- size, time and randomness
    customers: int = Field(20_000, ge=1, description="number of customers")
    days: int = Field(90, ge=1, description="number of simulated days, ending at `end`")
    messages: int = Field(120, ge=1, description=f"catalog size; daily worlds: at least {MIN_DAILY_MESSAGES} and "
                                                 "channels x topics; send-moment worlds: at least channels and topics")
    seed: int = Field(0, ge=0, description="root seed; same params and seed give byte-identical output")
    end: datetime = Field(datetime(2026, 6, 30, tzinfo=timezone.utc),
                          description="end of the last simulated day (UTC midnight, exclusive)")

    # --- vocabularies
    channels: tuple[str, ...] = CHANNELS
    topics: tuple[str, ...] = TOPICS
    segments: tuple[str, ...] = SEGMENTS
    age_bands: tuple[str, ...] = AGE_BANDS
    regions: tuple[str, ...] = REGIONS
    channel_params: dict[str, ChannelParams] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_PARAMS))

    # --- customers' latent traits
    interest_segment_scale: float = Field(0.8, ge=0, description="sd of the segment effect on topic-interest logits")
    interest_age_scale: float = Field(0.5, ge=0, description="sd of the age-band effect on topic-interest logits")
    interest_noise_scale: float = Field(1.0, ge=0, description="sd of the individual part of topic-interest logits")
    responsiveness_noise_scale: float = Field(0.5, ge=0, description="sd of individual channel responsiveness (logit)")
    activity_sigma: float = Field(0.6, ge=0, description="log-sd of the individual activity multiplier (mean 1)")
    satisfaction_mean: float = Field(7.8, ge=0, le=10, description="mean survey score of an unfatigued customer")
    satisfaction_sd: float = Field(1.0, ge=0, description="sd of customers' baseline satisfaction")
    signup_history_days: int = Field(3 * 365, ge=1, description="signups are spread over this many days before start")

    # --- journey stages (awareness, consideration, purchase, loyalty); stages only advance
    stage_initial_share: tuple[float, float, float, float] = (0.40, 0.30, 0.15, 0.15)
    stage_mean_days: tuple[float, float, float] = Field(
        (60.0, 45.0, 30.0), description="mean days spent in awareness, consideration, purchase before moving on")
    stage_visit_multiplier: tuple[float, float, float, float] = (0.7, 1.6, 1.2, 0.9)
    stage_purchase_multiplier: tuple[float, float, float, float] = (0.2, 0.6, 2.5, 1.6)
    loyalty_mean_days_before_start: float = Field(
        180.0, gt=0, description="mean days a customer loyal at the start has been loyal (dates past milestones)")
    stage_milestones: bool = Field(
        True, description="entering a stage leaves its marking event: a visit (consideration), a purchase "
                          "(purchase: the first of the buying phase; loyalty: the repeat purchase)")

    # --- organic behaviour (population averages per customer-day)
    visit_rate: float = Field(0.12, ge=0, description="organic visits per customer-day (population mean)")
    app_visit_share: float = Field(0.4, ge=0, le=1, description="share of visits through the app (rest: web)")
    purchase_rate: float = Field(0.012, ge=0, description="organic purchases per customer-day (population mean)")
    purchase_amount_median: float = Field(45.0, gt=0, description="median purchase amount")
    purchase_amount_sigma: float = Field(0.7, ge=0, description="log-sd of purchase amounts")
    survey_rate: float = Field(0.004, ge=0, le=1, description="P(a customer answers a survey on a day)")
    support_rate: float = Field(0.003, ge=0, le=1, description="P(a customer contacts support on a day)")
    complaint_base_rate: float = Field(0.0005, ge=0, le=1, description="P(a complaint not about a message) per day")
    complaint_per_impression: float = Field(0.0008, ge=0, le=1, description="P(complaint | impression), unfatigued")

    # --- ground-truth response model (logit contributions)
    interest_weight: float = Field(0.6, ge=0, description="logit per unit of centred topic interest (click)")
    stage_match_lift: float = Field(0.6, ge=0, description="logit lift when message stage equals true stage")
    conversion_stage_lift: tuple[float, float, float, float] = Field(
        (-0.8, 0.0, 0.8, 0.4), description="logit lift of P(conversion | click) by the customer's true stage")
    fatigue_window_days: int = Field(
        7, ge=1, description="fatigue counts same-topic impressions since midnight this many days back")
    fatigue_strength: float = Field(0.25, ge=0, description="logit penalty per same-topic exposure in the window")
    repetition_penalty: float = Field(0.5, ge=0, description="logit penalty per earlier impression of the same message")
    unhappy_survey_threshold: float = Field(6.0, ge=0, le=10, description="a last survey score <= this is unhappy")
    unhappy_survey_effect: float = Field(0.8, ge=0, description="logit penalty when the last survey is unhappy")
    unsubscribe_fatigue: float = Field(0.3, ge=0, description="relative rise of unsubscribe/complaint per exposure")
    survey_fatigue_weight: float = Field(0.4, ge=0, description="survey points lost per impression above 3 in 7 days")
    survey_complaint_penalty: float = Field(3.0, ge=0, description="survey points lost after a complaint (30 days)")

    # --- logging policy (what produced the logged impressions)
    exploration_temperature: float = Field(1.0, gt=0, description="softmax temperature over the noisy scores")
    logging_noise: float = Field(0.5, ge=0, description="sd of the noise in the policy's segment x message scores")
    logging_value_weight: float = Field(0.3, ge=0, description="policy score per log(1 + message value)")

    # --- send moments: the shape of a campaign data set (a few offers sent at random at a few moments)
    send_days: tuple[int, ...] = Field(
        (), description="days (0 = the first simulated day) on which every customer gets exactly one message, "
                        "drawn uniformly among the messages valid then on a channel they are subscribed to "
                        "(propensity 1 / eligible), and no other day; empty: the daily logging policy above")
    attribution_days_range: tuple[int, int] = Field(
        (3, 10), description="send-moment worlds: each message's attribution window in whole days, drawn "
                             "uniformly in [low, high] and written to messages.attribution_days; a conversion "
                             "falls uniformly inside its impression's window, and outcomes after `end` are "
                             "not in the data")

    @field_validator("end")
    @classmethod
    def _end_is_utc_midnight(cls, end: datetime) -> datetime:
        if end.tzinfo is None or end.utcoffset() is None:
            raise ValueError(f"end must be timezone-aware (UTC), got naive {end.isoformat()}")
        end = end.astimezone(timezone.utc)
        if (end.hour, end.minute, end.second, end.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"end must be a UTC midnight (the end of the last day), got {end.isoformat()}")
        return end

    @model_validator(mode="after")
    def _consistent(self) -> SimulationParams:
        if set(self.channel_params) != set(self.channels):
            raise ValueError(f"channel_params keys {sorted(self.channel_params)} must equal channels "
                             f"{sorted(self.channels)}")
        if not {"web", "app"} <= set(self.channels):
            raise ValueError(f"channels must include web and app (organic visits come through them), got {self.channels}")
        if self.send_days:
            self._check_send_moments()
        else:
            self._check_daily_catalog()
        if abs(sum(self.stage_initial_share) - 1.0) > 1e-9:
            raise ValueError(f"stage_initial_share must sum to 1, got {sum(self.stage_initial_share)}")
        for name in ("channels", "topics", "segments", "age_bands", "regions"):
            values = getattr(self, name)
            if len(set(values)) != len(values) or not values:
                raise ValueError(f"{name} must be non-empty and unique, got {values}")
        return self

    def _check_daily_catalog(self) -> None:
        if len(self.topics) < MIN_TOPICS:
            raise ValueError(f"topics: need at least {MIN_TOPICS}, got {len(self.topics)} (fewer only with send_days)")
        if self.messages < MIN_DAILY_MESSAGES:
            raise ValueError(f"messages: need at least {MIN_DAILY_MESSAGES} for the daily logging policy, got "
                             f"{self.messages} (fewer only with send_days)")
        if self.messages < len(self.channels) * len(self.topics):
            raise ValueError(f"messages: need at least channels x topics = "
                             f"{len(self.channels) * len(self.topics)} to cover every pair, got {self.messages}")

    def _check_send_moments(self) -> None:
        days = list(self.send_days)
        if days != sorted(set(days)) or days[0] < 0 or days[-1] >= self.days:
            raise ValueError(f"send_days must be unique, ascending and within 0..{self.days - 1} (days = {self.days}), "
                             f"got {self.send_days}")
        wanted = max(len(self.channels), len(self.topics))
        if self.messages < wanted:
            raise ValueError(f"messages: a send-moment world needs at least max(channels, topics) = {wanted} so that "
                             f"every channel and topic has a message, got {self.messages}")
        low, high = self.attribution_days_range
        if not 1 <= low <= high:
            raise ValueError(f"attribution_days_range must be whole days with 1 <= low <= high, got {self.attribution_days_range}")

    @property
    def stages(self) -> tuple[str, ...]:
        return JOURNEY_STAGES

    def channel(self, name: str) -> ChannelParams:
        return self.channel_params[name]
