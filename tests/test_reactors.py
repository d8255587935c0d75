"""Association threads wait for work instead of polling for it (gateway/reactors.py).

Real pynetdicom associations over loopback, both ends in this process, with the gateway's loops
installed as every gateway process installs them.
"""

from __future__ import annotations

import socket
import threading
import time

import psutil
import pytest
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.sop_class import Verification

from gateway import reactors
from tests.peers import free_port


@pytest.fixture
def acceptor():
    """A Verification SCP on a loopback port; yields (port, the associations it accepted)."""
    assert reactors.install()
    accepted: list[Association] = []
    ae = AE(ae_title="ACCEPTOR")
    ae.add_supported_context(Verification)
    ae.network_timeout = 30
    port = free_port()
    handlers = [(evt.EVT_ESTABLISHED, lambda event: accepted.append(event.assoc))]
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    yield ae, port, accepted
    server.shutdown()


def associate(port: int) -> Association:
    ae = AE(ae_title="REQUESTOR")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="ACCEPTOR")
    assert assoc.is_established
    return assoc


def reactor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, (Association, DULServiceProvider))]


def cpu_seconds(threads: list[threading.Thread]) -> float:
    ids = {t.native_id for t in threads}
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in ids)


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_waiting_loops_are_in_place_on_the_pinned_release():
    assert reactors.install()
    assert DULServiceProvider.run_reactor is reactors._run_upper_layer
    assert Association._run_reactor is reactors._run_association


def test_another_release_of_pynetdicom_keeps_its_own_loops():
    assert reactors.supported("3.0.4")
    assert not reactors.supported("3.1.0")
    assert not reactors.supported("2.1.1")


def test_idle_associations_leave_the_processor_alone(acceptor):
    """Four idle associations are 16 threads; polling every millisecond they burn about half a core."""
    _, port, accepted = acceptor
    requestors = [associate(port) for _ in range(4)]
    assert wait_until(lambda: len(accepted) == 4)
    time.sleep(0.2)
    threads = reactor_threads()
    assert len(threads) == 16
    before, started = cpu_seconds(threads), time.monotonic()
    time.sleep(1.0)
    used = (cpu_seconds(threads) - before) / (time.monotonic() - started)
    for assoc in requestors:
        assoc.release()
    assert used < 0.1, f"{used:.3f} s of CPU per second for 16 idle association threads"


def test_many_requests_on_one_association_are_each_answered(acceptor):
    _, port, _ = acceptor
    assoc = associate(port)
    statuses = [assoc.send_c_echo().Status for _ in range(300)]
    assoc.release()
    assert statuses == [0x0000] * 300


def test_a_release_ends_the_threads_of_both_ends(acceptor):
    _, port, accepted = acceptor
    assoc = associate(port)
    assert wait_until(lambda: len(accepted) == 1)
    assoc.release()
    assert assoc.is_released
    assert wait_until(lambda: not reactor_threads(), 2.0)


def test_an_abort_by_the_requestor_ends_the_acceptor(acceptor):
    _, port, accepted = acceptor
    assoc = associate(port)
    assert wait_until(lambda: len(accepted) == 1)
    assoc.abort()
    assert wait_until(lambda: accepted[0].is_aborted, 2.0)
    assert wait_until(lambda: not reactor_threads(), 2.0)


def test_the_network_timeout_still_ends_a_silent_association(acceptor):
    """The timers run on the waiting threads' periodic tick, not on a poll."""
    ae, port, accepted = acceptor
    ae.network_timeout = 0.3
    assoc = associate(port)
    assert wait_until(lambda: len(accepted) == 1)
    assert wait_until(lambda: not assoc.is_established, 3.0)
    assert wait_until(lambda: not reactor_threads(), 2.0)


def test_associations_that_come_and_go_leave_no_descriptor_open(acceptor):
    _, port, _ = acceptor
    associate(port).release()
    assert wait_until(lambda: not reactor_threads(), 2.0)
    open_before = psutil.Process().num_fds()
    for _ in range(20):
        associate(port).release()
    assert wait_until(lambda: not reactor_threads(), 2.0)
    assert psutil.Process().num_fds() <= open_before


def test_a_connection_closed_before_any_request_frees_its_place_at_once(acceptor):
    """A TCP health check connects and closes; pynetdicom's acceptor waited for an A-ASSOCIATE-RQ
    until its ACSE timeout, counting against the maximum number of associations meanwhile."""
    ae, port, _ = acceptor
    ae.acse_timeout = 30
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)):
            pass
    assert wait_until(lambda: not reactor_threads(), 2.0)
    associate(port).release()


def test_every_rejection_is_read_as_one_even_when_pynetdicom_reports_an_abort(acceptor):
    """pynetdicom's requesting thread looks whether its socket is connected before it waits for
    the answer; when the A-ASSOCIATE-RJ and the close after it were handled first, it reported an
    abort (3 in 480 on loopback), and the gateway's forwarder said "association failed". Without the fix
    this fails in most runs."""
    ae, port, _ = acceptor
    ae.require_called_aet = True
    requestor = AE(ae_title="REQUESTOR")
    requestor.add_requested_context(Verification)
    answers = [requestor.associate("127.0.0.1", port, ae_title="SOMEONE_ELSE") for _ in range(300)]
    assert all(reactors.rejected(assoc) for assoc in answers)
    assert not any(assoc.is_established for assoc in answers)


def test_a_connection_nobody_answers_is_not_a_rejection():
    requestor = AE(ae_title="REQUESTOR")
    requestor.add_requested_context(Verification)
    requestor.connection_timeout = 2
    assoc = requestor.associate("127.0.0.1", free_port(), ae_title="ACCEPTOR")
    assert not assoc.is_established and not reactors.rejected(assoc)
