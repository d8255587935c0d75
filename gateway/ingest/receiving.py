"""Where a C-STORE data set lands while it arrives: a private folder of the spool.

pynetdicom can write a C-STORE data set to a file fragment by fragment as the P-DATA PDUs
arrive (``_config.STORE_RECV_CHUNKED_DATASET``), so an instance never sits in memory whole.
It opens that file with ``tempfile.NamedTemporaryFile`` in the system's temporary folder, which
would put patient data outside the gateway's protected storage, where no sweep looks. This
module is the adapter that changes only that: ``pynetdicom.dimse_messages.NamedTemporaryFile``
is replaced by :func:`_open_incoming`, which, for an AE registered here, opens the file in
``<spool>/receiving`` (mode 0700; files 0600, named ``.incoming-*`` so that
:func:`gateway.files.sweep_leftovers` removes any a crash leaves) and counts the bytes written.
Other AEs in the process get pynetdicom's own temporary file, as before.

pynetdicom decodes P-DATA in the association's DUL reader thread, which is how
:func:`_open_incoming` finds the association a file belongs to. When an instance passes
``max_instance_bytes`` its partial file is deleted at once, later fragments are dropped, and
the registered callback refuses it (it aborts the association). Files the C-STORE handler
never claimed (the peer went away mid-transfer) are deleted when the connection closes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pynetdicom import _config, dimse_messages, evt, transport

from gateway.files import TEMPORARY_PREFIX, make_dirs_durably

if TYPE_CHECKING:
    from pynetdicom.association import Association

_PYNETDICOM_TEMPORARY_FILE = tempfile.NamedTemporaryFile
_PYNETDICOM_RECV = transport.AssociationSocket.recv
_AREAS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # AE -> ReceivingArea
_INSTALL_LOCK = threading.Lock()


class IncomingFile:
    """One data set as pynetdicom writes it; quacks like the NamedTemporaryFile it replaces
    (``name``, ``write``, ``file.flush()``, ``close``)."""

    def __init__(self, area: ReceivingArea, assoc: Association):
        self._area, self.assoc = area, assoc
        self._file = _PYNETDICOM_TEMPORARY_FILE(mode="wb", dir=area.directory, prefix=TEMPORARY_PREFIX,
                                                delete=False)  # created 0600 by tempfile
        self.name = self._file.name
        self.path = Path(self.name)
        self.size = 0
        self._sha256 = hashlib.sha256()  # of every byte written: the file is not read again for it
        self.exceeded = False
        self.disk_full = False  # a write failed (no space): the rest is dropped, 0xA700 answered

    @property
    def file(self) -> IncomingFile:
        return self  # pynetdicom calls ``.file.flush()`` after each fragment

    def write(self, data: bytes) -> int:
        if self.exceeded or self.disk_full:
            return len(data)  # the instance is refused; the rest of it is dropped
        self.size += len(data)
        if self.size > self._area.limit:
            self.exceeded = True
            self.discard()
            self._area.on_exceeded(self.assoc)
            return len(data)
        try:
            written = self._file.write(data)
            self._sha256.update(data)
            return written
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # Not the sender's fault, and not the association's: take the rest of this instance
            # in, keep none of it, and answer "out of resources" so the sender tries it again.
            self.disk_full = True
            self.discard()
            return len(data)

    @property
    def digest(self) -> str:
        """SHA-256 of the complete file (names it in the spool or the quarantine), hashed as it
        was written."""
        return self._sha256.hexdigest()

    def flush(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.disk_full = True
            self.discard()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:  # the last buffered bytes did not fit
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.disk_full = True

    def discard(self) -> None:
        """Close and delete whatever is still at the temporary name (nothing once moved)."""
        try:
            self._file.close()  # flushes what is buffered, which fails on a full disk
        except OSError:
            pass
        self.path.unlink(missing_ok=True)


class ReceivingArea:
    """The receiving folder of one AE, its size limit, and the files of each association."""

    def __init__(self, directory: Path, limit: int, on_exceeded: Callable[[Association], None],
                 max_pdu_bytes: int = 1 << 30):
        self.directory, self.limit = directory, limit
        self.max_pdu_bytes = max_pdu_bytes  # see _guarded_recv
        self.on_exceeded = on_exceeded  # called in the reader thread; expected to abort
        self._open: dict[int, dict[Path, IncomingFile]] = {}  # id(association) -> its files
        self._lock = threading.Lock()
        _private_folder(directory)

    def register(self, ae) -> None:
        """Make ``ae``'s C-STORE data sets arrive here (see the module's docstring)."""
        _install()
        _AREAS[ae] = self

    def handlers(self) -> list:
        return [(evt.EVT_CONN_CLOSE, self.on_connection_closed)]

    def open(self, assoc: Association) -> IncomingFile:
        incoming = IncomingFile(self, assoc)
        with self._lock:
            self._open.setdefault(id(assoc), {})[incoming.path] = incoming
        return incoming

    def claim(self, event: evt.Event) -> IncomingFile | None:
        """The C-STORE request's file, closed and handed to the caller, who then owns it;
        None if it is not one of this area's (or its connection closed meanwhile)."""
        with self._lock:
            incoming = self._open.get(id(event.assoc), {}).pop(Path(event.dataset_path), None)
        if incoming is not None:
            incoming.close()
        return incoming

    def on_connection_closed(self, event: evt.Event) -> None:
        """Delete what the association left half-received (or received but never handled)."""
        with self._lock:
            left = self._open.pop(id(event.assoc), {})
        for incoming in left.values():
            incoming.discard()


def _private_folder(directory: Path) -> None:
    make_dirs_durably(directory)
    os.chmod(directory, 0o700)  # whatever the umask made of it: patient data, owner only


def _install() -> None:
    """Switch pynetdicom to chunked receiving and route its temporary files through here.

    Process-wide by pynetdicom's design; an AE that is not registered keeps pynetdicom's own
    temporary file. Installing twice is harmless.
    """
    with _INSTALL_LOCK:
        _config.STORE_RECV_CHUNKED_DATASET = True
        dimse_messages.NamedTemporaryFile = _open_incoming
        transport.AssociationSocket.recv = _guarded_recv


def _guarded_recv(self, nr_bytes: int) -> bytearray:
    """pynetdicom's ``AssociationSocket.recv``, refusing to read a PDU longer than the receiver
    accepts: pynetdicom reads each PDU whole, at the length its header declares (up to 4 GiB),
    whatever maximum we advertised. An OSError is what pynetdicom takes for a closed connection:
    the association ends, and nothing of the PDU was held."""
    area = _AREAS.get(self.assoc.ae) if self.assoc is not None else None
    if area is not None and nr_bytes > area.max_pdu_bytes:
        raise OSError(errno.EMSGSIZE, "PDU longer than the receiver accepts")
    return _PYNETDICOM_RECV(self, nr_bytes)


def _open_incoming(*args, **kwargs):
    """Called by pynetdicom, in the association's reader thread, for each C-STORE data set."""
    assoc = getattr(threading.current_thread(), "assoc", None)
    area = _AREAS.get(assoc.ae) if assoc is not None else None
    if area is None:
        return _PYNETDICOM_TEMPORARY_FILE(*args, **kwargs)
    return area.open(assoc)
