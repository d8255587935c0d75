"""The senders' side of the receiver tests: pynetdicom sending a file's bytes as they are, and
what storescu's output says about how a transfer ended.

dcmtk's storescu decodes a file before sending it (a deflated one is inflated in its memory,
then deflated again); pynetdicom's chunked send streams the data set from the file untouched,
which is what a test of the receiver needs for a deflate bomb or a corrupt stream.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config


def send_as_is(port: int, path: Path, called: str = "DEID_GW") -> int:
    """C-STORE ``path`` in its own transfer syntax; returns the status (-1: no response)."""
    meta = read_file_meta_info(path)
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    previous, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title=called)
        assert assoc.is_established
        response = assoc.send_c_store(path)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    return response.Status if "Status" in response else -1


def storescu_aborted(sent: subprocess.CompletedProcess) -> bool:
    """storescu saw its association aborted: it read the A-ABORT, or the receiver had closed
    the connection after it while storescu was still writing (which one is a matter of timing)."""
    output = sent.stdout + sent.stderr
    return sent.returncode != 0 and any(
        sign in output for sign in ("Peer Aborted Association", "Broken pipe", "Connection reset")
    )
