"""Association threads that wait for work instead of polling for it.

pynetdicom runs two threads for every association: the upper layer's reactor (DUL), which reads
PDUs from the socket and sends the primitives handed to it, and the association's own reactor,
which takes decoded DIMSE messages and runs their handlers. In pynetdicom 3.0 both poll: each
sleeps 1 ms, looks at its socket and queues, and sleeps again ("TODO: try and make this event
based", says the library). Measured on ``deid-gateway receive`` (``bench/idle_associations.py``),
an association that sends nothing costs 5 % of a core, and eight cost 41 %: on a 2-core machine
that is CPU taken from receiving and de-identifying, and every waking thread also fights the
working ones for the GIL. Each handover between the two threads also waits out a sleep.

Here each thread blocks until there is something to do:

- the upper layer waits in ``select`` on its socket and on a doorbell, a pipe that any other
  thread rings when it hands the layer a primitive to send or tells it to stop;
- the association's reactor waits on an event that the upper layer sets when its state machine
  has left it something (a whole DIMSE message, a release, an abort) and when it ends.

Both still wake every :data:`TIMER_TICK` seconds to run the timers as before (ARTIM, the
network idle timeout). The loops are pynetdicom 3.0's own, step for step, with the sleep replaced
by the wait; :func:`install` puts them in place for pynetdicom 3.0 only, and any other version
keeps its own loops.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import threading
import time

import pynetdicom
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import A_ASSOCIATE

log = logging.getLogger("gateway.reactors")
# What pynetdicom's loops logged goes where it went: the library's logger, which the gateway
# keeps quiet because at DEBUG it dumps dataset values (gateway/logs.py).
LIBRARY_LOG = logging.getLogger("pynetdicom")

#: How often a waiting thread still wakes to look at its timers, in seconds.
TIMER_TICK = 0.05

#: The releases whose loops these replace, step for step.
SUPPORTED = ("3.0.",)

_installed = False


def supported(version: str) -> bool:
    """Whether these loops were written against this pynetdicom release."""
    return version.startswith(SUPPORTED)


def install() -> bool:
    """Make every association of this process wait for work; once, before the first association.

    Returns whether the waiting loops are in place (False on a pynetdicom they were not written
    for, which then keeps polling as it always has).
    """
    global _installed
    if _installed:
        return True
    if not supported(pynetdicom.__version__):
        log.warning("pynetdicom %s: associations keep polling", pynetdicom.__version__)
        return False
    DULServiceProvider.run_reactor = _run_upper_layer
    DULServiceProvider.send_pdu = _send_pdu_and_ring
    DULServiceProvider.kill_dul = _kill_upper_layer
    DULServiceProvider.stop_dul = _stop_upper_layer
    Association._run_reactor = _run_association
    Association.kill = _kill_association
    _installed = True
    return True


class Doorbell:
    """A pipe that other threads write a byte to, so one ``select`` wakes for it and a socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def ring(self) -> None:
        with self._lock:
            if self._write is None:
                return
            try:
                os.write(self._write, b"\0")
            except OSError:  # full: it is ringing already
                pass

    def wait(self, sock, timeout: float) -> bool:
        """Block until rung, ``sock`` is readable or ``timeout``; whether ``sock`` is readable."""
        watched = [self._read] if sock is None else [self._read, sock]
        try:
            readable, _, _ = select.select(watched, [], [], timeout)
        except (OSError, ValueError):  # the socket closed under us: the loop finds out itself
            return False
        if self._read in readable:
            self._drain()
        return sock is not None and sock in readable

    def _drain(self) -> None:
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        with self._lock:
            os.close(self._read)
            os.close(self._write)
            self._write = None


# The upper layer (DUL) ----------------------------------------------------------------------


def _doorbell(dul: DULServiceProvider) -> Doorbell | None:
    return getattr(dul, "_gateway_doorbell", None)


def _stir(assoc: Association) -> threading.Event:
    """The event the association's reactor waits on, made on first use by either thread."""
    stir = getattr(assoc, "_gateway_stir", None)
    if stir is None:
        stir = assoc.__dict__.setdefault("_gateway_stir", threading.Event())
    return stir


def _open_socket(dul: DULServiceProvider):
    """The connected socket to watch, or None before connecting and after closing."""
    transport = dul.socket
    if transport is None or not getattr(transport, "_is_connected", False):
        return None
    sock = transport.socket
    return sock if sock is not None and sock.fileno() >= 0 else None


def _send_pdu_and_ring(self: DULServiceProvider, primitive) -> None:
    _ORIGINAL["send_pdu"](self, primitive)
    bell = _doorbell(self)
    if bell is not None:
        bell.ring()


def _kill_upper_layer(self: DULServiceProvider) -> None:
    self._kill_thread = True
    bell = _doorbell(self)
    if bell is not None:
        bell.ring()


def _stop_upper_layer(self: DULServiceProvider) -> bool:
    """Stop the layer if it is idle (Sta1) and wait for its thread to end, as pynetdicom does."""
    if self.state_machine.current_state != "Sta1":
        return False
    _kill_upper_layer(self)
    while self.is_alive() and threading.current_thread() is not self:
        time.sleep(self._run_loop_delay)
    return True


def _run_upper_layer(self: DULServiceProvider) -> None:
    """pynetdicom 3.0's ``DULServiceProvider.run_reactor``, waiting where it slept."""
    bell = self._gateway_doorbell = Doorbell()
    try:
        _upper_layer_loop(self, bell)
    finally:
        self._gateway_doorbell = None
        bell.close()
        _stir(self.assoc).set()


