"""External training (api/docebo.md §5, [I]) and certifications and their awards (§6, [I]) of
the Docebo sandbox. One award per user and certification (a second is a 409); awarding, updating
and revoking fire the ``certification.*`` webhooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from services.sandbox.docebo.records import DoceboError, as_datetime, as_int, fmt, parse_date
from services.sandbox.docebo.tenant import DoceboTenant


class AwardRecords(DoceboTenant):
    """External trainings, certifications and awards."""

    # -- external training (§5, [I]) ------------------------------------------------------------------

    TRAINING_FIELDS = ("course_name", "course_type", "date_from", "date_to", "score", "credits", "training_institute")

    def _training_values(self, body: dict, *, creating: bool) -> dict:
        out: dict[str, Any] = {}
        if creating or "user_id" in body:
            uid = as_int(body.get("user_id"), "user_id") if body.get("user_id") not in (None, "") else None
            if uid is None:
                raise DoceboError(400, "Field 'user_id' is required")
            if uid not in self.users:
                raise DoceboError(400, f"User {uid} not found")
            out["user_id"] = uid
        if creating or "course_name" in body:
            name = body.get("course_name")
            if not isinstance(name, str) or not name.strip():
                raise DoceboError(400, "Field 'course_name' is required")
            out["course_name"] = name.strip()
        for key in ("course_type", "training_institute"):
            if key in body or creating:
                value = body.get(key)
                out[key] = "" if value is None else str(value)
        for key in ("date_from", "date_to"):
            if key in body or creating:
                out[key] = parse_date(body.get(key), key, required=creating and key == "date_from")
        for key in ("score", "credits"):
            if key in body or creating:
                value = body.get(key)
                if value in (None, ""):
                    out[key] = None
                else:
                    try:
                        out[key] = float(value)
                    except (TypeError, ValueError):
                        raise DoceboError(400, f"Field '{key}' must be a number, got {value!r}") from None
        date_from = out.get("date_from")
        date_to = out.get("date_to")
        if date_from and date_to and date_to < date_from:
            raise DoceboError(400, "Field 'date_to' must not be before 'date_from'")
        return out

    def create_training(self, body: dict) -> dict:
        values = self._training_values(body, creating=True)
        tid = self._take("training")
        stamp = fmt(self.now())
        rec = {"id": tid, **values, "status": "approved", "created_on": stamp, "updated_on": stamp}
        self.external_trainings[tid] = rec
        self.et_by_user.setdefault(rec["user_id"], {})[tid] = rec
        return rec

    def get_training(self, training_id: Any) -> dict:
        try:
            rec = self.external_trainings.get(int(training_id))
        except (TypeError, ValueError):
            rec = None
        if rec is None:
            raise DoceboError(404, f"External training {training_id} not found")
        return rec

    def update_training(self, training_id: Any, body: dict) -> dict:
        rec = self.get_training(training_id)
        values = self._training_values(body, creating=False)
        merged = {**rec, **values}
        if merged.get("date_from") and merged.get("date_to") and merged["date_to"] < merged["date_from"]:
            raise DoceboError(400, "Field 'date_to' must not be before 'date_from'")
        if values.get("user_id", rec["user_id"]) != rec["user_id"]:
            self.et_by_user[rec["user_id"]].pop(rec["id"], None)
            self.et_by_user.setdefault(values["user_id"], {})[rec["id"]] = rec
        rec.update(values)
        rec["updated_on"] = fmt(self.now())
        return rec

    def delete_training(self, training_id: Any) -> None:
        rec = self.get_training(training_id)
        del self.external_trainings[rec["id"]]
        self.et_by_user.get(rec["user_id"], {}).pop(rec["id"], None)

    def iter_trainings(self, user_ids: list[int] | None = None) -> Iterator[dict]:
        if user_ids is None:
            return iter(self.external_trainings.values())
        return (r for u in user_ids for r in self.et_by_user.get(u, {}).values())

    # -- certifications and awards (§6, [I]) ------------------------------------------------------------

    def _index_award(self, rec: dict) -> None:
        self.awards[rec["id_award"]] = rec
        self.awards_by_user.setdefault(rec["user_id"], {})[rec["id_award"]] = rec
        self.awards_by_cert.setdefault(rec["id_cert"], {})[rec["id_award"]] = rec

    def get_certification(self, id_cert: Any = None, *, code: str | None = None) -> dict:
        if code is not None:
            for known in self.certifications.values():
                if known["code"] == code:
                    return known
            raise DoceboError(404, f"Certification with code {code!r} not found")
        cert: dict | None
        try:
            cert = self.certifications.get(int(id_cert))
        except (TypeError, ValueError):
            cert = None
        if cert is None:
            raise DoceboError(404, f"Certification {id_cert} not found")
        return cert

    def get_award(self, award_id: Any) -> dict:
        try:
            rec = self.awards.get(int(award_id))
        except (TypeError, ValueError):
            rec = None
        if rec is None:
            raise DoceboError(404, f"Certification award {award_id} not found")
        return rec

    def award_status(self, rec: dict) -> str:
        if rec["expire_on"] and rec["expire_on"] <= fmt(self.now()):
            return "expired"
        return "active"

    def iter_awards(
        self, user_ids: list[int] | None = None, cert_ids: list[int] | None = None, updated_from: str | None = None
    ) -> Iterator[dict]:
        source = self._iter_awards(user_ids, cert_ids)
        if updated_from is None:
            return source
        return (r for r in source if r["updated_at"] >= updated_from)

    def _iter_awards(self, user_ids: list[int] | None, cert_ids: list[int] | None) -> Iterator[dict]:
        if user_ids is not None:
            source = (r for u in user_ids for r in self.awards_by_user.get(u, {}).values())
            if cert_ids is not None:
                certs = set(cert_ids)
                source = (r for r in source if r["id_cert"] in certs)
            return source
        if cert_ids is not None:
            return (r for c in cert_ids for r in self.awards_by_cert.get(c, {}).values())
        return iter(self.awards.values())

    def create_award(self, body: dict, *, batch: bool = False) -> dict:
        """Award a certification (fires `certification.awarded`). One award per user and
        certification: a second one is refused with 409 (update the existing award instead)."""
        if body.get("id_cert") in (None, "") and body.get("certification_code"):
            cert = self.get_certification(code=str(body["certification_code"]))
        else:
            if body.get("id_cert") in (None, ""):
                raise DoceboError(400, "Field 'id_cert' is required")
            cid = as_int(body.get("id_cert"), "id_cert")
            if cid not in self.certifications:
                raise DoceboError(400, f"Certification {cid} not found")
            cert = self.certifications[cid]
        if body.get("user_id") in (None, ""):
            raise DoceboError(400, "Field 'user_id' is required")
        uid = as_int(body.get("user_id"), "user_id")
        if uid not in self.users:
            raise DoceboError(400, f"User {uid} not found")
        for existing in self.awards_by_user.get(uid, {}).values():
            if existing["id_cert"] == cert["id_cert"]:
                raise DoceboError(
                    409, f"User {uid} already holds certification {cert['id_cert']} (award {existing['id_award']})"
                )
        issued = str(parse_date(body.get("issued_on"), "issued_on") or fmt(self.now()))
        if "expire_on" in body:
            expire = parse_date(body.get("expire_on"), "expire_on")
        elif cert.get("validity_days"):
            expire = fmt(as_datetime(issued) + timedelta(days=cert["validity_days"]))
        else:
            expire = None
        if expire and expire < issued:
            raise DoceboError(400, "Field 'expire_on' must not be before 'issued_on'")
        rec = {
            "id_award": self._take("award"),
            "id_cert": cert["id_cert"],
            "user_id": uid,
            "issued_on": issued,
            "expire_on": expire,
            "source": str(body.get("source") or ""),
            "external_link": str(body.get("external_link") or ""),
            "updated_at": fmt(self.now()),
        }
        self._index_award(rec)
        self.emit("certification.awarded", self.award_payload(rec), batch)
        return rec

    def update_award(self, award_id: Any, body: dict, *, batch: bool = False) -> dict:
        rec = self.get_award(award_id)
        changes: dict[str, Any] = {}
        if "issued_on" in body:
            changes["issued_on"] = parse_date(body["issued_on"], "issued_on", required=True)
        if "expire_on" in body:
            changes["expire_on"] = parse_date(body["expire_on"], "expire_on")
        for key in ("source", "external_link"):
            if key in body:
                changes[key] = "" if body[key] is None else str(body[key])
        merged = {**rec, **changes}
        if merged["expire_on"] and merged["expire_on"] < merged["issued_on"]:
            raise DoceboError(400, "Field 'expire_on' must not be before 'issued_on'")
        rec.update(changes)
        rec["updated_at"] = fmt(self.now())
        self.emit("certification.updated", self.award_payload(rec), batch)
        return rec

    def revoke_award(self, award_id: Any, *, batch: bool = False) -> dict:
        rec = self.get_award(award_id)
        del self.awards[rec["id_award"]]
        self.awards_by_user.get(rec["user_id"], {}).pop(rec["id_award"], None)
        self.awards_by_cert.get(rec["id_cert"], {}).pop(rec["id_award"], None)
        self.emit("certification.revoked", self.award_payload(rec), batch)
        return rec

    def award_payload(self, rec: dict) -> dict:
        cert = self.certifications[rec["id_cert"]]
        user = self.users.get(rec["user_id"], {})
        return {
            "fired_at": fmt(self.now()),
            "user_id": rec["user_id"],
            "username": user.get("username", ""),
            "certification_id": rec["id_cert"],
            "certification_code": cert["code"],
            "award_id": rec["id_award"],
            "issued_on": rec["issued_on"],
            "expire_on": rec["expire_on"],
        }


__all__ = ["AwardRecords"]
