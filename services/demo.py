"""The demo environment behind `credly-console demo` (issue 7): everything on loopback, headless.

Design notes: docs/design/wiring.md
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import secrets as pysecrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("credly_console.demo")

DEMO_SETTINGS = {
    "NOTIFICATION_MAIL_ID": "lms-admin@demo.example",
    "SYNC_REVOCATION": "true",
    "EXTERNAL_TRAINING_INSTITUTE_NAME": "Credly",
    "COURSE_ADDITIONAL_FIELD": "Credly badge",
    "EVIDENCE_TITLE": "Earned in Docebo Learn",
    "CREDLY_INTEGRATION_MASTER": "",
    "CREDLY_DEFAULT_EXPIRATION_DAYS": "",
    "BATCH_SYNC_START_DATE": "",
}


@dataclasses.dataclass
class DemoOptions:
    size: str = "small"
    seed: int = 0
    interval_s: float = 3.0  # one simulated action every this many seconds (jittered)
    activity: bool = True
    data_dir: Path | None = None  # None: a temp dir, deleted at the end
    latency_ms: float = 0.0  # per sandbox API call
    workers: int = 4
    scheduler: bool = True


@dataclasses.dataclass(frozen=True)
class ActivityLine:
    at: dt.datetime
    kind: str  # completion | award | badge | rename | archive | assign | info | error
    text: str

    def __str__(self) -> str:
        return f"{self.at.astimezone().strftime('%H:%M:%S')} {self.kind:<10} {self.text}"


class DemoEnvironment:
    """Sandboxes + serve + simulated activity, all in background threads (module docstring)."""

    def __init__(self, options: DemoOptions | None = None) -> None:
        self.options = options or DemoOptions()
        self.config: Any = None
        self.secrets: Any = None
        self.db_path: Path | None = None
        self.sandboxes: Any = None
        self.runtime: Any = None
        self.activity: collections.deque[ActivityLine] = collections.deque(maxlen=500)
        self._listeners: list[Callable[[ActivityLine], None]] = []
        self._sandbox_thread: Any = None
        self._tmp: Path | None = None
        self._sim_thread: threading.Thread | None = None
        self._health_thread: threading.Thread | None = None
        self.connections_checked = threading.Event()  # set once the test at start has ended
        self._sim_stop = threading.Event()
        self._rng = random.Random(self.options.seed)
        self.actions: collections.Counter[str] = collections.Counter()

    @property
    def started_db_path(self) -> Path:
        """The demo's database; only there once `start()` has made it."""
        if self.db_path is None:
            raise RuntimeError("the demo has not been started: it has no database yet")
        return self.db_path

    # -- what the console needs ----------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        return self.runtime.urls

    def credly_client(self, **kw: Any) -> Any:
        from services.clients.factory import build_credly

        return build_credly(self.config, self.secrets, **kw)

    def docebo_client(self, **kw: Any) -> Any:
        from services.clients.factory import build_docebo

        return build_docebo(self.config, self.secrets, **kw)

    def subscribe(self, callback: Callable[[ActivityLine], None]) -> None:
        """Call ``callback(line)`` (from the simulator's thread) for every new activity line."""
        self._listeners.append(callback)

    def _note(self, kind: str, text: str) -> None:
        line = ActivityLine(dt.datetime.now(dt.UTC), kind, text)
        self.activity.append(line)
        self.actions[kind] += 1
        for callback in list(self._listeners):
            try:
                callback(line)
            except Exception:  # a listener must not stop the demo
                log.exception("a demo activity listener failed")

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> DemoEnvironment:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from services.core.config import AppConfig, CredlyConfig, DoceboConfig, ServerConfig, SmtpConfig
        from services.core.secrets import MemorySecrets
        from services.sandbox.runner import SandboxOptions, SandboxThread
        from services.serve.service import ServeOptions, ServeRuntime
        from services.store.db import Store

        opts = self.options
        if opts.data_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="credly-console-demo-"))
            data_dir = self._tmp
        else:
            data_dir = Path(opts.data_dir)
            data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = data_dir / "demo.db"

        self._sandbox_thread = SandboxThread(SandboxOptions(size=opts.size, seed=opts.seed, latency_ms=opts.latency_ms))
        self.sandboxes = self._sandbox_thread.start()
        sb = self.sandboxes
        self.secrets = MemorySecrets({
            "credly_token": sb.credly.token,
            "docebo_client_secret": sb.docebo.client_secret,
            "webhook_secret": pysecrets.token_urlsafe(24),
        })
        self.config = AppConfig(
            credly=CredlyConfig(base_url=sb.credly.base_url, organization_id=sb.credly.organization_id),
            docebo=DoceboConfig(base_url=sb.docebo.base_url, client_id=sb.docebo.client_id,
                                rate_limit_per_hour=1_000_000, burst=1000),
            server=ServerConfig(host="127.0.0.1", port=0),
            smtp=SmtpConfig(),
        )
        with Store(self.db_path) as store:
            self._seed_store(store)
        self.runtime = ServeRuntime(
            self.config, self.secrets, self.db_path,
            ServeOptions(port=0, workers=opts.workers, scheduler=opts.scheduler, mail=False, poll_s=0.5, grace_s=3),
        ).start()
        self.config.server.port = self.runtime.port
        self._point_webhooks()
        self._note("info", f"sandboxes up (Credly {sb.credly.base_url}, Docebo {sb.docebo.base_url}); "
                           f"receiver on {self.runtime.base_url}; database {self.db_path}")
        self._health_thread = threading.Thread(target=self._check_connections, name="demo-health", daemon=True)
        self._health_thread.start()
        if opts.activity:
            self._sim_thread = threading.Thread(target=self._simulate_main, name="demo-activity", daemon=True)
            self._sim_thread.start()

    def stop(self) -> None:
        self._sim_stop.set()
        if self._health_thread is not None:
            self._health_thread.join(15)
            self._health_thread = None
        if self._sim_thread is not None:
            self._sim_thread.join(15)
            self._sim_thread = None
        if self.sandboxes is not None:
            # Stop the webhooks first, so nothing is sent to a receiver that is going away.
            with contextlib.suppress(Exception):
                self.sandboxes.credly.handles.webhooks.url = None
                self.sandboxes.docebo.handles.webhooks.url = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        if self._sandbox_thread is not None:
            with contextlib.suppress(Exception):
                self._sandbox_thread.stop()
            self._sandbox_thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> DemoEnvironment:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> DemoEnvironment:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.stop)

    # -- set-up ----------------------------------------------------------------------------------
    def _seed_store(self, store: Any) -> None:
        """Settings of a configured tenant, and mappings over the demo data (F3b, F4, F5)."""
        from services.store.mappings import MappingInput, add_mapping, count_mappings
        from services.store.settings import set_settings

        set_settings(store, DEMO_SETTINGS)
        if count_mappings(store):
            return
        data = self.sandboxes.data
        names: set[str] = set()
        active = []
        for t in data.templates:  # F1 keeps the first template of a name
            if t["state"] == "active" and t["name"] not in names:
                active.append(t)
            names.add(t["name"])
        pool = iter(active)

        def nxt() -> dict:
            return next(pool)

        try:
            for lp in data.learning_plans[:4]:
                t = nxt()
                add_mapping(store, MappingInput(template_id=t["id"], template_name=t["name"],
                                                learning_plan_id=str(lp["learning_plan_id"])))
            for cert in data.certifications[:3]:
                t = nxt()
                add_mapping(store, MappingInput(template_id=t["id"], template_name=t["name"],
                                                certification_code=str(cert["code"])))
            for _ in range(3):
                t = nxt()
                add_mapping(store, MappingInput(template_id=t["id"], template_name=t["name"],
                                                import_as_external_training=True))
        except StopIteration:  # tiny data: fewer mappings
            pass

    def _check_connections(self) -> None:
        """Test both connections once and record the outcome (in the background: the demo is up
        meanwhile)."""
        from services.store.db import Store
        from services.store.health import check_connections

        try:
            with Store(self.started_db_path) as store:
                results = asyncio.run(check_connections(
                    store, {"credly": self.credly_client, "docebo": self.docebo_client}))
        except Exception as exc:  # the demo goes on; the dashboard then says "not tested yet"
            log.exception("the demo's connection test failed")
            self._note("error", f"connection test: {type(exc).__name__}: {exc}")
            return
        finally:
            self.connections_checked.set()
        self._note("info", "connections tested: " + ", ".join(
            f"{service.capitalize()} {'ok' if row['ok'] else 'failing: ' + row['message']}"
            for service, row in results.items()))

    def _point_webhooks(self) -> None:
        sb = self.sandboxes
        urls = self.runtime.urls
        sb.credly.handles.webhooks.configure(url=urls["credly"], retry_delays=(1, 2, 5, 10, 30))
        sb.docebo.handles.webhooks.configure(url=urls["docebo"], retry_delays=(1, 2, 5, 10, 30))

    # -- the simulator ---------------------------------------------------------------------------
    def _simulate_main(self) -> None:
        try:
            asyncio.run(self._simulate())
        except Exception:
            log.exception("the demo activity simulator stopped")

    async def _simulate(self) -> None:
        import httpx

        sb = self.sandboxes
        credly_origin = sb.credly.base_url.rsplit("/v1", 1)[0]
        async with httpx.AsyncClient(timeout=10) as client:
            sim = _Simulator(self, client, credly_origin, sb.docebo.base_url)
            while not self._sim_stop.is_set():
                try:
                    await sim.step()
                except Exception as exc:  # a refused action is part of life; keep going
                    self._note("error", f"{type(exc).__name__}: {exc}")
                delay = self.options.interval_s * self._rng.uniform(0.6, 1.4)
                await asyncio.to_thread(self._sim_stop.wait, delay)


