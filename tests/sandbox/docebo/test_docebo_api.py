"""Docebo sandbox: every public route, the list envelope, paging, PHP-style array parameters,
filters and error bodies (api/docebo.md §1-6; issue 3)."""

from __future__ import annotations

import pytest

from services.sandbox.demo_data import generate
from services.sandbox.docebo.state import DoceboState
from tests.support.docebo_sandbox import all_items

ENVELOPE_KEYS = {"items", "count", "has_more_data", "current_page", "current_page_size", "total_page_count", "cursor"}


def assert_error(r, status: int, message_part: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"name", "message", "code", "status"}
    assert body["status"] == status and body["code"] == 0 and body["name"]
    assert message_part.lower() in body["message"].lower()


# -- envelope and paging (§1.3) ----------------------------------------------------------------


LIST_ROUTES = [
    "/manage/v1/user",
    "/learn/v1/courses",
    "/course/v1/courses",
    "/learn/v1/courses/field",
    "/course/v1/courses/enrollments",
    "/course/v1/courses/101/enrollments",
    "/learningplan/v1/learningplans",
    "/learningplan/v1/learningplans/11/courses",
    "/learningplan/v1/learningplans/enrollments",
    "/learn/v1/external_training",
    "/learn/v1/certification",
    "/certification/v1/awards",
]


@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_every_list_route_has_the_envelope(api, path):
    r = await api.get(path, params={"get_total_count": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "version", "_links"}
    assert body["version"] == "1.0.0" and body["_links"] == []
    data = body["data"]
    assert set(data) == ENVELOPE_KEYS | {"total_count"}
    assert data["count"] == len(data["items"])
    assert data["current_page"] == 1
    assert r.headers["x-docebo-api-version"] == "1.0.0"


async def test_total_count_only_when_asked(api):
    data = (await api.get("/manage/v1/user")).json()["data"]
    assert "total_count" not in data
    data = (await api.get("/manage/v1/user", params={"get_total_count": "1"})).json()["data"]
    assert data["total_count"] == 60


async def test_default_page_sizes(api):
    users = (await api.get("/manage/v1/user")).json()["data"]
    assert users["current_page_size"] == 200 and users["count"] == 60 and not users["has_more_data"]
    courses = (await api.get("/learn/v1/courses")).json()["data"]
    assert courses["current_page_size"] == 20 and courses["count"] == 20 and courses["total_page_count"] == 1
    courses2 = (await api.get("/course/v1/courses")).json()["data"]
    assert courses2["current_page_size"] == 200


async def test_page_size_is_capped_at_200(api):
    big = DoceboState.from_demo(generate("medium", 0))
    import httpx

    from services.sandbox.docebo.app import create_docebo_app
    from tests.support.docebo_sandbox import get_token

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_docebo_app(big)), base_url="http://t") as c:
        c.headers["Authorization"] = f"Bearer {await get_token(c, big)}"
        data = (await c.get("/manage/v1/user", params={"page_size": 1000, "get_total_count": 1})).json()["data"]
    assert data["count"] == 200 and data["current_page_size"] == 200
    assert data["has_more_data"] is True
    assert data["total_page_count"] == 10 and data["total_count"] == 2000


async def test_paging_over_more_than_one_page_of_users():
    """> 200 users: walk every page with the default size; each user exactly once (§1.3)."""
    import httpx

    from services.sandbox.docebo.app import create_docebo_app
    from tests.support.docebo_sandbox import get_token

    world = DoceboState.from_demo(generate("medium", 0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_docebo_app(world)), base_url="http://t") as c:
        c.headers["Authorization"] = f"Bearer {await get_token(c, world)}"
        pages = []
        page = 1
        while True:
            data = (await c.get("/manage/v1/user", params={"page": page})).json()["data"]
            pages.append(data)
            if not data["has_more_data"]:
                break
            page += 1
    assert len(pages) == 10
    assert all(p["total_page_count"] == 10 for p in pages)
    assert [p["current_page"] for p in pages] == list(range(1, 11))
    ids = [u["user_id"] for p in pages for u in p["items"]]
    assert len(ids) == 2000 == len(set(ids))
    assert pages[-1]["has_more_data"] is False and pages[0]["has_more_data"] is True


