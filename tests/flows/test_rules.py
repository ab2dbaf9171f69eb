"""Pure rules: G1 gate, S3 keys per flow, E1 expiry, dates, evidence, badge body."""

from __future__ import annotations

import datetime as dt

import pytest

from services.flows import rules

T0 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "flow,master,gated",
    [
        ("docebo-to-credly", "", False), ("docebo-to-credly", "DOCEBO", False), ("docebo-to-credly", "CREDLY", True),
        ("course_completion", "CREDLY", True), ("certification", "CREDLY", True),
        ("credly-to-docebo", "", False), ("credly-to-docebo", "CREDLY", False), ("credly-to-docebo", "DOCEBO", True),
        ("badge_event", "DOCEBO", True),
        ("templates", "DOCEBO", False), ("templates", "CREDLY", False), ("dropdown", "CREDLY", False),
    ],
)
def test_G1_gate(flow, master, gated):
    assert bool(rules.gate_reason(flow, master)) is gated


def test_flow_key_and_unknown_flow():
    assert rules.flow_key("docebo-to-credly") == "docebo_to_credly"
    with pytest.raises(ValueError, match="unknown flow"):
        rules.flow_key("everything")


def test_S3_required_settings_per_flow():
    assert "COURSE_ADDITIONAL_FIELD" in rules.required_settings("dropdown")
    assert "EVIDENCE_TITLE" in rules.required_settings("docebo-to-credly")
    assert "EVIDENCE_TITLE" not in rules.required_settings("credly-to-docebo")
    assert "EXTERNAL_TRAINING_INSTITUTE_NAME" in rules.required_settings("badge_event")
    assert all(
        "NOTIFICATION_MAIL_ID" in rules.required_settings(f)
        for f in ("templates", "dropdown", "docebo-to-credly", "credly-to-docebo")
    )


def test_E1_each_case():
    assert rules.badge_expires_at("2026-01-02 03:04:05", T0, 30) == "2026-01-02 03:04:05 +0000"  # own expiry wins
    assert rules.badge_expires_at(None, T0, None) is False  # blank: never expires
    assert rules.badge_expires_at(None, T0, 30) == "2025-03-31 10:00:00 +0000"  # N > 0: issue date + N
    assert rules.badge_expires_at(None, T0, 0) is None  # 0: the template's own default
    assert rules.badge_expires_at("0000-00-00 00:00:00", T0, None) is False
    assert rules.docebo_expiry_from_badge({"expires_at": "2027-02-01T09:00:00.000Z"}) == "2027-02-01 09:00:00"
    assert rules.docebo_expiry_from_badge({"expires_at": None}) is None


def test_dates_and_start_bound():
    assert rules.parse_datetime("2025-03-01 10:00:00") == T0
    assert rules.parse_datetime("2025-03-01T10:00:00.000Z") == T0
    assert rules.parse_datetime("") is None and rules.parse_datetime(None) is None
    assert rules.on_or_after("2025-01-01 00:00:00", dt.date(2025, 1, 1))
    assert not rules.on_or_after("2024-12-31 23:59:59", dt.date(2025, 1, 1))
    assert rules.on_or_after(None, dt.date(2025, 1, 1)) and rules.on_or_after("2000-01-01", None)
    assert rules.same_day("2025-03-01 23:00:00", "2025-03-01T01:00:00Z") and rules.same_day(None, "")
    assert rules.credly_time(T0) == "2025-03-01 10:00:00 +0000" and rules.docebo_time(T0) == "2025-03-01 10:00:00"


def test_evidence_and_badge_body_carry_what_spec_lists():
    ev = rules.evidence("Docebo achievement", "F3b", "learning plan 501")
    assert (
        ev[0]["title"] == "Docebo achievement" and "F3b" in ev[0]["description"] and "learning plan 501" in ev[0]["description"]
    )
    body = rules.badge_fields(
        email="a@x.com",
        first_name="A",
        last_name="B",
        template_id="t",
        issued_at=T0,
        docebo_user_id=12,
        expires_at=False,
        evidence_items=ev,
    )
    assert body == {
        "recipient_email": "a@x.com",
        "issued_to_first_name": "A",
        "issued_to_last_name": "B",
        "badge_template_id": "t",
        "issued_at": "2025-03-01 10:00:00 +0000",
        "issuer_earner_id": "12",
        "expires_at": False,
        "evidence": ev,
    }
