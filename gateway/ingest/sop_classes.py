"""Accepting storage SOP classes pynetdicom does not know (``ingest.accept_unknown_sop_classes``,
Orthanc's ``UnknownSopClassAccepted``): vendors' private classes (a Siemens CSA non-image, a
Philips 3D presentation), and public storage classes newer than the installed pynetdicom.

pynetdicom answers only the abstract syntaxes its AE lists, and serves a C-STORE by the service
class it knows for the SOP class. Per association, on A-ASSOCIATE-RQ, each proposed abstract
syntax that is storage-like and unknown gets a presentation context (the same transfer syntaxes
as every storage class), and is declared a member of the Storage Service Class the way SOP
Class Common Extended Negotiation (PS3.7 D.3.3.6) declares it — so the C-STORE reaches the
receiver's handler like any other. Nothing is registered globally, and a peer proposing
thousands of classes gets at most MAX_UNKNOWN of them.

What arrives is then treated like the rest: the header de-identified by the profile (private
attributes removed unless safe), the pixel data checked by the pixel stage — whatever it
cannot decode is quarantined, never forwarded unchecked — and rules may drop any SOP class.
"""

from __future__ import annotations

from pydicom.uid import UID
from pynetdicom import build_context, evt
from pynetdicom.pdu_primitives import SOPClassCommonExtendedNegotiation
from pynetdicom.service_class import ServiceClass
from pynetdicom.sop_class import uid_to_service_class

STORAGE_SERVICE_CLASS = "1.2.840.10008.4.2"
#: Public storage SOP classes all live under this root (PS3.4 B.5, PS3.6 Annex A).
STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."
DICOM_ROOT = "1.2.840.10008."
MAX_UNKNOWN = 64


def storage_like(uid: str) -> bool:
    """An abstract syntax pynetdicom has no service for, that is a storage SOP class or could
    be one: private (outside the DICOM root), or public under the storage root."""
    if not UID(uid).is_valid or uid_to_service_class(uid) is not ServiceClass:
        return False
    return not uid.startswith(DICOM_ROOT) or uid.startswith(STORAGE_ROOT)


def unknown_requested(assoc) -> list[str]:
    """The storage-like unknown abstract syntaxes ``assoc``'s requestor proposes."""
    found = dict.fromkeys(str(cx.abstract_syntax) for cx in assoc.requestor.requested_contexts
                          if storage_like(str(cx.abstract_syntax)))
    return list(found)[:MAX_UNKNOWN]


def handlers(transfer_syntaxes: list[str]) -> list:
    """The handlers that admit unknown storage SOP classes, offered in ``transfer_syntaxes``."""

    def on_requested(event: evt.Event) -> None:
        unknown = unknown_requested(event.assoc)
        if unknown:
            acceptor = event.assoc.acceptor
            acceptor.supported_contexts = [*acceptor.supported_contexts,
                                           *[build_context(uid, transfer_syntaxes) for uid in unknown]]

    def on_common_extended(event: evt.Event) -> dict:
        accepted = {}
        for uid in unknown_requested(event.assoc):
            item = SOPClassCommonExtendedNegotiation()
            item.sop_class_uid = uid
            item.service_class_uid = STORAGE_SERVICE_CLASS
            accepted[UID(uid)] = item
        return accepted

    return [(evt.EVT_REQUESTED, on_requested), (evt.EVT_SOP_COMMON, on_common_extended)]
