"""Applying one Credly badge in Docebo for F5/F6 (SPEC F5, E1, L1, O2, O3, I2): create, update or remove
the learner's external training and certification award, with the ledger protocol.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from services.flows import rules
from services.flows.base import Job
from services.flows.lookups import (
    HELD_STATES,
    Learner,
    active_mappings,
    badge_template_id,
    badge_template_name,
    template_rows,
    template_usable,
)
from services.store import ledger


@dataclasses.dataclass
class DoceboSide:
    """What Docebo holds for the learners concerned (read in bulk)."""

    certs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    trainings: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # user id →
    awards: dict[tuple[str, str], list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # (user, id_cert) →

    def add_training(self, t: dict[str, Any]) -> None:
        self.trainings.setdefault(str(t.get("user_id", t.get("id_user", ""))), []).append(t)

    def add_award(self, a: dict[str, Any]) -> None:
        self.awards.setdefault((str(a.get("user_id", "")), str(a.get("id_cert", ""))), []).append(a)


def _training_id(t: dict[str, Any]) -> str:
    return str(t.get("id", t.get("id_external_training", t.get("external_training_id", ""))))


def _award_id(a: dict[str, Any]) -> str:
    return str(a.get("id_award", a.get("id", "")))


def _returned(created: Any) -> dict[str, Any]:
    """The object a Docebo create call returned (a dict, or a recovered value)."""
    return created if isinstance(created, dict) else getattr(created, "value", {}) or {}


def mappings_by_template(job: Job) -> dict[str, list[dict[str, Any]]]:
    """Active mappings with a Docebo side for badges (external training and/or certification),
    by lower-case template id; templates switched off in T are left out."""
    rows = template_rows(job)
    out: dict[str, list[dict[str, Any]]] = {}
    for m in active_mappings(job):
        if not (m["import_as_external_training"] or str(m["certification_code"] or "").strip()):
            continue
        tid = str(m["template_id"]).lower()
        if template_usable(rows, tid):
            out.setdefault(tid, []).append(m)
    return out


def _template_name(job: Job, badge: dict[str, Any], maps: list[dict[str, Any]]) -> str:
    tid = badge_template_id(badge)
    row = template_rows(job).get(tid)
    if row:
        return row["name"]
    return badge_template_name(badge) or (maps[0]["template_name"] if maps else "") or tid


def _badge_url(badge: dict[str, Any]) -> str:
    return str(badge.get("badge_url") or badge.get("accept_badge_url") or "")


def _obj(learner_or_email: Learner | str, badge: dict[str, Any]) -> str:
    email = learner_or_email.email if isinstance(learner_or_email, Learner) else learner_or_email
    return f"{str(email).lower()} / badge {badge.get('id')}"


async def apply_badge(
    job: Job,
    badge: dict[str, Any],
    learner: Learner | None,
    maps: list[dict[str, Any]],
    side: DoceboSide,
    *,
    deleted: bool = False,
    replaced_by_other_template: bool | None = None,
    follow_replacement: bool = True,
) -> None:
    """F5 for one badge (see the module doc). `deleted`: the badge was deleted in Credly.
    `replaced_by_other_template`: for a replaced badge, whether its replacement has another
    template (None: unknown — the replacement's own event handles it)."""
    email = str(badge.get("recipient_email") or "")
    obj = _obj(learner or email, badge)
    state = "deleted" if deleted else str(badge.get("state") or "")
    if learner is None:
        job.skip(obj, f"no Docebo user has the e-mail {email!r}: badge {badge.get('id')} skipped (F5)", level="warning")
        return
    if str(badge.get("issuer_earner_id") or "") == learner.user_id:
        job.skip(
            obj, f"badge {badge.get('id')} was issued by credly-console for Docebo user {learner.user_id}: not imported back (L1)"
        )
        return
    tid = badge_template_id(badge)
    # A replacement badge: objects of the replaced badge under ANOTHER template go (F5).
    replaced = str(badge.get("replaces_badge_id") or "")
    if follow_replacement and replaced and state in HELD_STATES:
        for e in ledger.find_by_origin(job.store, "credly_badge", replaced):
            if e.object_type == "external_training" and e.target != tid:
                await _delete_training_entry(
                    job, learner, e, side, f"badge {replaced} was replaced by badge {badge.get('id')} of another template"
                )
    if not maps:
        job.skip(obj, f"no active mapping for the template of badge {badge.get('id')}: nothing to import")
        return
    name = _template_name(job, badge, maps)
    if state in HELD_STATES:
        for m in maps:
            if m["import_as_external_training"]:
                await _ensure_training(job, learner, badge, tid, name, side)
            if str(m["certification_code"] or "").strip():
                await _ensure_award(job, learner, badge, str(m["certification_code"]).strip(), side)
        return
    if state == "rejected":
        job.skip(obj, f"badge {badge.get('id')} ({name!r}) was rejected by the learner: ignored (F5)")
        return
    if state == "replaced":
        if replaced_by_other_template:
            for m in maps:
                if m["import_as_external_training"]:
                    await _remove_training(
                        job,
                        learner,
                        badge,
                        tid,
                        name,
                        side,
                        why=f"badge {badge.get('id')} was replaced by a badge of another template",
                    )
            return
        job.skip(
            obj,
            f"badge {badge.get('id')} was replaced by badge {badge.get('replacement_badge_id')}: handled with its replacement",
        )
        return
    if state in ("revoked", "deleted"):
        if not job.settings.sync_revocation:
            job.skip(
                obj,
                f"badge {badge.get('id')} ({name!r}) was {state} in Credly; SYNC_REVOCATION is false: the Docebo objects are "
                "kept",
            )
            return
        why = f"badge {badge.get('id')} was {state} in Credly"
        for m in maps:
            if m["import_as_external_training"]:
                await _remove_training(job, learner, badge, tid, name, side, why=why)
            if str(m["certification_code"] or "").strip():
                await _remove_award(job, learner, badge, str(m["certification_code"]).strip(), side, why=why)
        return
    job.skip(obj, f"badge {badge.get('id')} is in state {state!r}: nothing to do")


# -- external trainings --------------------------------------------------------------------------


def _training_body(job: Job, learner: Learner, badge: dict[str, Any], name: str) -> dict[str, Any]:
    issued = rules.parse_datetime(badge.get("issued_at")) or job.ctx.now()
    return {
        "user_id": int(learner.user_id) if learner.user_id.isdigit() else learner.user_id,
        "course_name": name,
        "course_type": "Credly badge",
        "date_from": rules.docebo_time(issued),
        "date_to": rules.docebo_expiry_from_badge(badge),
        "training_institute": job.settings.external_training_institute_name,
    }


def _training_matches(t: dict[str, Any], body: dict[str, Any]) -> bool:
    return (
        str(t.get("course_name") or "") == body["course_name"]
        and str(t.get("training_institute") or "") == body["training_institute"]
        and rules.same_day(t.get("date_from"), body["date_from"])
        and rules.same_day(t.get("date_to"), body["date_to"])
    )


def _find_training_by_content(job: Job, learner: Learner, name: str, side: DoceboSide) -> dict[str, Any] | None:
    institute = job.settings.external_training_institute_name.strip().casefold()
    for t in side.trainings.get(learner.user_id, []):
        if (
            str(t.get("course_name") or "").strip().casefold() == name.strip().casefold()
            and str(t.get("training_institute") or "").strip().casefold() == institute
        ):
            return t
    return None


def _training_by_id(learner: Learner, side: DoceboSide, object_id: str) -> dict[str, Any] | None:
    return next((t for t in side.trainings.get(learner.user_id, []) if _training_id(t) == object_id), None)


async def _ensure_training(job: Job, learner: Learner, badge: dict[str, Any], tid: str, name: str, side: DoceboSide) -> None:
    store = job.store
    obj = f"Docebo user {learner.user_id} / external training {name!r}"
    body = _training_body(job, learner, badge, name)
    details = {
        "badge_id": str(badge.get("id")),
        "template_id": tid,
        "issued_at": body["date_from"],
        "expires_at": body["date_to"],
    }
    entry = ledger.live_entry(store, "external_training", learner.user_id, tid)
    training: dict[str, Any] | None = None
    if entry is not None and entry.status == "active":
        training = _training_by_id(learner, side, entry.object_id)
        if training is None:
            job.skip(
                obj,
                f"external training {entry.object_id} created by credly-console is no longer in Docebo (deleted there): not "
                "created again",
            )
            return
    elif entry is not None:  # an intent
        if not ledger.intent_is_orphaned(store, entry, job.run_id):
            job.skip(obj, f"run {entry.run_id} is creating this external training right now")
            return
        training = _find_training_by_content(job, learner, name, side)
        if training is not None and not job.dry_run:
            entry = ledger.recover(store, entry, _training_id(training), details=details)
            job.rec.info(f"recovered external training {_training_id(training)} created by an interrupted run", object=obj)
    else:
        training = _find_training_by_content(job, learner, name, side)
        if training is not None and not job.dry_run:
            entry = ledger.record_active(
                store,
                object_type="external_training",
                subject=learner.user_id,
                target=tid,
                object_id=_training_id(training),
                origin_type="credly_badge",
                origin_id=str(badge.get("id")),
                details=details,
                run_id=job.run_id,
            )
    if training is not None:
        if _training_matches(training, body):
            if entry is not None and not job.dry_run and entry.origin_id != str(badge.get("id")):
                ledger.update_details(store, entry.id, details, origin_id=str(badge.get("id")))
            return
        message = (
            f"update external training {_training_id(training)} of {learner.label} from badge {badge.get('id')}: "
            f"{body['course_name']!r}, {body['date_from']} → {body['date_to'] or 'no expiry'}"
        )
        if job.dry_run:
            job.rec.count("updated")
            job.action("update_external_training", obj, message)
            return
        await job.docebo.update_external_training(_training_id(training), body)
        if entry is not None:
            ledger.update_details(store, entry.id, details, origin_id=str(badge.get("id")))
        job.rec.count("updated")
        job.action("update_external_training", obj, message)
        return
    message = (
        f"create external training {name!r} for {learner.label} from badge {badge.get('id')} ({body['date_from']} → "
        f"{body['date_to'] or 'no expiry'})"
    )
    if job.dry_run:
        job.rec.count("created")
        job.action("create_external_training", obj, message)
        return
    created = await ledger.create_once(
        store,
        ledger.Intent("external_training", learner.user_id, tid, "credly_badge", str(badge.get("id"))),
        details,
        lambda: job.docebo.create_external_training(body),
        lambda result: _training_id(_returned(result)),
        run_id=job.run_id,
        entry=entry,
    )
    if created.conflict is not None:
        job.skip(obj, f"another run is creating this external training ({created.conflict})")
        return
    new_id = created.object_id
    side.add_training({**body, "id": new_id})
    job.rec.count("created")
    job.action("create_external_training", obj, message + f": id {new_id}")


async def _delete_training_entry(job: Job, learner: Learner, entry: ledger.LedgerEntry, side: DoceboSide, why: str) -> None:
    obj = f"Docebo user {learner.user_id} / external training {entry.object_id}"
    if entry.status != "active":
        return
    message = f"delete external training {entry.object_id} of {learner.label}: {why}"
    if job.dry_run:
        job.rec.count("deleted")
        job.action("delete_external_training", obj, message)
        return
    from services.core.errors import NotFoundError

    try:
        await job.docebo.delete_external_training(entry.object_id)
    except NotFoundError:
        job.rec.info(f"external training {entry.object_id} was already gone from Docebo", object=obj)
    ledger.mark(job.store, entry.id, "deleted")
    job.rec.count("deleted")
    job.action("delete_external_training", obj, message)


async def _remove_training(
    job: Job, learner: Learner, badge: dict[str, Any], tid: str, name: str, side: DoceboSide, *, why: str
) -> None:
    obj = f"Docebo user {learner.user_id} / external training {name!r}"
    entry = ledger.live_entry(job.store, "external_training", learner.user_id, tid)
    if entry is not None:
        if entry.status == "active" and entry.origin_id == str(badge.get("id")):
            await _delete_training_entry(job, learner, entry, side, why)
        else:
            job.skip(
                obj, f"the external training of {name!r} belongs to badge {entry.origin_id}, not to badge {badge.get('id')}: kept"
            )
        return
    training = _find_training_by_content(job, learner, name, side)
    if training is None:
        job.skip(obj, f"{learner.label} has no external training {name!r}: nothing to delete")
        return
    message = f"delete external training {_training_id(training)} of {learner.label}: {why}"
    if job.dry_run:
        job.rec.count("deleted")
        job.action("delete_external_training", obj, message)
        return
    await job.docebo.delete_external_training(_training_id(training))
    job.rec.count("deleted")
    job.action("delete_external_training", obj, message)


# -- certification awards ------------------------------------------------------------------------


def _award_body(job: Job, learner: Learner, badge: dict[str, Any], id_cert: Any) -> dict[str, Any]:
    issued = rules.parse_datetime(badge.get("issued_at")) or job.ctx.now()
    return {
        "id_cert": id_cert,
        "user_id": int(learner.user_id) if learner.user_id.isdigit() else learner.user_id,
        "issued_on": rules.docebo_time(issued),
        "expire_on": rules.docebo_expiry_from_badge(badge),
        "source": "Credly",
        "external_link": _badge_url(badge),
    }


def _award_matches(a: dict[str, Any], body: dict[str, Any]) -> bool:
    return (
        rules.same_day(a.get("issued_on"), body["issued_on"])
        and rules.same_day(a.get("expire_on"), body["expire_on"])
        and str(a.get("external_link") or "") == body["external_link"]
    )


async def _ensure_award(job: Job, learner: Learner, badge: dict[str, Any], code: str, side: DoceboSide) -> None:
    store = job.store
    obj = f"Docebo user {learner.user_id} / certification {code}"
    cert = side.certs.get(code)
    if cert is None:
        job.skip(
            obj, f"certification code {code!r} does not exist in Docebo: not awarded (check the mappings, M3)", level="warning"
        )
        return
    id_cert = cert.get("id_cert")
    body = _award_body(job, learner, badge, id_cert)
    details = {
        "badge_id": str(badge.get("id")),
        "template_id": badge_template_id(badge),
        "issued_at": body["issued_on"],
        "expires_at": body["expire_on"],
    }
    entry = ledger.live_entry(store, "certification_award", learner.user_id, code)
    awards = [
        a
        for a in side.awards.get((learner.user_id, str(id_cert)), [])
        if str(a.get("status") or "").lower() not in ("revoked", "deleted")
    ]
    award = awards[0] if awards else None
    if entry is not None and entry.status == "active":
        award = next((a for a in awards if _award_id(a) == entry.object_id), award)
        if award is None:
            job.skip(
                obj,
                f"award {entry.object_id} created by credly-console is no longer in Docebo (revoked there): not awarded again",
            )
            return
    elif entry is not None:
        if not ledger.intent_is_orphaned(store, entry, job.run_id):
            job.skip(obj, f"run {entry.run_id} is awarding this certification right now")
            return
        if award is not None and not job.dry_run:
            entry = ledger.recover(store, entry, _award_id(award), details=details)
            job.rec.info(f"recovered award {_award_id(award)} created by an interrupted run", object=obj)
    elif award is not None and not job.dry_run:
        entry = ledger.record_active(
            store,
            object_type="certification_award",
            subject=learner.user_id,
            target=code,
            object_id=_award_id(award),
            origin_type="credly_badge",
            origin_id=str(badge.get("id")),
            details=details,
            run_id=job.run_id,
        )
    if award is not None:
        if _award_matches(award, body):
            if entry is not None and not job.dry_run and entry.origin_id != str(badge.get("id")):
                ledger.update_details(store, entry.id, details, origin_id=str(badge.get("id")))
            return
        message = (
            f"update award {_award_id(award)} of certification {code!r} for {learner.label} from badge {badge.get('id')}: "
            f"{body['issued_on']} → {body['expire_on'] or 'no expiry'}"
        )
        if job.dry_run:
            job.rec.count("updated")
            job.action("update_certification_award", obj, message)
            return
        await job.docebo.update_certification_award(
            _award_id(award), {k: v for k, v in body.items() if k not in ("id_cert", "user_id")}
        )
        if entry is not None:
            ledger.update_details(store, entry.id, details, origin_id=str(badge.get("id")))
        job.rec.count("updated")
        job.action("update_certification_award", obj, message)
        return
    message = (
        f"award certification {code!r} to {learner.label} from badge {badge.get('id')} ({body['issued_on']} → "
        f"{body['expire_on'] or 'no expiry'})"
    )
    if job.dry_run:
        job.rec.count("created")
        job.action("create_certification_award", obj, message)
        return
    created = await ledger.create_once(
        store,
        ledger.Intent("certification_award", learner.user_id, code, "credly_badge", str(badge.get("id"))),
        details,
        lambda: job.docebo.create_certification_award(body),
        lambda result: _award_id(_returned(result)),
        run_id=job.run_id,
        entry=entry,
    )
    if created.conflict is not None:
        job.skip(obj, f"another run is awarding this certification ({created.conflict})")
        return
    new_id = created.object_id
    side.add_award({**body, "id_award": new_id})
    job.rec.count("created")
    job.action("create_certification_award", obj, message + f": award {new_id}")


async def _remove_award(job: Job, learner: Learner, badge: dict[str, Any], code: str, side: DoceboSide, *, why: str) -> None:
    store = job.store
    obj = f"Docebo user {learner.user_id} / certification {code}"
    entry = ledger.live_entry(store, "certification_award", learner.user_id, code)
    award_id = ""
    if entry is not None:
        if entry.status != "active" or entry.origin_id != str(badge.get("id")):
            job.skip(
                obj,
                f"the award of certification {code!r} belongs to badge {entry.origin_id}, not to badge {badge.get('id')}: kept",
            )
            return
        award_id = entry.object_id
    else:
        cert = side.certs.get(code)
        awards = side.awards.get((learner.user_id, str((cert or {}).get("id_cert"))), []) if cert else []
        if awards:
            award_id = _award_id(awards[0])
    if not award_id:
        job.skip(obj, f"{learner.label} has no award of certification {code!r}: nothing to revoke")
        return
    message = f"revoke award {award_id} of certification {code!r} from {learner.label}: {why}"
    if job.dry_run:
        job.rec.count("revoked")
        job.action("revoke_certification_award", obj, message)
        return
    from services.core.errors import NotFoundError

    try:
        await job.docebo.delete_certification_award(award_id)
    except NotFoundError:
        job.rec.info(f"award {award_id} was already gone from Docebo", object=obj)
    if entry is not None:
        ledger.mark(store, entry.id, "revoked")
    job.rec.count("revoked")
    job.action("revoke_certification_award", obj, message)