async def test_small_pages_and_page_past_the_end(api):
    items = await all_items(api, "/manage/v1/user", page_size=7)
    assert len(items) == 60 == len({u["user_id"] for u in items})
    data = (await api.get("/manage/v1/user", params={"page": 99, "page_size": 7})).json()["data"]
    assert data["items"] == [] and data["count"] == 0 and data["has_more_data"] is False
    assert data["total_page_count"] == 9


@pytest.mark.parametrize("params", [{"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": "ten"}, {"page": -2}])
async def test_bad_paging_parameters_are_400(api, params):
    assert_error(await api.get("/manage/v1/user", params=params), 400, "page")


async def test_cursor_is_echoed(api):
    data = (await api.get("/manage/v1/user", params={"get_cursor": 1})).json()["data"]
    assert data["cursor"]
    again = (await api.get("/manage/v1/user", params={"cursor": data["cursor"], "page": 2, "page_size": 10})).json()["data"]
    assert again["cursor"] == data["cursor"]


# -- errors (§1.4) -------------------------------------------------------------------------------


async def test_unknown_route_is_404_with_docebo_body(api):
    assert_error(await api.get("/learn/v1/nothing-here"), 404, "not found")


async def test_wrong_method_is_405_with_docebo_body(api):
    assert_error(await api.delete("/manage/v1/user"), 405, "not allowed")


@pytest.mark.parametrize(
    "path",
    [
        "/manage/v1/user/999999",
        "/manage/v1/user/abc",
        "/learn/v1/courses/999999",
        "/course/v1/courses/999999",
        "/learn/v1/courses/field/999",
        "/learn/v1/enrollments/101/999999",
        "/learningplan/v1/learningplans/999",
        "/learningplan/v1/learningplans/999/courses",
        "/certification/v1/awards/999999",
        "/course/v1/courses/999999/enrollments",
    ],
)
async def test_unknown_ids_are_404(api, path):
    assert_error(await api.get(path), 404, "not found")


async def test_invalid_json_body_is_400(api):
    r = await api.post("/learn/v1/external_training", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, "json")
    r = await api.post("/learn/v1/external_training", json=[1, 2])
    assert_error(r, 400, "object")


# -- users (§2) ------------------------------------------------------------------------------------


async def test_user_search_is_substring_on_names_username_and_email(api, demo):
    target = demo.users[5]
    part = target["last_name"][1:4].lower()
    items = await all_items(api, "/manage/v1/user", [("search_text", part)])
    assert any(u["email"] == target["email"] for u in items)
    for u in items:
        blob = f"{u['first_name']} {u['last_name']} {u['username']} {u['email']}".lower()
        assert part in blob
    domain_part = target["email"].split("@")[1][:8]
    assert len(await all_items(api, "/manage/v1/user", [("search_text", domain_part)])) == 60


async def test_user_exact_match_by_email_case_insensitive(api, demo):
    target = demo.users[7]
    r = await api.get("/manage/v1/user", params={"search_text": target["email"].upper(), "match_type": "full"})
    items = r.json()["data"]["items"]
    assert [u["email"] for u in items] == [target["email"]]
    assert items[0]["user_id"] == str(target["user_id"])  # string, as newer tenants send it (§2)
    # a prefix of the address is not an exact match
    r = await api.get("/manage/v1/user", params={"search_text": target["email"][:-3], "match_type": "full"})
    assert r.json()["data"]["items"] == []


async def test_user_list_item_keys(api):
    item = (await api.get("/manage/v1/user", params={"page_size": 1})).json()["data"]["items"][0]
    assert {"user_id", "username", "first_name", "last_name", "fullname", "email", "status", "level", "uuid"} <= set(item)


async def test_user_ids_as_integers_when_configured(anon, api):
    await anon.put("/_sandbox/config", json={"user_id_as_string": False})
    item = (await api.get("/manage/v1/user", params={"page_size": 1})).json()["data"]["items"][0]
    assert isinstance(item["user_id"], int)


async def test_user_sorting(api):
    by_email_desc = await all_items(api, "/manage/v1/user", [("sort_attr", "email"), ("sort_dir", "desc")])
    emails = [u["email"].lower() for u in by_email_desc]
    assert emails == sorted(emails, reverse=True)
    by_first = await all_items(api, "/manage/v1/user")
    firsts = [u["first_name"].lower() for u in by_first]
    assert firsts == sorted(firsts)
    assert_error(await api.get("/manage/v1/user", params={"sort_attr": "password"}), 400, "sort_attr")
    assert_error(await api.get("/manage/v1/user", params={"sort_dir": "up"}), 400, "sort_dir")
    assert_error(await api.get("/manage/v1/user", params={"match_type": "fuzzy"}), 400, "match_type")


