"""Bad input, property-based (hypothesis; issue 8): whatever comes in, a clear 4xx or error
message, never a 500 or a traceback, nothing stored or half-stored.

Already covered elsewhere and not repeated here: any JSON or raw body posted to either webhook
endpoint (tests/serve/test_serve_receiver.py). Added here:

* M4: any CSV file given to `credly-console mappings import` — valid, broken quoting, wrong
  headers, junk cells, semicolons, BOMs, not UTF-8 — exits 0 or 1 with an `error:` message,
  changes nothing when refused, and imports the whole file when accepted;
* S1/S2: any value for any setting through `credly-console settings set`, and multi-key edits
  through `set_settings`: refused with a message naming the key, nothing written; accepted
  values are stored normalised;
* W1: any `Authorization` header on the Docebo endpoint with Basic auth switched on → 401 (or
  200 with the right credentials), never a 500, nothing stored when refused;
* W2/F3/F4/F5: a delivery that was accepted (its envelope is fine) but whose payload is nonsense
  is run through the real-time handlers against the sandboxes: the run ends succeeded, skipped or
  failed with a plain reason — never an "unexpected error" (a bug with a traceback) — and nothing
  is created in Credly or Docebo and no ledger intent is left half-done.

Example counts are kept modest (the whole suite stays fast).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from console.cli import cli
from services.core.config import database_path
from services.store.db import Store
from services.store.mappings import CSV_HEADER
from services.store.settings import SETTING_KEYS, SettingError, get_setting, set_settings, validate_setting
from tests.serve.test_serve_receiver import SECRET, completion_body, db_path, make_client, rows, writer  # noqa: F401  (fixtures)
from tests.support.store_rows import T1, T2, put_template, table

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
cell = st.one_of(
    st.sampled_from([T1, T2, T1.upper(), "", " ", "true", "false", "TRUE", "yes", "1", "0", "42", "0042", "-3",
                     "CERT-1", "Python Basics", '"', '""', ",", ";", "\n", "\r\n", "a\x00b", "\ufeff"]),
    junk,
)
header = st.one_of(
    st.just(list(CSV_HEADER)),
    st.permutations(list(CSV_HEADER)),
    st.lists(st.sampled_from(list(CSV_HEADER) + ["", "Template_ID ", "extra"]), min_size=1, max_size=7),
    st.lists(junk, max_size=4),
)


@st.composite
def csv_files(draw) -> bytes:
    """A mappings CSV as bytes: mostly well-formed rows of mixed cells, sometimes hand-made
    (broken quoting, ragged rows), with a delimiter of , or ;, an optional BOM, or not UTF-8."""
    kind = draw(st.sampled_from(["csv", "csv", "csv", "raw", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    head = draw(header)
    body = draw(st.lists(st.lists(cell, min_size=0, max_size=len(head) + 2), max_size=6))
    delimiter = draw(st.sampled_from([",", ";"]))
    if kind == "csv":
        out = io.StringIO(newline="")
        w = csv.writer(out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
        for record in [head, *body]:
            w.writerow(record)
        text = out.getvalue()
    else:
        text = "\n".join(delimiter.join(r) for r in [head, *body])
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1"])), errors="replace")


@pytest.fixture
def seeded_db():
    """The CLI's database (CREDLY_CONSOLE_DB) with two templates and two mappings."""
    from services.store.mappings import MappingInput, add_mapping

    with Store(database_path()) as s:
        put_template(s, T1, "Python Basics")
        put_template(s, T2, "Cloud Basics")
        add_mapping(s, MappingInput(T1, learning_plan_id="7"))
        add_mapping(s, MappingInput(T2, certification_code="CERT-2", import_as_external_training=True))
    return database_path()


