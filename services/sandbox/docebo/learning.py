"""Course enrollments (api/docebo.md §4.1) and learning plans (§4.2) of the Docebo sandbox:
indexed by course and by user, walked lazily by list calls, with the ``updated_from`` filter [I].
Completing a course sets its date and expiry, fires ``course.enrollment.completed`` and completes
every plan whose courses are now all done (no plan webhook: its event name is unknown, §7.2).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from services.sandbox.docebo.records import COMPLETION_EVENT, DoceboError, as_datetime, fmt, normalise_status, parse_date
from services.sandbox.docebo.tenant import DoceboTenant


class LearningRecords(DoceboTenant):
    """Enrollments in courses and learning plans."""

    # -- enrollments (§4.1) ---------------------------------------------------------------------------

    def _index_enrollment(self, rec: dict) -> None:
        key = (rec["course_id"], rec["user_id"])
        self.enrollments[key] = rec
        self.enr_by_course.setdefault(rec["course_id"], {})[rec["user_id"]] = rec
        self.enr_by_user.setdefault(rec["user_id"], {})[rec["course_id"]] = rec

    def get_enrollment(self, course_id: Any, user_id: Any) -> dict:
        course = self.get_course(course_id)
        user = self.get_user(user_id)
        rec = self.enrollments.get((course["id_course"], user["user_id"]))
        if rec is None:
            raise DoceboError(404, f"User {user['user_id']} is not enrolled in course {course['id_course']}")
        return rec

    def enroll(self, course_id: Any, user_id: Any, *, validity_end: str | None = None) -> tuple[dict, bool]:
        """Enroll a user in a course; returns (enrollment, created)."""
        course = self.get_course(course_id)
        user = self.get_user(user_id)
        key = (course["id_course"], user["user_id"])
        if key in self.enrollments:
            return self.enrollments[key], False
        stamp = fmt(self.now())
        rec = {
            "course_id": key[0],
            "user_id": key[1],
            "status": "not_started",
            "enrolled_at": stamp,
            "completed_at": None,
            "validity_end": validity_end,
            "updated_at": stamp,
            "score": 0,
        }
        self._index_enrollment(rec)
        for lp_id in self.lps_by_course.get(key[0], ()):
            lpe = self.lp_enrollments.get((lp_id, key[1]))
            if lpe is not None:
                self._refresh_lp_enrollment(lpe)
        return rec, True

    def iter_enrollments(
        self,
        course_ids: list[int] | None = None,
        user_ids: list[int] | None = None,
        statuses: list[str] | None = None,
        updated_from: str | None = None,
    ) -> Iterator[dict]:
        """Enrollments matching every given filter, walking the smaller index. `updated_from`
        (long form): only those whose `updated_at` is on or after it."""
        source = self._iter_enrollments(course_ids, user_ids, statuses)
        if updated_from is None:
            return source
        return (r for r in source if r["updated_at"] >= updated_from)

    def _iter_enrollments(
        self,
        course_ids: list[int] | None,
        user_ids: list[int] | None,
        statuses: list[str] | None,
    ) -> Iterator[dict]:
        wanted = set(statuses) if statuses else None
        if course_ids is not None and user_ids is not None:
            users = set(user_ids)
            if len(course_ids) <= len(users):
                source = (r for c in course_ids for u, r in self.enr_by_course.get(c, {}).items() if u in users)
            else:
                cset = set(course_ids)
                source = (r for u in user_ids for c, r in self.enr_by_user.get(u, {}).items() if c in cset)
        elif course_ids is not None:
            source = (r for c in course_ids for r in self.enr_by_course.get(c, {}).values())
        elif user_ids is not None:
            source = (r for u in user_ids for r in self.enr_by_user.get(u, {}).values())
        else:
            source = (r for c in self.course_order("id_course") for r in self.enr_by_course.get(c, {}).values())
        if wanted is None:
            return source
        return (r for r in source if r["status"] in wanted)

    def set_enrollment(
        self,
        course_id: Any,
        user_id: Any,
        *,
        status: Any = None,
        date_complete: Any = None,
        score: Any = None,
        date_expire_validity: Any = ...,
        batch: bool = False,
    ) -> dict:
        """Change an enrollment (PUT /learn/v1/enrollments/{course}/{user}, or the learner's
        control endpoint). Becoming `completed` sets the completion date (given or now) and the
        expiry (given, or the course's validity), fires `course.enrollment.completed` and
        completes every learning plan the learner is enrolled in whose courses are now all done."""
        rec = self.get_enrollment(course_id, user_id)
        course = self.courses[rec["course_id"]]
        new_status = normalise_status(status) if status not in (None, "") else rec["status"]
        completion = parse_date(date_complete, "date_complete")
        expire = parse_date(date_expire_validity, "date_expire_validity") if date_expire_validity is not ... else ...
        if score not in (None, ""):
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise DoceboError(400, f"Field 'score_given' must be a number, got {score!r}") from None
        was = rec["status"]
        stamp = fmt(self.now())
        if new_status == "completed":
            if was != "completed" or completion:
                rec["completed_at"] = completion or stamp
                if expire is ... and course.get("validity_days"):
                    done = as_datetime(rec["completed_at"])
                    rec["validity_end"] = fmt(done + timedelta(days=course["validity_days"]))
        else:
            rec["completed_at"] = None
            if was == "completed" and expire is ...:
                rec["validity_end"] = None
        rec["status"] = new_status
        if expire is not ...:
            rec["validity_end"] = expire
        if score not in (None, ""):
            rec["score"] = int(score) if float(score).is_integer() else score
        rec["updated_at"] = stamp
        if new_status != was:
            # Plans follow their courses. No learning-plan webhook is sent: its event name is not
            # known (api/docebo.md §7.2), so the product reads plan status through the API (F3b).
            self._after_course_change(rec)
            if new_status == "completed":
                self.emit(COMPLETION_EVENT, self.completion_payload(rec), batch)
        return rec

    def completion_payload(self, rec: dict) -> dict:
        course = self.courses[rec["course_id"]]
        user = self.users[rec["user_id"]]
        return {
            "fired_at": fmt(self.now()),
            "user_id": rec["user_id"],
            "username": user["username"],
            "course_id": rec["course_id"],
            "course_name": course["name"],
            "level": "learner",
            "status": "completed",
            "enrollment_date": rec["enrolled_at"],
            "completion_date": rec["completed_at"],
            "enrollment_date_begin_validity": None,
            "enrollment_date_end_validity": rec["validity_end"],
            "subscribed_by_id": rec["user_id"],
        }

    # -- learning plans (§4.2) ----------------------------------------------------------------------

    def add_learning_plan(self, lp: dict) -> dict:
        lp_id = int(lp["learning_plan_id"])
        for cid in lp["course_ids"]:
            if cid not in self.courses:
                raise DoceboError(400, f"Course {cid} not found")
        lp.setdefault("created_on", "2023-01-01 00:00:00")
        lp.setdefault("updated_on", lp["created_on"])
        lp.setdefault("uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"docebo-sandbox/lp/{lp_id}")))
        self.learning_plans[lp_id] = lp
        self.lpe_by_lp.setdefault(lp_id, {})
        for cid in lp["course_ids"]:
            self.lps_by_course.setdefault(cid, []).append(lp_id)
        return lp

    def get_learning_plan(self, lp_id: Any) -> dict:
        try:
            lp = self.learning_plans.get(int(lp_id))
        except (TypeError, ValueError):
            lp = None
        if lp is None:
            raise DoceboError(404, f"Learning plan {lp_id} not found")
        return lp

    def _index_lp_enrollment(self, rec: dict) -> None:
        key = (rec["learning_plan_id"], rec["user_id"])
        rec.setdefault("status", "not_started")
        rec.setdefault("completed_at", None)
        rec.setdefault("percentage", 0)
        rec.setdefault("updated_at", rec["enrolled_at"])
        self.lp_enrollments[key] = rec
        self.lpe_by_lp.setdefault(key[0], {})[key[1]] = rec
        self.lpe_by_user.setdefault(key[1], {})[key[0]] = rec

    def enroll_learning_plan(self, lp_id: Any, user_id: Any) -> tuple[dict, bool]:
        """Enroll a user in a plan and in each of its courses (as Docebo does)."""
        lp = self.get_learning_plan(lp_id)
        user = self.get_user(user_id)
        key = (lp["learning_plan_id"], user["user_id"])
        if key in self.lp_enrollments:
            return self.lp_enrollments[key], False
        for cid in lp["course_ids"]:
            self.enroll(cid, user["user_id"])
        rec = {"learning_plan_id": key[0], "user_id": key[1], "enrolled_at": fmt(self.now())}
        self._index_lp_enrollment(rec)
        self._refresh_lp_enrollment(rec)
        return rec, True

    def _refresh_lp_enrollment(self, rec: dict) -> bool:
        """Derive a plan enrollment's status from its courses; True if it just became completed."""
        lp = self.learning_plans[rec["learning_plan_id"]]
        mine = self.enr_by_user.get(rec["user_id"], {})
        course_recs = [mine.get(cid) for cid in lp["course_ids"]]
        done = [r for r in course_recs if r is not None and r["status"] == "completed"]
        started = [r for r in course_recs if r is not None and r["status"] != "not_started"]
        before = rec["status"]
        if course_recs and len(done) == len(course_recs):
            rec["status"] = "completed"
            rec["completed_at"] = max(r["completed_at"] for r in done)
        else:
            rec["status"] = "in_progress" if started else "not_started"
            rec["completed_at"] = None
        rec["percentage"] = round(100 * len(done) / len(course_recs)) if course_recs else 0
        if rec["status"] != before:
            rec["updated_at"] = fmt(self.now())
        return rec["status"] == "completed" and before != "completed"

    def _after_course_change(self, course_rec: dict) -> list[dict]:
        completed = []
        uid = course_rec["user_id"]
        for lp_id in self.lps_by_course.get(course_rec["course_id"], ()):
            lpe = self.lp_enrollments.get((lp_id, uid))
            if lpe is not None and self._refresh_lp_enrollment(lpe):
                completed.append(lpe)
        return completed

    def iter_lp_enrollments(
        self,
        lp_ids: list[int] | None = None,
        user_ids: list[int] | None = None,
        statuses: list[str] | None = None,
        updated_from: str | None = None,
    ) -> Iterator[dict]:
        source = self._iter_lp_enrollments(lp_ids, user_ids, statuses)
        if updated_from is None:
            return source
        return (r for r in source if r["updated_at"] >= updated_from)

    def _iter_lp_enrollments(
        self,
        lp_ids: list[int] | None,
        user_ids: list[int] | None,
        statuses: list[str] | None,
    ) -> Iterator[dict]:
        wanted = set(statuses) if statuses else None
        if lp_ids is not None and user_ids is not None:
            users = set(user_ids)
            source = (r for lp in lp_ids for u, r in self.lpe_by_lp.get(lp, {}).items() if u in users)
        elif lp_ids is not None:
            source = (r for lp in lp_ids for r in self.lpe_by_lp.get(lp, {}).values())
        elif user_ids is not None:
            source = (r for u in user_ids for r in self.lpe_by_user.get(u, {}).values())
        else:
            source = (r for lp in sorted(self.lpe_by_lp) for r in self.lpe_by_lp[lp].values())
        if wanted is None:
            return source
        return (r for r in source if r["status"] in wanted)


__all__ = ["LearningRecords"]
