"""The receiver's listening sockets, made once and shared by every process that receives.

Why more than one process: a process runs Python on one core at a time, and receiving an
instance is mostly Python (pynetdicom's PDUs, the header's validation, the row). Four
associations into one process took 153 instances/s; into two, 223 (``bench/ingest.py``, 2
cores, same run; Orthanc 288). Each process is a whole receiver, with its own application entity and group commit;
SQLite's writers of all of them take turns (:mod:`gateway.turns`).

Why one socket, shared, rather than a socket per process with ``SO_REUSEPORT``: the kernel
would spread associations by a hash of their addresses, so four of them could all land in one
process while another idles; from one socket, the process that holds fewest connections takes
the next. And a second gateway started on the same port by mistake fails to
bind, as it always did, instead of quietly taking half of the connections.

Each process waits for connections on the socket; when one arrives, every process waiting wakes
and one accepts it: the socket is non-blocking, so the others find nothing and wait again. Which
one is decided by the connections each holds (:mod:`gateway.ingest.capacity`): associations that
arrive together, all processes idle, would otherwise all go to whichever woke first.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pynetdicom.transport import AddressInformation, ThreadedAssociationServer

from gateway.ingest.capacity import ConnectionCount


#: How long a process that holds more connections than another waits before it accepts the next
#: one itself: enough for a process busy with Python to get its turn and take it (a GIL switch
#: is 5 ms), short enough that a process that is stuck costs the sender little.
YIELD_SECONDS = 0.02


#: How long an accept loop waits before it looks again while its socket is bound but does not
#: listen yet (the other receiving processes are still starting).
NOT_LISTENING_SECONDS = 0.05


@dataclass(frozen=True)
class Listening:
    """One of the receiver's sockets: the plain listener's or the DICOM TLS one's."""

    sock: socket.socket
    tls: bool

    @property
    def address(self) -> tuple:
        return self.sock.getsockname()

    def listen(self, backlog: int) -> None:
        """Answer connections from now on, for every process that holds the socket; ``backlog``
        connections may wait there while all of them are busy."""
        self.sock.listen(backlog)


def bind(host: str, port: int, tls: bool) -> Listening:
    """A socket bound to ``host:port`` (``OSError`` when the port is taken) that does not
    listen yet: the receiving processes start on it first, so that once the port answers,
    every one of them accepts."""
    family = AddressInformation.from_tuple((host, port)).address_family
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as pynetdicom's own server
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return Listening(sock, tls)


class SharedSocketServer(ThreadedAssociationServer):
    """pynetdicom's association server, on a socket bound beforehand (``listening``) that other
    processes accept from too."""

    def __init__(self, *args, listening: socket.socket, count: ConnectionCount,
                 screen: Callable[[str], bool] | None = None, **kwargs):
        self._listening, self.count, self.screen = listening, count, screen
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        """Take the shared socket in place of the one ``TCPServer`` has just made."""
        self.socket.close()
        self.socket = self._listening
        self.socket.setblocking(False)  # another process may accept first: nothing to wait for
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Whoever bound the socket makes it listen (:meth:`Listening.listen`)."""

    def get_request(self) -> tuple:
        """Accept the connection waiting, unless another process holds fewer: that one is given
        a moment to take it first. Raises ``BlockingIOError`` when another process has taken it,
        and ``OSError`` (EINVAL) while the socket does not listen yet: ``socketserver`` passes
        over both."""
        self.count.publish(self.ae)
        if self.count.busier_than_another:
            time.sleep(YIELD_SECONDS)
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # not listening yet
                time.sleep(NOT_LISTENING_SECONDS)
            raise

    def verify_request(self, request, client_address) -> bool:
        """Whether to go on with a connection just accepted: ``screen`` (the receiver's) may
        refuse its address, and ``socketserver`` then closes it before anything is read from it.
        One that goes on counts from now on."""
        if self.screen is not None and not self.screen(client_address[0]):
            return False
        self.count.accepted(self.ae, request)
        return True

    def process_request_thread(self, request, client_address) -> None:
        """The connection's thread, which starts its association's thread and ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.count.started(self.ae, request)

    def service_actions(self) -> None:
        """After each connection, and at least every half second: this process's count, for the
        limit over all of them (see :mod:`gateway.ingest.capacity`)."""
        super().service_actions()
        self.count.publish(self.ae)

    def server_close(self) -> None:
        """Close this process's descriptor only: shutting the socket down, as pynetdicom does,
        would stop the other processes from accepting too."""
        self.socket.close()


def serve(ae, listening: Listening, ssl_context, evt_handlers: list, contexts: list,
          count: ConnectionCount, screen: Callable[[str], bool] | None = None) -> SharedSocketServer:
    """Accept associations for ``ae`` on ``listening`` in a thread of this process, as
    pynetdicom's ``AE.start_server(block=False)`` does on a socket of its own; ``screen``
    says, from its address alone, whether a connection may go on."""
    server = ae.make_server(listening.address, ae_title=ae.ae_title, contexts=contexts, ssl_context=ssl_context,
                            evt_handlers=evt_handlers, server_class=SharedSocketServer,
                            listening=listening.sock, count=count, screen=screen)
    ae._servers.append(server)  # what AE.shutdown() and server.shutdown() expect
    threading.Thread(target=server.serve_forever, name="AcceptorServer", daemon=True).start()
    return server