async def test_user_detail(api, demo):
    u = demo.users[0]
    data = (await api.get(f"/manage/v1/user/{u['user_id']}")).json()["data"]
    assert set(data) == {"user_data", "additional_fields"}
    ud = data["user_data"]
    assert ud["email"] == u["email"] and ud["first_name"] == u["first_name"] and ud["username"] == u["username"]
    assert str(ud["user_id"]) == str(u["user_id"]) and ud["valid"] == "1"


# -- courses and additional fields (§3) ---------------------------------------------------------


async def test_course_list_and_detail(api, demo, state):
    items = await all_items(api, "/learn/v1/courses", page_size=20)
    assert [c["id_course"] for c in items] == [c["id_course"] for c in demo.courses]
    assert {"id_course", "name", "code", "course_type", "field_1", "field_2"} <= set(items[0])
    cid = next(c for c, lps in state.lps_by_course.items() if lps)
    detail = (await api.get(f"/learn/v1/courses/{cid}")).json()["data"]
    assert detail["id"] == cid and detail["type"] in ("elearning", "classroom", "webinar")
    assert "course_type" not in detail
    assert sorted(lp["id"] for lp in detail["learningplans"]) == sorted(state.lps_by_course[cid])
    assert {f["id"] for f in detail["additional_fields"]} == {1, 2}
    region = next(f for f in detail["additional_fields"] if f["id"] == 1)
    assert region["title"] == "Delivery region" and region["type"] == "dropdown"
    assert [o["label"] for o in region["options"]] == ["AMER", "EMEA", "APAC"]
    assert region["value"] == detail["field_1"]


async def test_course_service_routes(api, demo):
    items = await all_items(api, "/course/v1/courses")
    assert len(items) == len(demo.courses)
    assert items[0]["id"] == items[0]["id_course"]
    detail = (await api.get(f"/course/v1/courses/{items[0]['id']}")).json()["data"]
    assert detail["id"] == items[0]["id"]


async def test_course_search_and_sort(api, demo):
    name = demo.courses[3]["name"]
    items = (await api.get("/learn/v1/courses", params={"search_text": name[:10].lower()})).json()["data"]["items"]
    assert demo.courses[3]["id_course"] in [c["id_course"] for c in items]
    items = await all_items(api, "/learn/v1/courses", [("sort_by", "name"), ("sort_by_direction", "desc")])
    names = [c["name"].lower() for c in items]
    assert names == sorted(names, reverse=True)
    assert_error(await api.get("/learn/v1/courses", params={"sort_by": "price"}), 400, "sort_by")
    items = (await api.get("/learn/v1/courses", params=[("id_course[]", 101), ("id_course[]", 105)])).json()["data"]["items"]
    assert [c["id_course"] for c in items] == [101, 105]


