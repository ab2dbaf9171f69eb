"""Helpers shared by the benchmarks (issue 8). Not a test module; nothing here asserts.

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.demo import DEMO_SETTINGS  # noqa: E402

CLI = [sys.executable, "-c", "from console.cli import main; main()"]

DOCEBO_LIMIT_PER_HOUR = 1000  # docebo.md: documented limit per IP
CREDLY_PAGE = 50  # badges / templates per Credly page
DOCEBO_PAGE = 200  # items per Docebo page (the client's page_size)
DOCEBO_ID_CHUNK = 50  # ids per Docebo call (URL length)
ISSUE_BATCH = 50  # badges per Credly /badges/batch call


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def machine_line() -> str:
    m = machine()
    return f"{m['cores']} cores, Python {m['python']}, {m['platform']}"


def pages(n: int, size: int) -> int:
    """Calls to read a list of `n` items `size` per page (an empty list still costs one call)."""
    return max(1, math.ceil(n / size))


def chunked_pages(counts_per_id: dict[Any, int], ids: Sequence[Any], size: int = DOCEBO_PAGE,
                  chunk: int = DOCEBO_ID_CHUNK) -> int:
    """Calls to read the items of `ids` filtered by id, `chunk` ids per call, `size` per page."""
    ids = list(ids)
    return sum(pages(sum(counts_per_id.get(i, 0) for i in ids[k:k + chunk]), size)
               for k in range(0, len(ids), chunk)) if ids else 0


# -- output --------------------------------------------------------------------------------------


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    rows = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))  # noqa: E731
    out = [line([str(h) for h in headers]), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if value >= 1 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's ONE JSON line (last line of stdout)."""
    print(json.dumps(result, sort_keys=False, default=str), flush=True)


# -- processes -----------------------------------------------------------------------------------


