"""For the STOW-RS tests: the console's real HTTPS server in a thread, a sender's token and
certificates (trustme), and a dicomweb-client session trusting the gateway's CA."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session
from sqlalchemy import select

from gateway.config import load_config
from gateway.db import Database
from gateway.queue.tables import Instance, QuarantineEntry
from gateway.web import tokens
from gateway.web.server import make_server
from gateway.web.users import UserStore
from tests.ingest.tls_pki import PACS_SUBJECT, make_ingest_pki
from tests.peers import free_port
from tests.web.helpers import in_thread

SECRET = b"test-secret"


class StowSite:
    """A gateway's configuration with STOW-RS on, one token sender and one certificate sender."""

    def __init__(self, folder: Path, pki=None, **stow):
        self.folder = folder
        self.pki = pki or make_ingest_pki(folder / "pki")
        self.token, token_hash = tokens.new_token()
        self.scrape_token, scrape_hash = tokens.new_token()
        self.port = free_port()
        root = folder / "var"
        self.config = load_config(None, {
            "storage": {"root": str(root)},
            "database": {"url": f"sqlite:///{folder / 'gateway.db'}"},
            "web": {"host": "127.0.0.1", "port": self.port, "tls_cert_file": str(self.pki.gateway.cert),
                    "tls_key_file": str(self.pki.gateway.key), "metrics_token_sha256": [scrape_hash],
                    "stow": {"enabled": True, "client_ca_file": str(self.pki.ca), **stow, "senders": [
                        {"name": "pacs-web", "calling_ae": "PACS_WEB", "token_sha256": token_hash},
                        {"name": "pacs-cert", "calling_ae": "PACS_CERT", "cert_subject": PACS_SUBJECT}]}},
        })
        self.db = Database(self.config.database.url)
        self.db.create_schema()
        self.sessions: list = []  # closed before the server stops (it waits for open connections)
        UserStore(self.config.web.users_path(root)).put("ada", role="admin", password="admin-password-12")

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def client(self, token: str | None = "mine", cert=None, chunk_size: int = 1_000_000) -> DICOMwebClient:
        """A dicomweb-client sender trusting the gateway's CA; ``token`` "mine" is the sender's own."""
        session = create_session()
        self.sessions.append(session)
        session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify (requests #3829)
        session.verify = str(self.pki.ca)
        if cert is not None:
            session.cert = (str(cert.cert), str(cert.key))
        token = self.token if token == "mine" else token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return DICOMwebClient(f"{self.url}/dicomweb", session=session, headers=headers, chunk_size=chunk_size)

    def instances(self) -> list[Instance]:
        with self.db.session() as session:
            rows = session.scalars(select(Instance)).all()
            session.expunge_all()
            return rows

    def quarantined(self) -> list[QuarantineEntry]:
        with self.db.session() as session:
            rows = session.scalars(select(QuarantineEntry)).all()
            session.expunge_all()
            return rows

    def receiving_leftovers(self) -> list[Path]:
        folder = self.config.storage.spool / "receiving"
        return sorted(folder.iterdir()) if folder.exists() else []

    @contextmanager
    def serving(self, graceful: bool = False):
        """The console serving in a thread; stopped at once after, or with ``graceful`` as
        ``deid-gateway serve`` stops it (its shutdown steps run)."""
        with in_thread(make_server(self.config, self.db, SECRET), "the console", graceful):
            try:
                yield self
            finally:
                for session in self.sessions:  # closed before the server stops
                    session.close()
