"""Sending de-identified instances to a DICOMweb archive (STOW-RS), the same contract as
:mod:`gateway.egress.scu`: ``on_result`` once per item, as soon as its fate is known.

The archive's response names each instance it stored (ReferencedSOPSequence) or refused
(FailedSOPSequence); an instance it names in neither is treated as not delivered.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread

from gateway.egress.config import Destination
from gateway.egress.scu import Item

# Instances per request: a multipart body is held in memory whole.
REQUEST_SIZE = 20


def _client(destination: Destination) -> DICOMwebClient:
    session = requests.Session()
    if destination.username:
        password = os.environ.get(destination.password_env or "", "")
        session.auth = (destination.username, password)
    return DICOMwebClient(destination.url, session=session, timeout=destination.timeout)


def send(destination: Destination, calling_ae_title: str, items: list[Item],
         on_result: Callable[[Item, bool, str], None]) -> None:
    client = _client(destination)
    for start in range(0, len(items), REQUEST_SIZE):
        chunk = items[start:start + REQUEST_SIZE]
        try:
            datasets = [dcmread(item.path) for item in chunk]
        except Exception as exc:
            for item in chunk:
                on_result(item, False, f"not sent ({type(exc).__name__})")
            continue
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
        try:
            response = client.store_instances(datasets)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "error"
            for item in chunk:
                on_result(item, False, f"HTTP {status}")
            continue
        except requests.RequestException as exc:
            for item in chunk:
                on_result(item, False, f"not sent ({type(exc).__name__})")
            continue
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