def run_python(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 3600) -> tuple[str, str, int]:
    """Run `python ARGS` to the end; returns (stdout, stderr, exit status)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{args[0]} did not finish in {timeout} s:\n{err[-2000:]}") from None
    return out, err, proc.returncode


class SandboxProcess:
    """`credly-console sandbox --size S --seed N --latency-ms L` in a separate process.

    `info` is its first stdout line (base URLs, ids, credentials). Stopped with SIGTERM (its
    clean shutdown), killed if it does not stop within 10 s."""

    def __init__(self, *, size: str, seed: int = 0, latency_ms: float = 0.0, extra: Sequence[str] = ()) -> None:
        self.args = ["sandbox", "--size", size, "--seed", str(seed), "--latency-ms", f"{latency_ms:g}", *extra]
        self.latency_ms = latency_ms
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.ready_s = 0.0
        self._http: Any = None

    def __enter__(self) -> SandboxProcess:
        import httpx

        started = time.perf_counter()
        self.proc = subprocess.Popen([*CLI, *self.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the sandbox process did not start: {err[-2000:]}")
        self.info = json.loads(first)
        self.ready_s = time.perf_counter() - started
        self._http = httpx.Client(timeout=120)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._http is not None:
            self._http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mib(self) -> float:
        import psutil

        return psutil.Process(self.pid).memory_info().rss / 2**20

    # -- control endpoints (neither counted nor faulted by the sandboxes) ------------------------
    def origin(self, service: str) -> str:
        url = self.info[service]["base_url"]
        return url[: -len("/v1")] if service == "credly" and url.endswith("/v1") else url

    def control(self, service: str, method: str, path: str, body: Any = None) -> Any:
        r = self._http.request(method, self.origin(service) + "/_sandbox" + path, json=body)
        r.raise_for_status()
        return r.json() if r.content else None

    def calls(self, service: str) -> dict[str, int]:
        return dict(self.control(service, "GET", "/calls")["calls"])

    def reset_calls(self) -> None:
        for s in ("credly", "docebo"):
            self.control(s, "DELETE", "/calls")

    def reset_state(self) -> None:
        """Back to the starting data and zeroed counters, keeping the latency (faults kept)."""
        for s in ("credly", "docebo"):
            self.control(s, "POST", "/reset", {"state": True, "calls": True, "faults": False, "webhook": True})

    def advance_clocks(self, seconds: float) -> None:
        """Move both sandboxes' clocks forward (the timestamps of later changes and the Date
        header the incremental batches take their watermark from), as time passing would."""
        for s in ("credly", "docebo"):
            self.control(s, "PUT", "/clock", {"advance_s": seconds})

    def set_faults(self, **faults: Any) -> None:
        for s in ("credly", "docebo"):
            self.control(s, "PUT", "/faults", faults)

    def set_course_value(self, course_id: int, field_id: int, label: str) -> None:
        self.control("docebo", "PUT", f"/admin/courses/{course_id}/fields/{field_id}", {"label": label})


# -- the benchmark world -------------------------------------------------------------------------

# The demo's settings (every key of SPEC §1), mailed to a bench address.
BENCH_SETTINGS = {**DEMO_SETTINGS, "NOTIFICATION_MAIL_ID": "lms-admin@bench.example"}


@dataclasses.dataclass
class BenchPlan:
    """What the admin configured in the benchmark world.

    F7 (Docebo → Credly): every `course_every`-th course names a badge template in the course
    dropdown (F3a); `lp_mappings` learning plans and `f7_certs` certifications are mapped to
    templates (F3b, F4). F6 (Credly → Docebo): `import_templates` templates are imported as
    external trainings, `f6_cert_templates` of them also award a certification. The F6 templates
    and certifications are disjoint from the F7 ones (mapping one certification both ways makes
    F4 and F5 feed each other; README)."""

    course_templates: dict[int, dict[str, Any]]  # course id → template
    lp_mappings: list[tuple[str, dict[str, Any]]]  # (learning plan id, template)
    cert_mappings_f7: list[tuple[str, dict[str, Any]]]  # (certification code, template)
    import_mappings: list[dict[str, Any]]  # templates imported as external trainings
    cert_mappings_f6: list[tuple[str, dict[str, Any]]]  # (certification code, template)

    def mapping_inputs(self) -> list[dict[str, Any]]:
        out = []
        for lp, t in self.lp_mappings:
            out.append({"template_id": t["id"], "template_name": t["name"], "learning_plan_id": lp})
        for code, t in self.cert_mappings_f7:
            out.append({"template_id": t["id"], "template_name": t["name"], "certification_code": code})
        f6_codes = dict((t["id"], code) for code, t in self.cert_mappings_f6)
        for t in self.import_mappings:
            out.append({"template_id": t["id"], "template_name": t["name"], "import_as_external_training": True,
                        "certification_code": f6_codes.get(t["id"], "")})
        return out

    @property
    def f6_template_ids(self) -> set[str]:
        """Templates whose badges F6 reads: every mapping with a Docebo side for badges
        (external-training import or a certification code — F7's certification mappings too:
        SPEC F5 applies to every mapping naming a certification)."""
        return {t["id"] for t in self.import_mappings} | {t["id"] for _, t in self.cert_mappings_f7} \
            | {t["id"] for _, t in self.cert_mappings_f6}

    @property
    def dropdown_template_ids(self) -> set[str]:
        return {t["id"] for t in self.course_templates.values()}


def usable_templates(data: Any) -> list[dict[str, Any]]:
    """Active templates, the first of each name (F1 keeps the first one Credly lists)."""
    seen: set[str] = set()
    out = []
    for t in data.templates:
        if t["state"] == "active" and t["name"] not in seen:
            out.append(t)
        seen.add(t["name"])
    return out


def plan_for(data: Any, *, course_every: int = 4, dropdown_templates: int = 40, lp_mappings: int = 30,
             f7_certs: int = 10, import_templates: int = 30, f6_certs: int = 10) -> BenchPlan:
    templates = usable_templates(data)
    badge_count: dict[str, int] = {}
    for b in data.badges:
        badge_count[b["badge_template_id"]] = badge_count.get(b["badge_template_id"], 0) + 1
    # F6 takes the templates with the most badges (most work); F7 the rest, in listing order.
    by_badges = sorted(templates, key=lambda t: (-badge_count.get(t["id"], 0), t["id"]))
    f6 = by_badges[:min(import_templates, len(templates) // 4)]
    f6_ids = {t["id"] for t in f6}
    rest = itertools.cycle([t for t in templates if t["id"] not in f6_ids])  # small worlds reuse templates
    dropdown = [next(rest) for _ in range(dropdown_templates)]
    courses = sorted(data.courses, key=lambda c: c["id_course"])
    course_templates = {c["id_course"]: dropdown[i % len(dropdown)]
                        for i, c in enumerate(courses[::course_every])}
    lps = sorted(data.learning_plans, key=lambda lp: lp["learning_plan_id"])[:lp_mappings]
    lp_maps = [(str(lp["learning_plan_id"]), next(rest)) for lp in lps]
    certs = sorted(data.certifications, key=lambda c: c["id_cert"])
    f7_certs = min(f7_certs, len(certs) // 2)
    f7c = [(str(c["code"]), next(rest)) for c in certs[:f7_certs]]
    f6c = [(str(c["code"]), f6[i]) for i, c in enumerate(certs[f7_certs:f7_certs + min(f6_certs, len(f6))])]
    return BenchPlan(course_templates, lp_maps, f7c, f6, f6c)


def bench_config(info: dict[str, Any]) -> Any:
    """The product configuration for a sandbox; Docebo's client-side limiter OFF (0)."""
    from services.core.config import AppConfig, CredlyConfig, DoceboConfig

    return AppConfig(
        credly=CredlyConfig(base_url=info["credly"]["base_url"], organization_id=info["credly"]["organization_id"]),
        docebo=DoceboConfig(base_url=info["docebo"]["base_url"], client_id=info["docebo"]["client_id"],
                            rate_limit_per_hour=0),
    )