def _upper_layer_loop(self: DULServiceProvider, bell: Doorbell) -> None:
    self._idle_timer.start()
    idle = woke_for_socket = False
    while True:
        if not self.assoc._dul_ready.is_set():
            self.assoc._dul_ready.set()
            idle = True
        if idle:
            if woke_for_socket:  # readable, yet nothing to read: do not spin on it
                time.sleep(self._run_loop_delay)
            woke_for_socket = bell.wait(_open_socket(self), TIMER_TICK)
        if self._kill_thread:
            break
        if self.artim_timer.expired:
            self.event_queue.put("Evt18")
        try:
            if self._process_recv_primitive():
                pass
            elif self._is_transport_event():
                self._idle_timer.restart()
        except Exception:
            LIBRARY_LOG.exception("Exception in DUL.run(), aborting association")
            _abort_at_once(self)
            return
        try:
            event = self.event_queue.get(block=False)
        except queue.Empty:
            idle = True
            continue
        self.state_machine.do_action(event)
        if _news_for_association(self):
            _stir(self.assoc).set()
        if _closed_before_a_request(self):
            self.to_user_queue.put(None)  # the acceptor's wait for a request ends now, empty-handed
        idle = woke_for_socket = False


def _closed_before_a_request(self: DULServiceProvider) -> bool:
    """Whether the connection of an acceptor closed (or its ARTIM timer ran out) before any
    A-ASSOCIATE-RQ came. pynetdicom's acceptor would go on waiting for the request until its ACSE
    timeout (``ingest.network_timeout``, 60 s), and count meanwhile against
    ``ingest.max_associations``: a load balancer's TCP health check every few seconds held every
    slot. Told now, it ends as if that timeout had passed."""
    assoc = self.assoc
    return (assoc.is_acceptor and assoc.requestor.primitive is None and not assoc.is_established
            and self.state_machine.current_state == "Sta1" and not self.to_user_queue.queue)


def _news_for_association(self: DULServiceProvider) -> bool:
    """Whether the association's reactor has something to take: a whole DIMSE message, or a
    primitive for its ACSE (a release or an abort). Most PDUs are fragments of a data set, and
    waking it for each cost 5 % of the receiving process's time."""
    return bool(self.assoc.dimse.msg_queue.queue) or bool(self.to_user_queue.queue)


def _abort_at_once(self: DULServiceProvider) -> None:
    """Send an A-ABORT past the state machine, which an exception may have left inconsistent."""
    abort = A_ABORT_RQ()
    abort.source, abort.reason_diagnostic = 0x02, 0x00
    self.socket.send(abort.encode())
    self.assoc.is_aborted = True
    self.assoc.is_established = False
    self.assoc._kill = True
    self._kill_thread = True


# The association's reactor ------------------------------------------------------------------


def _kill_association(self: Association) -> None:
    self._kill = True
    _stir(self).set()
    _ORIGINAL["kill"](self)


def _run_association(self: Association) -> None:
    """pynetdicom 3.0's ``Association._run_reactor``, waiting where it slept.

    While it waits it counts as paused, so a thread that pauses it to send (``send_c_store`` and
    the like) need not wait for it to wake. pynetdicom's own loop has a race there: a thread that
    pauses it just after it passed the checkpoint, and before it said it was no longer paused,
    goes on to send while the reactor takes the answer off the queue (the sender then gets none).
    So once it has said so, it looks at the checkpoint again before touching a queue.
    """
    stir = _stir(self)
    self._is_paused = False
    served = False
    while not self._kill:
        self._is_paused = True
        if not served:
            stir.wait(TIMER_TICK)
        self._reactor_checkpoint.wait()
        self._is_paused = False
        if not self._reactor_checkpoint.is_set():  # paused again meanwhile: the pauser owns the queues
            served = False
            continue
        stir.clear()

        context_id, msg = self.dimse.get_msg(block=False)
        served = msg is not None
        if served:
            self._serve_request(msg, context_id)
        if _association_ends(self):
            return


def _association_ends(self: Association) -> bool:
    """pynetdicom 3.0's checks after each message: release, abort, a dead DUL, network timeout."""
    if self.is_established and self.acse.is_release_requested():
        self.acse.send_release(is_response=True)
        LIBRARY_LOG.info("Association Released")
        self.is_released = True
        self.is_established = False
        pynetdicom.evt.trigger(self, pynetdicom.evt.EVT_RELEASED, {})
        self.kill()
        return True
    if self.acse.is_aborted():
        LIBRARY_LOG.info("Association Aborted")
        self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV fires for subscribers
        self.is_aborted = True
        self.is_established = False
        pynetdicom.evt.trigger(self, pynetdicom.evt.EVT_ABORTED, {})
        self.kill()
        return True
    if not self.dul.is_alive():
        self.kill()
        return True
    if self.dul.idle_timer_expired():
        LIBRARY_LOG.error("Network timeout reached")
        if self.network_timeout_response == "A-RELEASE":
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self.release()
            self._is_paused = False
        else:
            self.abort()
        self.kill()
        return True
    return False


_ORIGINAL = {"send_pdu": DULServiceProvider.send_pdu, "kill": Association.kill}


# Requesting an association --------------------------------------------------------------------


def rejected(assoc: Association) -> bool:
    """Whether the peer answered an association this process requested with an A-ASSOCIATE-RJ.

    pynetdicom's ``is_rejected`` misses one now and then (3 in 480 on loopback): its requesting
    thread checks that the socket is connected before it waits for the answer, and when the upper
    layer, which here handles each PDU the moment it arrives, has already taken the rejection and
    closed the connection as the protocol says, pynetdicom takes the closed socket for a failed
    connect and reports an abort, the rejection left unread in its queue."""
    if assoc.is_rejected:
        return True
    return any(isinstance(primitive, A_ASSOCIATE) and primitive.result in (0x01, 0x02)
               for primitive in list(assoc.dul.to_user_queue.queue))
