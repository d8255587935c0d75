"""Settings of pull mode: the PACS the gateway may query and retrieve from, and how hard.

The PACS must know the gateway as a DICOM node: the calling AE title the gateway queries with
(``calling_ae_title``, else ``ingest.ae_title``) may query and retrieve, and, for C-MOVE, the
move destination (``pull.move_destination``, else ``ingest.ae_title``) is registered with the
gateway's receiver address and port. The PACS's own AE title must be in
``ingest.allowed_callers``: the studies arrive through the gateway's receiver, like any other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.egress.config import TlsSettings
from gateway.settings_base import Section


class PullSource(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)
    # The AE title the gateway calls with; ingest.ae_title when null.
    calling_ae_title: str | None = Field(default=None, max_length=16)
    # move: the PACS opens an association to the gateway's receiver (C-MOVE); get: the studies
    # come back on the query association itself (C-GET), for PACSs that cannot reach the gateway.
    retrieve: Literal["move", "get"] = "move"
    # Seconds to wait for a connection and for each answer of a query.
    timeout: float = Field(default=30.0, gt=0)
    # Seconds to wait for each answer of a retrieve (the PACS answers after every instance).
    retrieve_timeout: float = Field(default=600.0, gt=0)
    # DICOM TLS to the PACS (as for an egress destination: its certificate verified against
    # ca_file with its host name, or server_name; the gateway's client certificate when set).
    # Queries and C-GET travel on these associations; a C-MOVE's instances come on the PACS's
    # own association to the gateway's receiver, so the PACS should send them to ingest.tls.
    tls: TlsSettings | None = None


class PullConfig(Section):
    sources: list[PullSource] = Field(default_factory=list)
    # The AE title C-MOVE sends to; ingest.ae_title when null.
    move_destination: str | None = Field(default=None, max_length=16)
    # Items retrieved at once (each has one association to the PACS at a time).
    max_concurrent: int = Field(default=2, ge=1, le=32)

    @model_validator(mode="after")
    def _unique_sources(self) -> PullConfig:
        names = [source.name for source in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("pull.sources: source names must be unique")
        return self

    def source(self, name: str | None) -> PullSource:
        """The source called ``name``, or the only (first) one; ValueError naming what is wrong."""
        if not self.sources:
            raise ValueError("no PACS to pull from: add one under pull.sources")
        if name is None:
            return self.sources[0]
        for source in self.sources:
            if source.name == name:
                return source
        raise ValueError(f"no pull source {name!r}; known: {[s.name for s in self.sources]}")