async def test_course_fields_create_read_update_delete(api, anon, state):
    body = {
        "type": "dropdown",
        "translations": {"english": "Credly badge"},
        "dropdown_options": [{"translations": {"english": "Safety Champion"}}, {"translations": {"english": "Cloud Expert"}}],
    }
    r = await api.post("/learn/v1/courses/field", json=body)
    assert r.status_code == 201, r.text
    fld = r.json()["data"]
    assert fld["type"] == "dropdown" and fld["name"]["value"] == "Credly badge"
    labels = {o["label"]: o["id"] for o in fld["options"]}
    assert set(labels) == {"Safety Champion", "Cloud Expert"}
    assert all(isinstance(o["id"], int) for o in fld["options"])
    fid = fld["id"]

    listed = (await api.get("/learn/v1/courses/field", params={"no_pagination": 1})).json()["data"]["items"]
    assert fid in [f["id"] for f in listed]

    # the admin sets the value on a course: flat field_<id> and additional_fields show the option id
    r = await anon.put(f"/_sandbox/admin/courses/101/fields/{fid}", json={"label": "Cloud Expert"})
    assert r.json()["data"]["value"] == labels["Cloud Expert"]
    course = (await api.get("/learn/v1/courses", params=[("id_course[]", 101)])).json()["data"]["items"][0]
    assert course[f"field_{fid}"] == labels["Cloud Expert"]

    update = {
        "dropdown_options": {
            "new": [{"translations": {"english": "Data Wizard"}}],
            "updated": [{"id_option": labels["Safety Champion"], "translations": {"english": "Safety Hero"}}],
            "deleted": [{"id_option": labels["Cloud Expert"]}],
        }
    }
    r = await api.put(f"/learn/v1/courses/field/{fid}", json=update)
    assert r.status_code == 200, r.text
    after = {o["label"]: o["id"] for o in r.json()["data"]["options"]}
    assert set(after) == {"Safety Hero", "Data Wizard"}
    assert after["Safety Hero"] == labels["Safety Champion"]  # renaming keeps the id
    fetched = (await api.get(f"/learn/v1/courses/field/{fid}")).json()["data"]
    assert fetched["options"] == r.json()["data"]["options"]
    # the deleted option is no longer any course's value
    detail = (await api.get("/learn/v1/courses/101")).json()["data"]
    assert detail[f"field_{fid}"] is None

    r = await api.put(f"/learn/v1/courses/field/{fid}", json={"translations": {"english": "Badge template"}})
    assert r.json()["data"]["name"]["value"] == "Badge template"

    assert (await api.delete(f"/learn/v1/courses/field/{fid}")).status_code == 200
    assert_error(await api.get(f"/learn/v1/courses/field/{fid}"), 404)


@pytest.mark.parametrize(
    "body, part",
    [
        ({"type": "dropdown"}, "translations"),
        ({"type": "checkbox", "translations": {"english": "X"}}, "type"),
        ({"type": "dropdown", "translations": {"english": "  "}}, "name"),
        ({"type": "dropdown", "translations": {"english": "X"}, "dropdown_options": [{"translations": {}}]}, "translations"),
        ({"type": "dropdown", "translations": {"english": "X"}, "dropdown_options": "A,B"}, "list"),
    ],
)
async def test_course_field_create_validation(api, body, part):
    assert_error(await api.post("/learn/v1/courses/field", json=body), 400, part)


async def test_course_field_update_validation_changes_nothing(api, state):
    before = {oid: label for oid, label in state.course_fields[1]["options"].items()}
    bad = {"dropdown_options": {"new": [{"translations": {"english": "New"}}], "deleted": [{"id_option": 999}]}}
    assert_error(await api.put("/learn/v1/courses/field/1", json=bad), 400, "999")
    assert state.course_fields[1]["options"] == before
    assert_error(await api.put("/learn/v1/courses/field/1", json={"dropdown_options": {"moved": []}}), 400, "moved")
    assert_error(
        await api.put("/learn/v1/courses/field/2", json={"dropdown_options": {"new": [{"translations": {"english": "A"}}]}}),
        400,
        "dropdown",
    )
    assert_error(
        await api.put("/learn/v1/courses/field/1", json={"dropdown_options": {"updated": [{"translations": {"english": "A"}}]}}),
        400,
        "id_option",
    )


# -- course enrollments (§4.1) ----------------------------------------------------------------------


async def test_enrollments_filters_with_many_ids(api, state):
    courses = [101, 102, 103]
    users = sorted({u for c in courses for u in state.enr_by_course[c]})[:10]
    params = [("course_id[]", c) for c in courses] + [(f"user_id[{i}]", u) for i, u in enumerate(users)]
    params.append(("enrollment_status[]", "completed"))
    items = await all_items(api, "/course/v1/courses/enrollments", params)
    expected = {
        (c, u)
        for c in courses
        for u in users
        if (c, u) in state.enrollments and state.enrollments[(c, u)]["status"] == "completed"
    }
    assert {(i["course_id"], i["user_id"]) for i in items} == expected
    assert expected  # the filter had something to find
    assert all(i["enrollment_status"] == "completed" and i["enrollment_completion_date"] for i in items)


