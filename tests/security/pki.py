"""Certificates made at test time (trustme): a site CA, and an impostor's CA beside it.

RSA keys, which every peer (dcmtk's BCP 195 profile, Orthanc's civetweb) takes. Private keys are
written 0600, as the gateway insists (a key others can read stops it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Leaf:
    cert: Path      # the certificate alone
    key: Path       # its private key (0600)
    combined: Path  # key and certificate in one PEM (Orthanc's SslCertificate), 0600


@dataclass(frozen=True)
class Pki:
    ca: Path             # the site CA's certificate: the bundle the gateway trusts
    server: Leaf         # an archive's certificate for localhost and 127.0.0.1, from the site CA
    client: Leaf         # the gateway's client certificate, from the site CA
    other_ca: Path       # another CA nobody configured
    impostor: Leaf       # a certificate for localhost and 127.0.0.1 from the other CA
    wrong_name: Leaf     # from the site CA, but for another host name


def _leaf(ca: trustme.CA, folder: Path, name: str, *identities: str) -> Leaf:
    issued = ca.issue_cert(*identities, key_type=trustme.KeyType.RSA)
    leaf = Leaf(folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.pem")
    issued.cert_chain_pems[0].write_to_path(str(leaf.cert))
    issued.private_key_pem.write_to_path(str(leaf.key))
    issued.private_key_and_cert_chain_pem.write_to_path(str(leaf.combined))
    leaf.key.chmod(0o600)
    leaf.combined.chmod(0o600)
    return leaf


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    site = trustme.CA(organization_name="site", key_type=trustme.KeyType.RSA)
    other = trustme.CA(organization_name="impostor", key_type=trustme.KeyType.RSA)
    site.cert_pem.write_to_path(str(folder / "site-ca.crt"))
    other.cert_pem.write_to_path(str(folder / "other-ca.crt"))
    return Pki(
        ca=folder / "site-ca.crt",
        server=_leaf(site, folder, "archive", "localhost", "127.0.0.1"),
        client=_leaf(site, folder, "gateway", "deid-gateway.test"),
        other_ca=folder / "other-ca.crt",
        impostor=_leaf(other, folder, "impostor", "localhost", "127.0.0.1"),
        wrong_name=_leaf(site, folder, "elsewhere", "archive.elsewhere.test"),
    )
