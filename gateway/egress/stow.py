"""Sending de-identified instances to a DICOMweb archive (STOW-RS), the same contract as
:mod:`gateway.egress.scu`: ``on_result`` once per item, as soon as its fate is known.

The archive's response names each instance it stored (ReferencedSOPSequence) or refused
(FailedSOPSequence); an instance it names in neither is treated as not delivered. The HTTP
session, its TLS and its credential come from :mod:`gateway.egress.https`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import requests
from authlib.integrations.base_client import OAuthError
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread

from gateway import tls
from gateway.config import ConfigError
from gateway.egress.config import Destination
from gateway.egress.https import build_session
from gateway.egress.scu import Item

log = logging.getLogger("gateway.egress")

# Instances per request: a multipart body is held in memory whole.
REQUEST_SIZE = 20


class StowSender:
    """One destination's session, kept between batches so that an OAuth token is reused until
    it expires (or the archive answers 401 or 403, after which a new one is fetched)."""

    def __init__(self, destination: Destination):
        self.destination = destination
        self.session = build_session(destination)  # ConfigError: stops start-up
        self.client = DICOMwebClient(destination.url, session=self.session, timeout=destination.timeout)
        # dicomweb-client would retry any failed request five times over 30 s, TLS refusals
        # included; the forwarder retries on its own schedule, with every attempt counted.
        self.client.set_http_retry_params(retry=False)
        self.stale_token = True

    def send(self, items: list[Item], on_result: Callable[[Item, bool, str], None],
             on_tls_failure: Callable[[str], None] | None = None) -> None:
        """STOW-RS every item, REQUEST_SIZE per request; ``on_tls_failure`` gets the reason of a
        failed handshake (with the archive or the token endpoint)."""
        try:
            self._fresh_token()
        except Exception as exc:  # unreachable token endpoint, refused client, bad TLS
            status = self._failure(exc, on_tls_failure, "token request failed")
            for item in items:
                on_result(item, False, status)
            return
        refused = None  # after a failed handshake the rest is not tried (nor audited) again
        for start in range(0, len(items), REQUEST_SIZE):
            chunk = items[start:start + REQUEST_SIZE]
            if refused:
                for item in chunk:
                    on_result(item, False, refused)
            else:
                refused = self._send_chunk(chunk, on_result, on_tls_failure)

    def _fresh_token(self) -> None:
        if self.destination.oauth is not None and (self.stale_token or not self.session.token):
            self.session.fetch_token()
            self.stale_token = False

    def _failure(self, exc: Exception, on_tls_failure, what: str) -> str:
        """The delivery status for ``exc``; a TLS failure is also reported as a security event."""
        found = tls.find_ssl_error(exc)
        if found is not None:
            if on_tls_failure is not None:
                on_tls_failure(tls.describe(found))
            return "TLS handshake failed"
        if isinstance(exc, ConfigError):  # a credential file removed or opened up meanwhile
            log.error("%s", exc)
            return "credential unusable"
        if isinstance(exc, OAuthError):
            return f"{what} ({exc.error or 'OAuthError'})"[:64]
        return f"{what} ({type(exc).__name__})"[:64]

    def _send_chunk(self, chunk: list[Item], on_result, on_tls_failure) -> str | None:
        """One request; returns the status when the TLS handshake failed, else None."""
        try:
            datasets = [dcmread(item.path) for item in chunk]
        except Exception as exc:
            for item in chunk:
                on_result(item, False, f"not sent ({type(exc).__name__})")
            return None
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
        try:
            response = self.client.store_instances(datasets)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "error"
            self.stale_token = self.stale_token or status in (401, 403)  # a revoked token
            for item in chunk:
                on_result(item, False, f"HTTP {status}")
            return None
        except Exception as exc:  # network, TLS, token refresh, a credential gone: not delivered
            status = self._failure(exc, on_tls_failure, "not sent")
            for item in chunk:
                on_result(item, False, status)
            return status if status == "TLS handshake failed" else None
        _report(response, chunk, uids, on_result)
        return None


def _report(response, chunk: list[Item], uids: list[str], on_result) -> None:
    """Each item's fate as the archive's response tells it: stored, refused, or not named."""
    stored = {str(i.ReferencedSOPInstanceUID) for i in response.get("ReferencedSOPSequence", [])}
    failed = {str(i.ReferencedSOPInstanceUID): int(i.get("FailureReason", 0x0110))
              for i in response.get("FailedSOPSequence", [])}
    for item, uid in zip(chunk, uids):
        if uid in stored:
            on_result(item, True, "stored")
        elif uid in failed:
            on_result(item, False, f"0x{failed[uid]:04X}")
        else:
            on_result(item, False, "not acknowledged")
