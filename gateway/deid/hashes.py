"""Pseudonyms made by keyed hash alone: no database, the same answer on every worker.

Used for PatientID/PatientName when ``deid.pseudonyms.method`` is ``hash`` (and whenever no
database is at hand), and for AccessionNumber always. The base32 text of the HMAC keeps the
pseudonyms to the characters every VR they land in allows.
"""

from __future__ import annotations

import base64

from gateway import keys
from gateway.deid.config import PseudonymConfig


#: The purpose under which a research project's namespace key is derived from the gateway secret.
PROJECT = b"project-namespace:"


def project_secret(secret: bytes, project: str) -> bytes:
    """The key of ``project``'s own namespace: every keyed hash of its output (pseudonyms,
    accession numbers, UIDs, date shifts) is made with it, so no value of one project's data
    equals the same patient's value in another's."""
    return keys.keyed_hash(secret, PROJECT, project.encode("ascii"))


def patient_key(secret: bytes, patient_id: str) -> str:
    """The database lookup key of a patient: HMAC-SHA256 of the original PatientID, hex."""
    return keys.keyed_digest(secret, keys.PATIENT, patient_id.strip())


def hash_pseudonym(settings: PseudonymConfig, secret: bytes, patient_id: str) -> str:
    digest = keys.keyed_hash(secret, keys.PSEUDONYM, patient_id.strip().encode("utf-8"))
    text = base64.b32encode(digest).decode("ascii").rstrip("=")[: settings.hash_length]
    return settings.hash_pattern.format(project=settings.project, hash=text)[:64]


def accession_hash(secret: bytes, value: str, length: int = 16) -> str:
    digest = keys.keyed_hash(secret, keys.ACCESSION, value.strip().encode("utf-8"))
    return base64.b32encode(digest).decode("ascii")[:length]
