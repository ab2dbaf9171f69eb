"""The object shapes shown in the API notes (credly.md §1.4, §2.3, §3.3, §4.2, §4.4) and the
sandbox's responses carry the same keys. The samples below are our own values in the documented
shapes, written as JSON text and parsed, as a client would."""

from __future__ import annotations

import json

from tests.support.credly_sandbox import ORG, T_ACTIVE, issue_fields, org

LIST_SAMPLE = """
{"data": [], "metadata": {"count": 0, "current_page": 1, "total_count": 0, "total_pages": 0,
 "per": 50, "previous_page_url": null, "next_page_url": null}}
"""

ERROR_SAMPLE = """{"data": {"message": "Invalid or missing Badge Template ID: "}, "metadata": null}"""

ENTITY = """{"type": "Organization", "id": "o-1", "name": "Org", "url": "https://x", "vanity_url": "https://x/v",
 "verified": true}"""

BADGE_SAMPLE = (
    """
{"id": "b-1", "state": "accepted",
 "user": {"id": "u-1", "email": "e@example.com", "first_name": "E", "middle_name": null, "last_name": "L",
          "current_position_name": null, "current_organization_name": null, "confirmed": true,
          "photo": null, "photo_url": null, "url": "https://x/u"},
 "created_by": """
    + ENTITY
    + """,
 "issuer": {"summary": "issued by Org", "entities": [{"label": "Issued by", "primary": true, "entity": """
    + ENTITY
    + """}]},
 "printing_enabled": false, "print_method": null, "badge_template": {},
 "issued_to": "E L", "issued_to_first_name": "E", "issued_to_middle_name": null, "issued_to_last_name": "L",
 "issuer_earner_id": null, "locale": "en", "public": true, "recipient_email": "e@example.com",
 "replacement_badge_id": null, "replaces_badge_id": null, "revocation_reason": null,
 "suppress_badge_notification_email": false, "country": null, "country_code": null, "state_or_province": null,
 "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
 "state_updated_at": "2026-01-01T00:00:00.000Z", "issued_at": "2026-01-01T00:00:00.000Z",
 "issued_at_date": "2026-01-01", "expires_at": null, "expires_at_date": null,
 "image": {"id": "i", "url": "https://x/i.png"}, "image_url": "https://x/i.png", "alignments": [],
 "evidence": [], "badge_url": "https://x/b"}
"""
)

TEMPLATE_KEYS = """
["id", "allow_duplicate_badges", "cost", "description", "global_activity_url", "level", "lock_badge_state",
 "name", "state", "public", "badges_count", "recipient_type", "send_expiring_badge_notifications",
 "show_badge_lmi", "show_lmi_jobs", "show_skill_tag_links", "vanity_slug", "record_to_blockchain",
 "time_to_earn", "type_category", "printing_disabled", "visibility", "criteria_url_name", "criteria_url",
 "certification", "state_updated_at", "created_at", "updated_at", "show_template_settings", "get_issue_count",
 "image", "image_url", "url", "owner", "alignments", "recommendations", "required_badge_templates",
 "badge_template_activities", "skills", "reporting_tags", "recommending_templates", "criterion_for",
 "default_expires_at", "default_expires_at_date", "default_expires_at_type", "earn_this_badge_url",
 "enable_earn_this_badge", "enable_detail_attribute_visibility"]
"""

OWNER_SAMPLE = """{"type": "Organization", "id": "o-1", "name": "Org", "enable_blockchain": false, "url": "https://x",
 "vanity_url": "https://x/v", "vanity_slug": "v", "verified": true, "viewable": true}"""

ORGANIZATION_KEYS = """["id", "name", "website_url", "webhook_url", "contact_email", "technical_contact_email",
 "vanity_slug", "vanity_url", "verified", "allowed_webhooks", "workforce_enabled", "photo", "photo_url",
 "created_at", "updated_at"]"""

NOTICE_SAMPLE = """{"id": "e-1", "organization_id": "o-1", "event_type": "badge.created",
 "occurred_at": "2026-01-01T00:00:00Z"}"""

EVENT_SAMPLE = """{"data": {"id": "e-1", "event_type": "badge.created", "organization_id": "o-1",
 "occurred_at": "2026-01-01T00:00:00.000Z", "badge": {}}, "metadata": {}}"""


def keys(text: str) -> set[str]:
    value = json.loads(text)
    return set(value) if isinstance(value, dict) else set(value)


async def test_list_and_error_envelopes(credly):
    r = await credly.get(org("/badges"), params={"filter": "recipient_email::nobody@example.com"})
    assert r.json() == json.loads(LIST_SAMPLE)
    r = await credly.post(org("/badges"), json=issue_fields(badge_template_id="nope"))
    assert r.json() == json.loads(ERROR_SAMPLE)


async def test_issued_badge_keys(credly):
    r = await credly.get(org("/badges"), params={"filter": "issuer_earner_id::101"})
    [accepted] = r.json()["data"]
    sample = json.loads(BADGE_SAMPLE)
    assert set(accepted) == set(sample)
    assert set(accepted["user"]) == set(sample["user"])
    assert set(accepted["created_by"]) == set(sample["created_by"])
    assert set(accepted["issuer"]) == set(sample["issuer"])
    assert set(accepted["issuer"]["entities"][0]) == set(sample["issuer"]["entities"][0])
    assert set(accepted["image"]) == set(sample["image"])
    # a pending badge: no account yet, an accept link in place of the badge link
    issued = (await credly.post(org("/badges"), json=issue_fields())).json()["data"]
    assert set(issued) == set(sample) - {"badge_url"} | {"accept_badge_url"}
    assert issued["user"] == {}


async def test_template_keys(credly):
    template = (await credly.get(org(f"/badge_templates/{T_ACTIVE}"))).json()["data"]
    assert set(template) == keys(TEMPLATE_KEYS)
    assert set(template["owner"]) == keys(OWNER_SAMPLE)
    assert template["owner"]["id"] == ORG


async def test_organization_keys(credly):
    assert keys(ORGANIZATION_KEYS) <= set((await credly.get(org())).json()["data"])


async def test_event_detail_and_webhook_notice(credly, credly_state):
    await credly.post(org("/badges"), json=issue_fields())
    [event] = credly_state.events.values()
    detail = (await credly.get(org(f"/events/{event.id}"))).json()
    sample = json.loads(EVENT_SAMPLE)
    assert set(detail) == set(sample) and set(detail["data"]) == set(sample["data"])
    assert set(detail["data"]["badge"]) == set(json.loads(BADGE_SAMPLE)) - {"badge_url"} | {"accept_badge_url"}
    notice = credly_state.notice(event)
    assert set(notice) == keys(NOTICE_SAMPLE)
    assert notice["organization_id"] == ORG and notice["id"] == event.id