def _no_crash(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + (result.stderr or "")


@FAST
@given(data=csv_files(), replace=st.booleans())
def test_M4_any_csv_file_is_imported_whole_or_refused_with_row_errors_and_nothing_changed(seeded_db, tmp_path, data, replace):
    path = tmp_path / "import.csv"
    path.write_bytes(data)
    with Store(seeded_db) as s:
        before = table(s)
    result = CliRunner().invoke(cli, ["mappings", "import", str(path)] + (["--replace"] if replace else []))
    _no_crash(result)
    assert result.exit_code in (0, 1), result.output
    event(f"exit {result.exit_code}")
    with Store(seeded_db) as s:
        after = table(s)
    if result.exit_code == 1:
        assert result.stderr.startswith("error: "), result.stderr
        assert after == before, "a refused file changed the table (M4 all or nothing)"
        return
    assert result.stdout.startswith("imported ")
    # accepted: the whole file is in the table — importing it again changes nothing
    again = CliRunner().invoke(cli, ["mappings", "import", str(path), "--dry-run"])
    _no_crash(again)
    assert again.exit_code == 0 and ": 0 added, 0 updated" in again.stdout, again.stdout


setting_value = st.one_of(
    junk,
    st.sampled_from(["true", "false", "True", " false ", "", "  ", "0", "36500", "36501", "-1", "1e3", "٣",
                     "2024-02-29", "2023-02-29", "2024-03-01T10:00:00-08:00", "2024-03-01T23:30:00-08:00",
                     "DOCEBO", "docebo", "CREDLY ", "BOTH", "admin@acme.example", "a@b", "x" * 300,
                     "line\nbreak", "tab\there", "nul\x00", "=cmd|' /C calc'!A0"]),
)


@FAST
@given(key=st.sampled_from(list(SETTING_KEYS) + ["NOT_A_KEY", "sync_revocation"]), value=setting_value)
def test_S1_S2_any_setting_value_is_stored_normalised_or_refused_naming_key_and_value(key, value):
    with Store(database_path()) as s:
        before = {k: get_setting(s, k) for k in SETTING_KEYS}
    result = CliRunner().invoke(cli, ["settings", "set", key, value])
    _no_crash(result)
    assert result.exit_code in (0, 1), result.output
    with Store(database_path()) as s:
        after = {k: get_setting(s, k) for k in SETTING_KEYS}
    if result.exit_code == 1:
        assert result.stderr.startswith(f"error: {key}: "), result.stderr
        assert after == before
        with pytest.raises(SettingError):
            validate_setting(key, value)
        return
    normalised = validate_setting(key, value)
    assert after == {**before, key: normalised}


@FAST
@given(values=st.dictionaries(st.sampled_from(SETTING_KEYS), setting_value, min_size=2, max_size=5))
def test_S2_a_multi_key_edit_is_written_whole_or_not_at_all(store, values):
    before = {k: get_setting(store, k) for k in SETTING_KEYS}
    try:
        stored = set_settings(store, values)
    except SettingError as exc:
        assert exc.key in values and str(exc).startswith(f"{exc.key}: ")
        assert {k: get_setting(store, k) for k in SETTING_KEYS} == before
        return
    assert {k: get_setting(store, k) for k in SETTING_KEYS} == {**before, **stored}


latin1 = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
auth_header = st.one_of(
    latin1,
    latin1.map(lambda t: "Basic " + t),
    st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.tuples(latin1, latin1).map(lambda p: "Basic " + base64.b64encode(f"{p[0]}:{p[1]}".encode()).decode()),
    st.just("Basic " + base64.b64encode(f"docebo:{SECRET}".encode()).decode()),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header_value=auth_header, n=st.integers(0, 10_000))
def test_W1_any_authorization_header_gets_401_or_200_never_500_nothing_stored_when_refused(writer, db_path, header_value, n):  # noqa: F811
    async def post() -> httpx.Response:
        async with make_client(writer, docebo_basic_auth_user="docebo") as client:
            return await client.post(f"/webhooks/docebo/{SECRET}", json=completion_body(f"wh-auth-{n}"),
                                     headers={"authorization": header_value.encode("latin-1")})

    before = len(rows(db_path))
    response = asyncio.run(post())
    right = header_value == "Basic " + base64.b64encode(f"docebo:{SECRET}".encode()).decode()
    if right:
        assert response.status_code == 200
        return
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate", "").startswith("Basic")
    assert len(rows(db_path)) == before


# -- accepted deliveries with nonsense payloads, through the real handlers ----------------------

scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=False), junk,
                   st.sampled_from(["1", "2", "101", "999999", "CERT-OP", "2025-01-01 00:00:00", "not a date"]))
json_any = st.recursive(scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(junk, c, max_size=3), max_leaves=6)
completion = st.fixed_dictionaries({}, optional={"user_id": scalar, "course_id": scalar, "status": scalar,
                                                 "completion_date": scalar, "fired_at": scalar, "extra": json_any})
certification = st.fixed_dictionaries({}, optional={
    "user_id": scalar, "certification_id": scalar, "certification_code": scalar, "award_id": scalar,
    "issued_on": scalar, "expire_on": scalar, "fired_at": scalar})
notice = st.fixed_dictionaries({"id": st.one_of(junk, st.uuids().map(str))},
                               optional={"organization_id": scalar, "event_type": st.sampled_from(
                                   ["badge.created", "badge.state.changed", "badge.deleted", "badge_template.changed",
                                    "badge_template.deleted", "nonsense"]), "occurred_at": scalar})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["completion", "certification", "badge", "template"]), data=st.data())
def test_W2_accepted_nonsense_payloads_end_in_a_plain_outcome_and_create_nothing(store, kind, data):
    from services.flows import handle_badge_event, handle_certification_event, handle_course_completion, handle_template_event
    from tests.flows.world import World, base_data
    from tests.support.world import completed

    if kind == "completion":
        payload = data.draw(completion)
    elif kind == "certification":
        payload = data.draw(certification)
        cert_event = data.draw(st.sampled_from(["certification.awarded", "certification.updated",
                                           "certification.revoked", "certification.nonsense"]))
    else:
        payload = data.draw(notice)

    async def go():
        w = World(store, base_data(enrollments=[completed(101, 1)]))
        try:
            w.configure()
            writes = w.writes()
            intents = store.db.execute("SELECT count(*) FROM ledger WHERE status = 'intent'").fetchone()[0]
            if kind == "completion":
                s = await handle_course_completion(w.ctx, payload)
            elif kind == "certification":
                s = await handle_certification_event(w.ctx, cert_event, payload)
            elif kind == "badge":
                s = await handle_badge_event(w.ctx, payload)
            else:
                s = await handle_template_event(w.ctx, payload)
            return s, writes, w.writes(), intents
        finally:
            await w.aclose()

    summary, writes_before, writes_after, intents = asyncio.run(go())
    event(f"{kind}: {summary.status}")
    assert summary.status in ("succeeded", "skipped", "failed"), summary.status
    assert "unexpected error" not in (summary.reason or ""), summary.reason
    assert "Traceback" not in (summary.reason or "")
    if summary.status == "failed":
        assert summary.reason.strip()
    # nothing created in either service (no course names a template, no mapping exists) and no
    # ledger intent left behind
    assert writes_after == writes_before
    assert store.db.execute("SELECT count(*) FROM ledger WHERE status = 'intent'").fetchone()[0] == intents