async def test_enrollment_item_shape_and_expiry(api, state, demo):
    with_expiry = next(e for e in demo.enrollments if e["validity_end"])
    without = next(e for e in demo.enrollments if e["status"] == "completed" and not e["validity_end"])
    for e in (with_expiry, without):
        r = await api.get("/course/v1/courses/enrollments", params={"course_id[]": e["course_id"], "user_id[]": e["user_id"]})
        item = r.json()["data"]["items"][0]
        assert {
            "user_id",
            "course_id",
            "course_name",
            "course_type",
            "enrollment_status",
            "enrollment_created_at",
            "enrollment_date_last_updated",
            "enrollment_completion_date",
            "enrollment_score",
            "enrollment_date_end_validity",
        } <= set(item)
        assert item["enrollment_date_end_validity"] == e["validity_end"]
        assert isinstance(item["user_id"], int) and isinstance(item["course_id"], int)
        assert "enrollment_time_spent" not in item
    r = await api.get("/course/v1/courses/enrollments", params={"course_id[]": 101, "extra_fields[]": "enrollment_time_spent"})
    assert "enrollment_time_spent" in r.json()["data"]["items"][0]


async def test_enrollments_without_filter_cover_everything(api, state):
    items = await all_items(api, "/course/v1/courses/enrollments")
    assert len(items) == len(state.enrollments)


async def test_enrollments_comma_separated_and_bad_values(api, state):
    r = await api.get("/course/v1/courses/enrollments", params={"course_id": "101,102"})
    assert {i["course_id"] for i in r.json()["data"]["items"]} == {101, 102}
    assert_error(await api.get("/course/v1/courses/enrollments", params={"course_id[]": "abc"}), 400, "course_id")
    assert_error(await api.get("/course/v1/courses/enrollments", params={"enrollment_status[]": "done"}), 400, "status")


async def test_per_course_enrollments_route(api, state):
    items = await all_items(api, "/course/v1/courses/101/enrollments")
    assert {i["user_id"] for i in items} == set(state.enr_by_course[101])


async def test_single_enrollment(api, demo):
    e = demo.enrollments[0]
    rec = (await api.get(f"/learn/v1/enrollments/{e['course_id']}/{e['user_id']}")).json()["data"]["records"]
    assert rec["id"] == e["course_id"] and rec["status"] == e["status"]


async def _find(state, status):
    return next(r for r in state.enrollments.values() if r["status"] == status)


async def test_put_enrollment_completes_course(api, state):
    rec = next(
        r for r in state.enrollments.values() if r["status"] == "in_progress" and state.courses[r["course_id"]]["validity_days"]
    )
    r = await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "completed"})
    assert r.status_code == 200, r.text
    item = (
        await api.get("/course/v1/courses/enrollments", params={"course_id[]": rec["course_id"], "user_id[]": rec["user_id"]})
    ).json()["data"]["items"][0]
    assert item["enrollment_status"] == "completed"
    assert item["enrollment_completion_date"] is not None
    assert item["enrollment_date_end_validity"] > item["enrollment_completion_date"]


async def test_put_enrollment_with_date_score_and_legacy_status_code(api, state):
    rec = next(r for r in state.enrollments.values() if r["status"] == "not_started")
    body = {"status": 2, "date_complete": "2025-05-06 07:08:09", "score_given": 88, "date_expire_validity": None}
    r = await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json=body)
    assert r.status_code == 200, r.text
    assert rec["status"] == "completed" and rec["completed_at"] == "2025-05-06 07:08:09"
    assert rec["score"] == 88 and rec["validity_end"] is None
    # back to in progress clears the completion date
    await api.put(f"/learn/v1/enrollments/{rec['course_id']}/{rec['user_id']}", json={"status": "in_progress"})
    assert rec["status"] == "in_progress" and rec["completed_at"] is None


@pytest.mark.parametrize(
    "body, part",
    [
        ({"status": "finished"}, "status"),
        ({"date_complete": "yesterday"}, "date_complete"),
        ({"score_given": "lots"}, "score"),
        ({}, "nothing"),
    ],
)
async def test_put_enrollment_validation(api, demo, body, part):
    e = demo.enrollments[0]
    assert_error(await api.put(f"/learn/v1/enrollments/{e['course_id']}/{e['user_id']}", json=body), 400, part)


async def test_put_enrollment_unknown_is_404(api, state):
    uid = next(u for u in state.users if 101 not in state.enr_by_user.get(u, {}))
    assert_error(await api.put(f"/learn/v1/enrollments/101/{uid}", json={"status": "completed"}), 404, "not enrolled")


async def test_post_enrollments_enrolls(api, state):
    uid = next(u for u in state.users if 101 not in state.enr_by_user.get(u, {}))
    r = await api.post("/learn/v1/enrollments", json={"course_ids": [101], "user_ids": [uid], "level": "student"})
    assert r.json()["data"]["enrolled"] == 1
    assert state.enrollments[(101, uid)]["status"] == "not_started"
    assert_error(await api.post("/learn/v1/enrollments", json={"course_ids": [101]}), 400, "user_ids")


