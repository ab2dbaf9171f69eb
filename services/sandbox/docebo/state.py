"""In-memory world of the Docebo sandbox (issue 3; api/docebo.md is the source of truth).

``DoceboState`` is the tenant (tenant.py: clock, credentials, users, courses, fields) with its
enrollments and learning plans (learning.py) and external training and awards (awards.py); here it
is loaded from demo data and reset. It knows nothing about HTTP (app.py serves it); changes Docebo
would announce call ``self.emit(event, payload, batch)`` (a no-op until the app plugs in its
webhook dispatcher). Every record lives once, indexed; list calls serialise only their page.
"""

from __future__ import annotations

from typing import Any

from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.awards import AwardRecords
from services.sandbox.docebo.learning import LearningRecords


class DoceboState(LearningRecords, AwardRecords):
    """The sandbox tenant. Construct empty, or with `from_demo(data)`."""

    @classmethod
    def from_demo(cls, data: DemoData, **options: Any) -> DoceboState:
        """A tenant holding the Docebo half of `data` (users, courses, fields, enrollments,
        learning plans, certifications, awards). `options` go to the constructor."""
        state = cls(**options)
        state.load(data)
        return state

    def load(self, data: DemoData | None) -> None:
        """Replace the world with `data` (None: empty). Tokens are kept."""
        self._demo = data
        self._clear()
        if data is None:
            return
        stamp = "2023-01-01 00:00:00"
        for u in data.users:
            self.add_user(dict(u), created=stamp)
        for c in data.courses:
            self.add_course(dict(c))
        for f in data.course_fields:
            self.course_fields[f["id"]] = {
                "id": f["id"],
                "type": f["type"],
                "name": f["name"],
                "options": {o["id"]: o["label"] for o in f.get("options", [])},
            }
            self._next["field"] = max(self._next["field"], f["id"] + 1)
            for o in f.get("options", []):
                self._next["option"] = max(self._next["option"], o["id"] + 1)
        for v in data.course_field_values:
            self.course_values.setdefault(v["course_id"], {})[v["field_id"]] = v["value"]
        for e in data.enrollments:
            rec = {
                "course_id": e["course_id"],
                "user_id": e["user_id"],
                "status": e["status"],
                "enrolled_at": e["enrolled_at"],
                "completed_at": e.get("completed_at"),
                "validity_end": e.get("validity_end"),
                "updated_at": e.get("completed_at") or e["enrolled_at"],
                "score": 0,
            }
            self._index_enrollment(rec)
        for lp in data.learning_plans:
            self.add_learning_plan(dict(lp))
        for le in data.lp_enrollments:
            self._index_lp_enrollment(
                {"learning_plan_id": le["learning_plan_id"], "user_id": le["user_id"], "enrolled_at": le["enrolled_at"]}
            )
        for rec in self.lp_enrollments.values():
            self._refresh_lp_enrollment(rec)
            rec["updated_at"] = rec["completed_at"] or rec["enrolled_at"]
        for c in data.certifications:
            self.certifications[c["id_cert"]] = dict(c)
        for a in data.awards:
            rec = dict(a)
            rec.setdefault("source", "")
            rec.setdefault("external_link", "")
            rec.setdefault("updated_at", rec["issued_on"])
            self._index_award(rec)
            self._next["award"] = max(self._next["award"], rec["id_award"] + 1)

    def reset(self) -> None:
        """Back to the data the state was loaded with; tokens are dropped."""
        self.load(self._demo)
        self.tokens.clear()
        self.refresh_tokens.clear()

    def summary(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "courses": len(self.courses),
            "course_fields": len(self.course_fields),
            "enrollments": len(self.enrollments),
            "completed_enrollments": sum(1 for e in self.enrollments.values() if e["status"] == "completed"),
            "learning_plans": len(self.learning_plans),
            "lp_enrollments": len(self.lp_enrollments),
            "external_trainings": len(self.external_trainings),
            "certifications": len(self.certifications),
            "awards": len(self.awards),
            "tokens": len(self.tokens),
        }


__all__ = ["DoceboState"]
