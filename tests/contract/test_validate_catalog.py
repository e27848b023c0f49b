"""Rules of the messages and customers tables, and what their accepted rows look like."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.config import FeatureSettings, ValidationSettings
from engine.contract.load import load_dataset
from engine.features.spec import FeatureSpec
from tests.builders import event, make_data_dir

OK = {"message_id": "ok", "channel": "email", "topic": "travel"}


def _message_reject(tmp_path, bad: dict) -> pd.Series:
    dataset = load_dataset(make_data_dir(tmp_path, [event("2026-02-10")], messages=[OK, bad]), ValidationSettings())
    assert list(dataset.messages["message_id"]) == ["ok"]
    rejects = dataset.report.rejects
    assert len(rejects) == 1 and rejects["table"].iloc[0] == "messages" and rejects["row_number"].iloc[0] == 2
    return rejects.iloc[0]


@pytest.mark.parametrize(
    ("bad", "reason", "detail"),
    [
        ({"message_id": "", "channel": "email", "topic": "t"}, "missing_message_id", "message_id is empty"),
        ({"message_id": "x", "channel": "", "topic": "t"}, "missing_channel", "channel is empty"),
        ({"message_id": "x", "channel": "sms", "topic": ""}, "missing_topic", "topic is empty"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "journey_stage": "retention"}, "unknown_journey_stage",
         "journey_stage='retention' is not one of awareness, consideration, purchase, loyalty"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "value": "cheap"}, "bad_value", "value='cheap' is not a number"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "value": "-0.5"}, "negative_value", "value='-0.5' is negative; expected >= 0"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "valid_from": "soon"}, "bad_timestamp", "valid_from='soon' is not an ISO-8601 timestamp"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "valid_to": "2026-02-30"}, "bad_timestamp", "valid_to='2026-02-30' is not an ISO-8601 timestamp"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "valid_from": "2026-03-01", "valid_to": "2026-03-01"}, "empty_validity_window",
         "valid_to='2026-03-01' is not after valid_from"),
        ({"message_id": "ok", "channel": "sms", "topic": "t"}, "duplicate_message_id", "message_id='ok' appeared in an earlier row; kept once"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "attribution_days": "a week"}, "bad_attribution_days",
         "attribution_days='a week' is not a number"),
        ({"message_id": "x", "channel": "sms", "topic": "t", "attribution_days": "0"}, "bad_attribution_days",
         "attribution_days='0' is not positive; expected a number of days > 0, or empty for [training] attribution_days"),
    ],
)
def test_each_message_rule(tmp_path, bad, reason, detail):
    row = _message_reject(tmp_path, bad)
    assert (row["reason"], row["detail"]) == (reason, detail)


def test_message_defaults_and_extra_attributes(tmp_path):
    messages = [
        {"message_id": "m1", "channel": " SMS ", "topic": "travel", "journey_stage": "Loyalty", "value": "", "offer_type": "discount"},
        {"message_id": "m2", "channel": "email", "topic": "food", "value": "3.5", "valid_from": "2026-01-01T00:00:00+01:00", "offer_type": "content"},
    ]
    dataset = load_dataset(make_data_dir(tmp_path, [event("2026-02-10")], messages=messages), ValidationSettings())
    frame = dataset.messages.set_index("message_id")
    assert frame.loc["m1", "channel"] == "sms"
    assert frame.loc["m1", "journey_stage"] == "loyalty"
    assert frame.loc["m1", "value"] == 1.0  # empty value means the default of 1
    assert frame.loc["m2", "value"] == 3.5
    assert pd.isna(frame.loc["m2", "journey_stage"])
    assert frame.loc["m2", "valid_from"] == pd.Timestamp("2025-12-31T23:00Z")
    assert pd.isna(frame.loc["m2", "valid_to"])  # empty = open-ended
    assert list(frame["offer_type"]) == ["discount", "content"]


def test_customer_rules_and_profile_attributes(tmp_path):
    customers = [
        {"customer_id": "c1", "segment": "gold"},
        {"customer_id": "", "segment": "silver"},
        {"customer_id": "c1", "segment": "bronze"},
        {"customer_id": "c2", "segment": "bronze"},
    ]
    events = [event("2026-02-10", customer_id="c1"), event("2026-02-10", customer_id="c9")]
    dataset = load_dataset(make_data_dir(tmp_path, events, customers=customers), ValidationSettings())
    assert dataset.customers.to_dict("records") == [
        {"customer_id": "c1", "segment": "gold"},
        {"customer_id": "c2", "segment": "bronze"},
    ]
    assert list(dataset.report.rejects["reason"]) == ["missing_customer_id", "duplicate_customer_id"]
    # An event for a customer without a profile is kept, and the report says so.
    assert len(dataset.events) == 2
    assert "1 events name 1 customers that have no row in the customers table" in " ".join(dataset.report.notes)


def test_one_offer_on_several_channels(tmp_path):
    # One offer by email, app and web; o2 on email twice: the second is refused. An offer id is trimmed
    # text, empty = the message is its own offer, and it is no message attribute.
    messages = [
        {"message_id": "o1-email", "channel": "email", "topic": "travel", "offer_id": " o1 "},
        {"message_id": "o1-app", "channel": "app", "topic": "travel", "offer_id": "o1"},
        {"message_id": "o1-web", "channel": "web", "topic": "travel", "offer_id": "o1"},
        {"message_id": "solo", "channel": "email", "topic": "food", "offer_id": ""},
        {"message_id": "o2-a", "channel": "email", "topic": "food", "offer_id": "o2"},
        {"message_id": "o2-b", "channel": " Email ", "topic": "food", "offer_id": "o2"},
    ]
    dataset = load_dataset(make_data_dir(tmp_path, [event("2026-02-10")], messages=messages), ValidationSettings())
    frame = dataset.messages.set_index("message_id")
    assert list(frame.index) == ["o1-email", "o1-app", "o1-web", "solo", "o2-a"]
    assert list(frame["offer_id"].fillna("-")) == ["o1", "o1", "o1", "-", "o2"]
    reject = dataset.report.rejects.iloc[0]
    assert (len(dataset.report.rejects), reject["row_number"], reject["reason"]) == (1, 6, "offer_on_one_channel_twice")
    assert reject["detail"] == ("offer_id='o2' already has a message on this channel in an earlier row; an offer has one "
                                "message per channel")
    # Not a msg_attr_ feature: the offer is a feature of its own (docs/features.md).
    spec = FeatureSpec.fit(dataset.messages, dataset.customers, FeatureSettings())
    assert "offer_id" not in [e.column for e in spec.message_encoders]


def test_the_documented_offer_catalog_loads_as_documented(tmp_path):
    # The example of docs/data-contract.md, "One offer on several channels".
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "data-contract.md").read_text()
    block = doc.split("### One offer on several channels", 1)[1].split("```csv\n", 1)[1].split("```", 1)[0]
    data = make_data_dir(tmp_path / "data", [event("2026-03-02")])
    (data / "messages.csv").write_text(block)  # in place of the builders' catalog
    dataset = load_dataset(data, ValidationSettings())
    assert dataset.report.rejects.empty
    offers = dict(zip(dataset.messages["message_id"], dataset.messages["offer_id"].fillna("")))
    assert offers == {"spring-email": "spring-sale", "spring-app": "spring-sale", "spring-web": "spring-sale", "newsletter-07": ""}
    spec = FeatureSpec.fit(dataset.messages, dataset.customers, FeatureSettings())
    codes = dict(zip(spec.vocab.messages.values, spec.offer_codes()))
    assert codes["spring-email"] == codes["spring-app"] == codes["spring-web"] != codes["newsletter-07"]


def test_a_message_s_attribution_window_is_a_number_of_days_and_no_feature(tmp_path):
    messages = [{"message_id": "m1", "channel": "sms", "topic": "t", "attribution_days": "3"},
                {"message_id": "m2", "channel": "sms", "topic": "u", "attribution_days": ""}]
    dataset = load_dataset(make_data_dir(tmp_path, [event("2026-02-10")], messages=messages), ValidationSettings())
    windows = dataset.messages.set_index("message_id")["attribution_days"]
    assert windows["m1"] == 3.0 and pd.isna(windows["m2"])
    spec = FeatureSpec.fit(dataset.messages, dataset.customers, FeatureSettings())
    assert all(e.column != "attribution_days" for e in spec.message_encoders)