# -- learning plans (§4.2) ----------------------------------------------------------------------------


async def test_learning_plans_and_their_courses(api, demo):
    lps = await all_items(api, "/learningplan/v1/learningplans")
    assert [lp["learning_plan_id"] for lp in lps] == [lp["learning_plan_id"] for lp in demo.learning_plans]
    assert {"learning_plan_id", "code", "title", "uuid", "assigned_courses_count"} <= set(lps[0])
    for lp in demo.learning_plans:
        courses = await all_items(api, f"/learningplan/v1/learningplans/{lp['learning_plan_id']}/courses")
        assert [c["id_course"] for c in courses] == lp["course_ids"]
        assert {"id_course", "name", "code"} <= set(courses[0])
    one = (await api.get(f"/learningplan/v1/learningplans/{lps[0]['learning_plan_id']}")).json()["data"]
    assert one["code"] == lps[0]["code"]
    found = (await api.get("/learningplan/v1/learningplans", params={"search_text": lps[1]["code"]})).json()["data"]["items"]
    assert [lp["learning_plan_id"] for lp in found] == [lps[1]["learning_plan_id"]]


async def test_lp_enrollments_status_columns_only_when_asked(api, demo):
    lp_id = demo.learning_plans[0]["learning_plan_id"]
    plain = (await api.get("/learningplan/v1/learningplans/enrollments", params={"learning_plan_id[]": lp_id})).json()["data"][
        "items"
    ]
    assert plain and "enrollment_status" not in plain[0] and "enrollment_completion_date" not in plain[0]
    assert {"user_id", "learning_plan_id", "enrollment_created_at"} <= set(plain[0])
    params = [
        ("learning_plan_id[]", lp_id),
        ("extra_fields[]", "enrollment_status"),
        ("extra_fields[]", "enrollment_completion_date"),
        ("extra_fields[]", "enrollment_completion_percentage"),
    ]
    rich = (await api.get("/learningplan/v1/learningplans/enrollments", params=params)).json()["data"]["items"]
    assert {"enrollment_status", "enrollment_completion_date", "enrollment_completion_percentage"} <= set(rich[0])
    statuses = {i["enrollment_status"] for i in rich}
    assert "completed" in statuses and statuses - {"completed"}  # completed and unfinished (demo data)
    for i in rich:
        assert (i["enrollment_completion_date"] is not None) == (i["enrollment_status"] == "completed")


async def test_lp_enrollment_filters(api, state):
    uid = next(iter(state.lpe_by_user))
    params = [("user_id[]", uid), ("extra_fields[]", "enrollment_status")]
    items = await all_items(api, "/learningplan/v1/learningplans/enrollments", params)
    assert {i["learning_plan_id"] for i in items} == set(state.lpe_by_user[uid])
    params = [("extra_fields[0]", "enrollment_status"), ("enrollment_status[0]", "completed")]
    items = await all_items(api, "/learningplan/v1/learningplans/enrollments", params)
    assert items and all(i["enrollment_status"] == "completed" for i in items)
    assert len(items) == sum(1 for r in state.lp_enrollments.values() if r["status"] == "completed")


async def test_learning_plan_completes_when_all_its_courses_are(api, state):
    lpe = next(r for r in state.lp_enrollments.values() if r["status"] != "completed")
    lp = state.learning_plans[lpe["learning_plan_id"]]
    uid = lpe["user_id"]
    open_courses = [c for c in lp["course_ids"] if state.enrollments[(c, uid)]["status"] != "completed"]
    params = [("learning_plan_id[]", lp["learning_plan_id"]), ("user_id[]", uid), ("extra_fields[]", "enrollment_status"),
              ("extra_fields[]", "enrollment_completion_date")]
    for cid in open_courses:
        item = (await api.get("/learningplan/v1/learningplans/enrollments", params=params)).json()["data"]["items"][0]
        assert item["enrollment_status"] != "completed" and item["enrollment_completion_date"] is None
        r = await api.put(f"/learn/v1/enrollments/{cid}/{uid}", json={"status": "completed"})
        assert r.status_code == 200
    item = (await api.get("/learningplan/v1/learningplans/enrollments", params=params)).json()["data"]["items"][0]
    assert item["enrollment_status"] == "completed"
    assert item["enrollment_completion_date"] == max(state.enrollments[(c, uid)]["completed_at"] for c in lp["course_ids"])