class _Simulator:
    """One simulated action per ``step()`` (see the module docstring)."""

    def __init__(self, env: DemoEnvironment, client: Any, credly: str, docebo: str) -> None:
        self.env = env
        self.client = client
        self.credly = credly
        self.docebo = docebo
        self.rng = env._rng
        self.data = env.sandboxes.data
        self.users = list(self.data.users)
        self.courses = list(self.data.courses)
        self.assigned: dict[int, str] = {}
        self.renamed = 0
        self.archived = 0

    def _store(self) -> Any:
        from services.store.db import Store

        return Store(self.env.started_db_path)

    def _templates(self) -> list[dict[str, Any]]:
        with self._store() as store:
            return list(store.db.query(
                "SELECT template_id, name, dropdown_element_id FROM badge_templates WHERE is_active = 1 ORDER BY name"))

    def _mapped(self, kind: str) -> list[dict[str, Any]]:
        column = {"import": "import_as_external_training = 1", "cert": "certification_code != ''"}[kind]
        with self._store() as store:
            return list(store.db.query(f"SELECT * FROM mappings WHERE is_active = 1 AND {column}"))

    async def _post(self, url: str, body: dict | None = None, method: str = "POST") -> dict:
        response = await self.client.request(method, url, json=body)
        response.raise_for_status()
        return response.json() if response.content else {}

    async def step(self) -> None:
        if await self._assign_some():
            return
        roll = self.rng.random()
        if roll < 0.45:
            await self._completion()
        elif roll < 0.65:
            await self._award()
        elif roll < 0.9:
            await self._badge_by_hand()
        elif roll < 0.96 and self.renamed < 20:
            await self._rename()
        elif self.archived < 5:
            await self._archive()
        else:
            await self._completion()

    async def _assign_some(self) -> bool:
        """Once the dropdown exists (F2 ran), give unassigned courses a template through it."""
        with self._store() as store:
            field_id = store.get_meta("docebo.course_field_id")
        if not field_id:
            return False
        templates = [t for t in self._templates() if t["dropdown_element_id"]]
        if not templates:
            return False
        want = min(len(self.courses), 6)
        if len(self.assigned) >= want and self.rng.random() > 0.05:
            return False
        course = self.rng.choice([c for c in self.courses if c["id_course"] not in self.assigned] or self.courses)
        template = self.rng.choice(templates)
        await self._post(f"{self.docebo}/_sandbox/admin/courses/{course['id_course']}/fields/{field_id}",
                         {"label": template["name"]}, method="PUT")
        self.assigned[course["id_course"]] = template["name"]
        self.env._note("assign", f"course {course['name']!r} now awards {template['name']!r} (dropdown)")
        return True

    async def _completion(self) -> None:
        pool = [c for c in self.courses if c["id_course"] in self.assigned] or self.courses
        course = self.rng.choice(pool)
        user = self.rng.choice(self.users)
        body = {"course_id": course["id_course"], "user_id": user["user_id"]}
        await self._post(f"{self.docebo}/_sandbox/learner/complete", body)
        self.env._note("completion", f"{user['first_name']} {user['last_name']} completed {course['name']!r} in Docebo")

    async def _award(self) -> None:
        mapped = {m["certification_code"] for m in self._mapped("cert")}
        certs = [c for c in self.data.certifications if c["code"] in mapped] or list(self.data.certifications)
        if not certs:
            return await self._completion()
        cert = self.rng.choice(certs)
        user = self.rng.choice(self.users)
        try:
            await self._post(f"{self.docebo}/_sandbox/admin/awards", {"id_cert": cert["id_cert"], "user_id": user["user_id"]})
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", 0) == 409:  # already holds it
                return await self._completion()
            raise
        self.env._note("award", f"{user['first_name']} {user['last_name']} was awarded {cert['title']!r} in Docebo")

    async def _badge_by_hand(self) -> None:
        mapped = self._mapped("import") + self._mapped("cert")
        if not mapped:
            return await self._completion()
        m = self.rng.choice(mapped)
        user = self.rng.choice(self.users)
        try:
            await self._post(
                f"{self.credly}/_sandbox/badges",
                {
                    "badge_template_id": m["template_id"],
                    "recipient_email": user["email"],
                    "issued_to_first_name": user["first_name"],
                    "issued_to_last_name": user["last_name"],
                    "state": self.rng.choice(["pending", "accepted"]),
                },
            )
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", 0) == 422:  # already holds it
                return await self._completion()
            raise
        self.env._note("badge", f"{m['template_name'] or m['template_id']!r} issued by hand in Credly to {user['email']}")

    async def _rename(self) -> None:
        templates = self._templates()
        if not templates:
            return
        t = self.rng.choice(templates)
        base = t["name"].split(" (v")[0]
        new = f"{base} (v{self.rng.randint(2, 9)})"
        await self._post(f"{self.credly}/_sandbox/templates/{t['template_id']}", {"name": new}, method="PATCH")
        self.renamed += 1
        self.env._note("rename", f"template {t['name']!r} renamed to {new!r} in Credly")

    async def _archive(self) -> None:
        mapped = {m["template_id"] for m in self._mapped("import") + self._mapped("cert")}
        assigned = set(self.assigned.values())
        candidates = [t for t in self._templates() if t["template_id"] not in mapped and t["name"] not in assigned]
        if not candidates:
            return
        t = self.rng.choice(candidates)
        await self._post(f"{self.credly}/_sandbox/templates/{t['template_id']}/archive")
        self.archived += 1
        self.env._note("archive", f"template {t['name']!r} archived in Credly")
