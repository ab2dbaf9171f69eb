"""Helpers of the serve suite: a real SMTP server (aiosmtpd) on loopback, optionally with
STARTTLS or implicit TLS and a login, a self-signed certificate for it, free ports, polling."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from tests.support.world import SETTINGS, course, demo_data, learner, template, template_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    client_context: ssl.SSLContext | None = None

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} mail(s), got {len(self.messages)}")
            time.sleep(0.01)
        return self.messages

class RecordingHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 - aiosmtpd hook name
        msg = message_from_bytes(envelope.content, policy=policy.default)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.server.messages.append(msg)
        return "250 OK"

def self_signed() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1."""
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem_cert = cert.public_bytes(serialization.Encoding.PEM)
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = f"{tmp}/cert.pem", f"{tmp}/key.pem"
        with open(cert_path, "wb") as fh:
            fh.write(pem_cert)
        with open(key_path, "wb") as fh:
            fh.write(pem_key)
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert_path, key_path)
        client = ssl.create_default_context(cadata=pem_cert.decode())
    return server, client


# -- the end-to-end world ----------------------------------------------------------------------


ORG = "6d0f2f5e-0000-4000-8000-0000000000aa"
T_SAFETY, T_FIRE, T_IMPORT = template_id(11), template_id(12), template_id(13)
SECRET = "e2e-webhook-secret_0123456789abcdef"
N_USERS = 40


def serve_data(**overrides):
    """40 learners, three courses, three active templates; no enrollments or badges yet."""
    return demo_data(
        ORG,
        dict(
            templates=[template(T_SAFETY, "Safety Basics"), template(T_FIRE, "Fire Warden"),
                       template(T_IMPORT, "Partner Skills")],
            users=[learner(i) for i in range(1, N_USERS + 1)],
            courses=[course(101, "Safety 101", "S101"), course(102, "Fire 1", "F1"), course(103, "Unbadged", "U1")],
        ),
        overrides,
    )


def app_config(sb, *, port: int = 0, smtp_port: int | None = None, basic_user: str = ""):
    from services.core.config import AppConfig, CredlyConfig, DoceboConfig, ServerConfig, SmtpConfig

    return AppConfig(
        credly=CredlyConfig(base_url=sb.credly.base_url, organization_id=sb.credly.organization_id),
        docebo=DoceboConfig(base_url=sb.docebo.base_url, client_id=sb.docebo.client_id,
                            rate_limit_per_hour=1_000_000, burst=1000),
        server=ServerConfig(host="127.0.0.1", port=port, docebo_basic_auth_user=basic_user),
        smtp=SmtpConfig(host="127.0.0.1" if smtp_port else "", port=smtp_port or 587, starttls=False,
                        sender="sync@example.org"),
    )


def secrets_for(sb):
    from services.core.secrets import MemorySecrets

    return MemorySecrets({"credly_token": sb.credly.token, "docebo_client_secret": sb.docebo.client_secret,
                          "webhook_secret": SECRET})


async def prepare(sb, db_path, *, dropdown: dict[int, str] | None = None, import_templates=(T_IMPORT,)) -> None:
    """Settings, F1 and F2 against the real sandboxes, the courses' dropdown values and the
    external-training mappings (F5)."""
    from services.clients.credly import CredlyClient
    from services.clients.docebo import DoceboClient
    from services.flows import FlowContext, run_flow
    from services.store import settings as settings_service
    from services.store.db import Store
    from services.store.mappings import MappingInput, add_mapping

    with Store(db_path) as store:
        settings_service.set_settings(store, SETTINGS)
        credly = CredlyClient(sb.credly.base_url, sb.credly.organization_id, sb.credly.token)
        docebo = DoceboClient(sb.docebo.base_url, sb.docebo.client_id, sb.docebo.client_secret)
        try:
            ctx = FlowContext(store, credly, docebo)
            assert (await run_flow("templates", ctx, trigger="test")).status == "succeeded"
            assert (await run_flow("dropdown", ctx, trigger="test")).status == "succeeded"
        finally:
            await credly.aclose()
            await docebo.aclose()
        field_id = int(store.get_meta("docebo.course_field_id"))
        for course_id, name in (dropdown if dropdown is not None else {101: "Safety Basics", 102: "Fire Warden"}).items():
            sb.docebo.state.set_course_value(course_id, field_id, label=name)
        for tid in import_templates:
            add_mapping(store, MappingInput(template_id=tid, import_as_external_training=True))


async def point_webhooks(sb, urls: dict[str, str], **docebo_settings) -> None:
    import httpx

    origin_credly = sb.credly.base_url.rsplit("/v1", 1)[0]
    async with httpx.AsyncClient() as client:
        r = await client.put(f"{origin_credly}/_sandbox/webhook", json={"url": urls["credly"], "retry_delays": [0.2, 0.5, 1, 2]})
        r.raise_for_status()
        r = await client.put(f"{sb.docebo.base_url}/_sandbox/webhook",
                             json={"url": urls["docebo"], "retry_delays": [0.2, 0.5, 1, 2], **docebo_settings})
        r.raise_for_status()


async def until(condition, timeout: float = 20.0, what: str = "condition", interval: float = 0.02):
    """Poll ``condition`` (sync or async) until it is truthy, or fail after ``timeout`` seconds."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = condition()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")
        await asyncio.sleep(interval)


def badges(sb, *, states=("pending", "accepted")) -> list[tuple[str, str]]:
    return sorted((b.recipient_email.lower(), b.template_id) for b in sb.credly.state.badges.values() if b.state in states)


def trainings(sb) -> list[tuple[int, str]]:
    return sorted((int(t["user_id"]), t["course_name"]) for t in sb.docebo.state.external_trainings.values())


def inbox_rows(db_path) -> list[dict]:
    from services.store.db import Store

    with Store(db_path) as store:
        return list(store.db.query("SELECT * FROM inbox ORDER BY id"))


def senders_idle(sb) -> bool:
    return sb.credly.handles.webhooks.idle and sb.docebo.handles.webhooks.idle


def quiet(sb, db_path) -> bool:
    """Nothing left to deliver and nothing left to process."""
    if not senders_idle(sb):
        return False
    return all(r["status"] not in ("queued", "processing") for r in inbox_rows(db_path))