# -- external training (§5, [I]) -----------------------------------------------------------------------


async def test_external_training_lifecycle(api, demo):
    uid = demo.users[2]["user_id"]
    body = {
        "user_id": uid,
        "course_name": "Cloud Security Practitioner",
        "course_type": "Credly badge",
        "date_from": "2025-01-02",
        "date_to": "2027-01-02 00:00:00",
        "score": 0,
        "credits": 1.5,
        "training_institute": "Acme Academy",
    }
    r = await api.post("/learn/v1/external_training", json=body)
    assert r.status_code == 201, r.text
    tid = r.json()["data"]["id"]
    assert isinstance(tid, int)
    items = (await api.get("/learn/v1/external_training", params={"user_id[]": uid})).json()["data"]["items"]
    assert len(items) == 1
    item = items[0]
    assert item["id"] == tid and item["status"] == "approved" and item["user_id"] == uid
    assert item["course_name"] == body["course_name"] and item["training_institute"] == "Acme Academy"
    assert item["date_from"] == "2025-01-02 00:00:00" and item["credits"] == 1.5

    r = await api.put(f"/learn/v1/external_training/{tid}", json={"date_to": "2028-01-02 00:00:00"})
    assert r.status_code == 200 and r.json()["data"]["id"] == tid
    item = (await api.get("/learn/v1/external_training", params={"user_id[]": uid})).json()["data"]["items"][0]
    assert item["date_to"] == "2028-01-02 00:00:00" and item["course_name"] == body["course_name"]

    assert (await api.delete(f"/learn/v1/external_training/{tid}")).status_code == 200
    assert (await api.get("/learn/v1/external_training", params={"user_id[]": uid})).json()["data"]["items"] == []
    assert_error(await api.delete(f"/learn/v1/external_training/{tid}"), 404)
    assert_error(await api.put(f"/learn/v1/external_training/{tid}", json={"score": 1}), 404)


@pytest.mark.parametrize(
    "change, part",
    [
        ({"user_id": None}, "user_id"),
        ({"user_id": 1}, "not found"),
        ({"course_name": ""}, "course_name"),
        ({"date_from": None}, "date_from"),
        ({"date_from": "13/01/2025"}, "date_from"),
        ({"date_to": "2020-01-01"}, "date_to"),
        ({"score": "high"}, "score"),
    ],
)
async def test_external_training_validation(api, demo, change, part):
    body = {"user_id": demo.users[0]["user_id"], "course_name": "X", "date_from": "2025-01-01", "date_to": "2026-01-01"}
    body.update(change)
    assert_error(await api.post("/learn/v1/external_training", json=body), 400, part)


# -- certifications and awards (§6, [I]) -----------------------------------------------------------------


async def test_certifications_list(api, demo):
    items = await all_items(api, "/learn/v1/certification")
    assert [c["id_cert"] for c in items] == [c["id_cert"] for c in demo.certifications]
    assert set(items[0]) == {"id_cert", "code", "title", "description", "duration", "duration_unit"}


async def test_awards_list_and_filters(api, demo, state):
    items = await all_items(api, "/certification/v1/awards")
    assert len(items) == len(demo.awards)
    assert set(items[0]) == {
        "id_award",
        "id_cert",
        "user_id",
        "issued_on",
        "expire_on",
        "status",
        "source",
        "external_link",
        "date_last_updated",
    }
    assert any(i["expire_on"] is None for i in items) and any(i["expire_on"] for i in items)
    uid = demo.awards[0]["user_id"]
    mine = await all_items(api, "/certification/v1/awards", [("user_id[]", uid)])
    assert {i["id_award"] for i in mine} == {a["id_award"] for a in demo.awards if a["user_id"] == uid}
    cert = demo.awards[0]["id_cert"]
    of_cert = await all_items(api, "/certification/v1/awards", [("id_cert[]", cert)])
    assert len(of_cert) == sum(1 for a in demo.awards if a["id_cert"] == cert)
    both = await all_items(api, "/certification/v1/awards", [("id_cert[]", cert), ("user_id[]", uid)])
    assert [i["id_award"] for i in both] == [demo.awards[0]["id_award"]]