def bench_secrets(info: dict[str, Any]) -> Any:
    from services.core.secrets import MemorySecrets

    return MemorySecrets({"credly_token": info["credly"]["token"],
                          "docebo_client_secret": info["docebo"]["client_secret"]})


@contextlib.asynccontextmanager
async def product_clients(info: dict[str, Any], **kw: Any):
    """The product's clients for a sandbox, built by `services.clients.factory` (shared policy and
    limiters), Docebo's 1,000/h client-side limit switched off."""
    from services.clients.factory import build_credly, build_docebo

    config, secrets = bench_config(info), bench_secrets(info)
    credly, docebo = build_credly(config, secrets, **kw), build_docebo(config, secrets, **kw)
    try:
        yield credly, docebo
    finally:
        await credly.aclose()
        await docebo.aclose()


async def prepare_store(db_path: Path, sb: SandboxProcess, plan: BenchPlan) -> dict[str, Any]:
    """Configure a product database against the sandbox: settings, F1, F2, the course dropdown
    values (as the Docebo admin, through the control endpoint) and the mappings."""
    from services.flows import FlowContext, run_flow
    from services.store import settings as settings_service
    from services.store.db import Store
    from services.store.mappings import MappingInput, add_mapping

    with Store(db_path) as store:
        settings_service.set_settings(store, BENCH_SETTINGS)
        async with product_clients(sb.info) as (credly, docebo):
            ctx = FlowContext(store, credly, docebo)
            for flow in ("templates", "dropdown"):
                s = await run_flow(flow, ctx, trigger="cli")
                if s.status != "succeeded":
                    raise RuntimeError(f"set-up {flow} {s.status}: {s.reason}")
        field_id = int(store.get_meta("docebo.course_field_id"))
        for course_id, t in plan.course_templates.items():
            sb.set_course_value(course_id, field_id, t["name"])
        for m in plan.mapping_inputs():
            add_mapping(store, MappingInput(**m))
    return {"field_id": field_id}


# -- the product run in its own process ----------------------------------------------------------

WORKER = str(Path(__file__).resolve().parent / "_flow_worker.py")


def run_product_flow(flow: str, db_path: Path, info: dict[str, Any], *, tracemalloc: bool = False,
                     full: bool = False) -> dict[str, Any]:
    """Run one batch flow of the product in a child process (`_flow_worker.py`) and return its
    report: mode (full | incremental), wall time of `run_flow` alone, status, counts, the clients'
    CallCounter snapshots, peak RSS (the worker's own VmHWM) and, with `tracemalloc`, Python's peak
    allocation during the run. `full` forces a full F7/F6 run (`sync --full`)."""
    args = [WORKER, flow, str(db_path), json.dumps(info)] + (["--tracemalloc"] if tracemalloc else []) \
        + (["--full"] if full else [])
    out, err, code = run_python(args)
    if code != 0:
        raise RuntimeError(f"the {flow} run failed (exit {code}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])
