"""Training's evaluation values the policy that is served: the decision engine with the configured policy
replays each logged test decision from the events before it, for the model and for every baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import MessageRule, load_settings
from engine.model.examples import history_for
from engine.policy.online import DecisionEngine
from engine.policy.replay import BoosterScorer, replay_bundle, replay_choices, without_exploration
from training.evaluate import MODEL
from training.pipeline import fit_and_evaluate

pytestmark = pytest.mark.slow
COOLDOWN_DAYS = 30
FORBIDDEN_TOPIC = "fashion"


@pytest.fixture(scope="module")
def run(small_world):
    """The model and baselines replayed with a policy that bites: a 30-day cooldown per message and a
    rule no customer passes for one topic."""
    base = load_settings(environ=False)
    policy = base.policy.model_copy(update={
        "contact": base.policy.contact.model_copy(update={"cooldown_days": float(COOLDOWN_DAYS)}),
        "rules": (MessageRule(topic=FORBIDDEN_TOPIC, attribute_in={"segment": ("nobody",)}),)})
    settings = base.model_copy(update={"policy": policy})
    done = fit_and_evaluate(small_world, settings)
    return settings, done.dataset, done.spec, done.examples, done.ranker, done.evaluation


def _shown_within(events: pd.DataFrame, customer: str, message: str, as_of: pd.Timestamp, days: float) -> bool:
    """Whether the customer saw the message in the ``days`` before ``as_of``: a plain scan of the events."""
    shown = events[(events["event_type"] == "impression") & (events["customer_id"].astype(str) == customer)
                   & (events["message_id"].astype(str) == message)]
    return bool(((shown["ts"] < as_of) & (shown["ts"] > as_of - pd.Timedelta(days=days))).any())


def test_every_replayed_choice_is_one_the_policy_allows(run):
    _, dataset, _, _, _, evaluation = run
    replayed = evaluation.replayed
    decisions = replayed.replay.decisions
    topic_of = dict(zip(dataset.messages["message_id"].astype(str), dataset.messages["topic"].astype(str)))
    for name, choices in replayed.choices.items():
        served = [(i, m) for i, m in enumerate(choices.chosen) if m is not None]
        assert len(served) > 0.5 * len(decisions), name
        assert not any(topic_of[m] == FORBIDDEN_TOPIC for _, m in served), name
        # The cooldown counts the data's impressions before each decision (a sample: the scan is slow).
        for i, message in served[:: max(1, len(served) // 150)]:
            row = decisions.iloc[i]
            assert not _shown_within(dataset.events, str(row["customer_id"]), message, pd.Timestamp(row["as_of"]), COOLDOWN_DAYS), (name, i)


def test_the_served_choices_differ_from_the_plain_argmax_over_valid_messages(run):
    settings, dataset, spec, examples, ranker, evaluation = run
    replayed = evaluation.replayed
    # The same model with no rule and no contact policy: the best-scoring valid message, what evaluation
    # valued before it replayed the served policy.
    free = settings.model_copy(update={"policy": type(settings.policy)(
        contact=settings.policy.contact.model_copy(update={"complaint_suppression_days": 0.0, "offer_spacing_hours": 0.0}))})
    history = history_for(dataset.events, spec)
    bundle = replay_bundle(spec=spec, feature_names=examples.features.names, messages=dataset.messages, customers=dataset.customers,
                           state=replayed.requests.state(history.log, settings.features.max_window_days), booster=ranker.booster_,
                           metadata={"model_version": "argmax"})
    scorer = BoosterScorer.of(ranker.booster_, examples.features.names, probability=True, num_iteration=ranker.best_iteration_)
    argmax = replay_choices(DecisionEngine(bundle, without_exploration(free), scorer=scorer), replayed.requests).chosen
    served = replayed.choices[MODEL].chosen
    topic_of = dict(zip(dataset.messages["message_id"].astype(str), dataset.messages["topic"].astype(str)))
    assert any(m is not None and topic_of[m] == FORBIDDEN_TOPIC for m in argmax)  # the argmax would send the forbidden topic
    differ = np.array([a != b for a, b in zip(argmax, served)])
    assert 0.05 < differ.mean() < 1.0
    # Where the policy allows the argmax's message, the engine serves it: the policy, not the scores, differs.
    allowed = np.array([a is not None and topic_of[a] != FORBIDDEN_TOPIC for a in argmax])
    assert (~differ[allowed]).mean() > 0.5