async def test_award_lifecycle(api, state, demo):
    uid = next(u for u in state.users if not state.awards_by_user.get(u))
    cert = next(c for c in demo.certifications if c["validity_days"])
    body = {
        "id_cert": cert["id_cert"],
        "user_id": uid,
        "issued_on": "2026-02-03 04:05:06",
        "expire_on": None,
        "source": "credly",
        "external_link": "https://www.credly.com/badges/abc",
    }
    r = await api.post("/certification/v1/awards", json=body)
    assert r.status_code == 201, r.text
    aid = r.json()["data"]["id_award"]
    item = (await api.get(f"/certification/v1/awards/{aid}")).json()["data"]
    assert item["issued_on"] == "2026-02-03 04:05:06" and item["expire_on"] is None and item["source"] == "credly"
    assert item["external_link"] == "https://www.credly.com/badges/abc" and item["status"] == "active"

    assert_error(await api.post("/certification/v1/awards", json=body), 409, "already holds")

    r = await api.put(f"/certification/v1/awards/{aid}", json={"expire_on": "2027-02-03"})
    assert r.status_code == 200
    assert state.awards[aid]["expire_on"] == "2027-02-03 00:00:00"
    assert_error(await api.put(f"/certification/v1/awards/{aid}", json={"expire_on": "2020-01-01"}), 400, "expire_on")

    assert (await api.delete(f"/certification/v1/awards/{aid}")).status_code == 200
    assert_error(await api.get(f"/certification/v1/awards/{aid}"), 404)
    assert_error(await api.delete(f"/certification/v1/awards/{aid}"), 404)


async def test_award_defaults_expiry_from_certification_validity(api, state, demo):
    uid = next(u for u in state.users if not state.awards_by_user.get(u))
    cert = next(c for c in demo.certifications if c["validity_days"] == 365)
    r = await api.post(
        "/certification/v1/awards", json={"id_cert": cert["id_cert"], "user_id": uid, "issued_on": "2026-01-01 00:00:00"}
    )
    rec = state.awards[r.json()["data"]["id_award"]]
    assert rec["expire_on"] == "2027-01-01 00:00:00"


async def test_expired_award_has_status_expired(api, state):
    rec = next(a for a in state.awards.values() if a["expire_on"] and a["expire_on"] < "2026-01-01")
    item = (await api.get(f"/certification/v1/awards/{rec['id_award']}")).json()["data"]
    assert item["status"] == "expired"


@pytest.mark.parametrize(
    "body, part",
    [
        ({"user_id": 10001}, "id_cert"),
        ({"id_cert": 999, "user_id": 10001}, "not found"),
        ({"id_cert": 1}, "user_id"),
        ({"id_cert": 1, "user_id": 5}, "not found"),
        ({"id_cert": "one", "user_id": 10001}, "integer"),
        ({"id_cert": 1, "user_id": 10001, "issued_on": "soon"}, "issued_on"),
    ],
)
async def test_award_validation(api, body, part):
    assert_error(await api.post("/certification/v1/awards", json=body), 400, part)


async def test_put_user_changes_the_email_and_refuses_one_taken(api, demo):
    """Issue 12: `PUT /manage/v1/user/{id}` (docebo.md §users) so e-mail changes are testable end to end."""
    first, other = demo.users[3], demo.users[4]
    r = await api.put(f"/manage/v1/user/{first['user_id']}", json={"email": "renamed@example.org", "firstname": "Ren"})
    assert r.status_code == 200, r.text
    detail = (await api.get(f"/manage/v1/user/{first['user_id']}")).json()["data"]["user_data"]
    assert (detail["email"], detail["first_name"]) == ("renamed@example.org", "Ren")
    found = await api.get("/manage/v1/user", params={"search_text": "renamed@example.org", "match_type": "full"})
    assert [u["user_id"] for u in found.json()["data"]["items"]] == [str(first["user_id"])]
    gone = await api.get("/manage/v1/user", params={"search_text": first["email"], "match_type": "full"})
    assert gone.json()["data"]["items"] == []
    taken = await api.put(f"/manage/v1/user/{first['user_id']}", json={"email": other["email"]})
    assert taken.status_code == 400 and other["email"] in taken.text
    missing = await api.put("/manage/v1/user/99999999", json={"email": "x@example.org"})
    assert missing.status_code == 404
