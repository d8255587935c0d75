"""Certificates for the DICOM TLS listener, made at test time (trustme).

The gateway's server certificate and two senders' client certificates come from the site CA;
an impostor's certificate carries the PACS's very subject and SAN but comes from another CA.
RSA keys, which dcmtk's BCP 195 profile takes; private keys 0600, as the gateway insists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

PACS_SUBJECT = "CN=pacs-main,OU=Radiology,O=Hospital"
PACS_SAN = "pacs-main.hospital.test"


@dataclass(frozen=True)
class Leaf:
    cert: Path
    key: Path

    def dcmtk(self, ca: Path) -> list[str]:
        """dcmtk's options for a TLS association presenting this certificate, trusting ``ca``."""
        return ["+tls", str(self.key), str(self.cert), "+cf", str(ca)]


@dataclass(frozen=True)
class IngestPki:
    ca: Path          # the site CA: signs the gateway's and the senders' certificates
    gateway: Leaf     # the gateway's server certificate (localhost, 127.0.0.1)
    pacs: Leaf        # PACS_SUBJECT, SAN PACS_SAN
    modality: Leaf    # CN=modality,..., SAN modality.hospital.test
    impostor: Leaf    # PACS_SUBJECT and PACS_SAN, from another CA


def _leaf(ca: trustme.CA, folder: Path, name: str, *identities: str, **subject) -> Leaf:
    issued = ca.issue_cert(*identities, key_type=trustme.KeyType.RSA, **subject)
    leaf = Leaf(folder / f"{name}.crt", folder / f"{name}.key")
    issued.cert_chain_pems[0].write_to_path(str(leaf.cert))
    issued.private_key_pem.write_to_path(str(leaf.key))
    leaf.key.chmod(0o600)
    return leaf


def make_ingest_pki(folder: Path) -> IngestPki:
    folder.mkdir(parents=True, exist_ok=True)
    site = trustme.CA(organization_name="site", key_type=trustme.KeyType.RSA)
    other = trustme.CA(organization_name="elsewhere", key_type=trustme.KeyType.RSA)
    site.cert_pem.write_to_path(str(folder / "site-ca.crt"))
    pacs = {"common_name": "pacs-main", "organization_unit_name": "Radiology", "organization_name": "Hospital"}
    return IngestPki(
        ca=folder / "site-ca.crt",
        gateway=_leaf(site, folder, "gateway", "localhost", "127.0.0.1"),
        pacs=_leaf(site, folder, "pacs", PACS_SAN, **pacs),
        modality=_leaf(site, folder, "modality", "modality.hospital.test", common_name="modality",
                       organization_unit_name="Radiology", organization_name="Hospital"),
        impostor=_leaf(other, folder, "impostor", PACS_SAN, **pacs),
    )
