"""``ingest.processes``: the receiver runs in more than one process, all accepting from the ports
``serve`` (here ``receive``) bound, with ``max_associations`` held over all of them together."""

from __future__ import annotations

import os
import shutil
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification
from sqlalchemy import func, select

from gateway import children
from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.config import GatewayConfig
from gateway.db import Database
from gateway.ingest import callers
from gateway.ingest.capacity import ConnectionCount
from gateway.ingest.scp import open_listeners, receive_in_child
from gateway.queue.tables import Instance
from gateway.reactors import rejected
from tests.ingest.tls_pki import make_ingest_pki
from tests.peers import Gateway, free_port, port_open, storescu, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def receiving(tmp_path):
    """``receive`` in two processes, with these ingest settings; stopped after the test, even
    one that never came up."""
    started: list[Gateway] = []

    def start(**ingest) -> Gateway:
        started.append(Gateway(tmp_path / f"gateway{len(started)}", receiver_processes=2,
                               settings={"ingest": ingest, "queue": {"stable_after": 3600}}))
        return started[-1].start("receive")

    yield start
    for gateway in started:
        gateway.stop()


def _database(gateway: Gateway) -> Database:
    return Database(f"sqlite:///{gateway.workdir / 'var' / 'gateway.db'}")


def _receivers(gateway: Gateway) -> list[psutil.Process]:
    """``receive`` itself and the receiving processes it started, alive (not the resource tracker)."""
    serve = psutil.Process(gateway.process.pid)
    started = []
    for child in serve.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                started.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return [serve, *started]


def _connections_held(process: psutil.Process, port: int) -> int:
    return sum(1 for connection in process.net_connections("tcp")
               if connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port == port)


def _associate(port: int, count: int, tls_args: tuple | None = None) -> list:
    requestor = AE(ae_title="SCANNER")
    requestor.add_requested_context(Verification)
    return [requestor.associate("127.0.0.1", port, ae_title="DEID_GW", tls_args=tls_args) for _ in range(count)]


def _accepted_and_released(port: int) -> bool:
    (assoc,) = _associate(port, 1)
    accepted = assoc.is_established
    if accepted:
        assoc.release()
    return accepted


def test_associations_that_arrive_together_are_received_by_both_processes(receiving):
    gateway = receiving()
    receivers = _receivers(gateway)
    assert len(receivers) == 2
    associations = _associate(gateway.port, 4)
    assert all(assoc.is_established for assoc in associations)
    held = [_connections_held(process, gateway.port) for process in receivers]
    assert sum(held) == 4 and min(held) >= 1
    for assoc in associations:
        assoc.release()

    gateway.stop()
    assert not any(process.is_running() and process.status() != psutil.STATUS_ZOMBIE for process in receivers)


def test_max_associations_holds_over_both_processes(receiving):
    gateway = receiving(max_associations=3)
    held = _associate(gateway.port, 3)
    assert all(assoc.is_established for assoc in held)
    (refused,) = _associate(gateway.port, 1)
    assert rejected(refused)
    with _database(gateway).reading() as session:
        reasons = list(session.scalars(select(AuditEvent.detail["reason"].as_string())
                                       .where(AuditEvent.event == audit.REJECTED_ASSOCIATION)))
    assert reasons == [callers.BUSY]

    held.pop().release()
    assert _accepted_and_released(gateway.port)  # its place is free as soon as it is over
    for assoc in held:
        assoc.release()


def test_a_sender_that_opens_its_next_association_at_once_is_never_refused_at_the_limit(receiving):
    """Modalities often send each series, or each instance, on an association of its own. The
    thread of the one just released still runs for a while (auditing, stopping its DUL); counted,
    it made the next one past the limit: 38 of 40 were refused with a limit of 1."""
    gateway = receiving(max_associations=1)
    assert all(_accepted_and_released(gateway.port) for _ in range(20))
    # nor after a port monitor's probe: a connection that closes without asking for an association
    assert all(port_open(gateway.port) and _accepted_and_released(gateway.port) for _ in range(10))
    (held,) = _associate(gateway.port, 1)
    (refused,) = _associate(gateway.port, 1)
    assert held.is_established and rejected(refused)  # the limit itself still holds
    held.release()


def test_a_receiving_process_that_dies_frees_its_place_and_is_started_again(receiving, study):
    gateway = receiving(max_associations=2)
    serve, child = _receivers(gateway)
    held = _associate(gateway.port, 2)
    assert [_connections_held(process, gateway.port) for process in (serve, child)] == [1, 1]

    child.kill()  # the OOM killer, say: its association dies with it
    wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 10, what="the child gone")
    wait_for(lambda: _accepted_and_released(gateway.port), 10, interval=0.6,
             what="an association accepted in the place the dead process held")
    assert storescu(gateway.port, study.files[:3]).returncode == 0
    with _database(gateway).reading() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 3

    def started_again() -> bool:
        receivers = _receivers(gateway)
        return len(receivers) == 2 and receivers[1].pid != child.pid
    wait_for(started_again, 30, what="another receiving process in its place")
    for assoc in held:
        assoc.release()


def _shares(files: list[Path], folder: Path, count: int) -> list[list[Path]]:
    """``files`` dealt into ``count`` folders of their own (storescu's helper writes its
    association profile beside them)."""
    shares = []
    for n in range(count):
        (folder / str(n)).mkdir(parents=True)
        shares.append([Path(shutil.copy(path, folder / str(n) / path.name)) for path in files[n::count]])
    return shares


def test_every_instance_sent_over_four_associations_is_recorded_once(receiving, tmp_path, study):
    gateway = receiving()
    shares = _shares(study.files, tmp_path / "shares", 4)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda share: storescu(gateway.port, share), shares))
    assert all(result.returncode == 0 for result in results)
    with _database(gateway).reading() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == len(study.files)
    spooled = list((gateway.workdir / "var" / "spool").rglob("*.dcm"))
    assert len(spooled) == len(study.files)
    assert all(os.stat(path).st_mode & 0o777 == 0o600 for path in spooled)


def test_the_dicom_tls_listener_is_shared_too(receiving, tmp_path):
    pki = make_ingest_pki(tmp_path / "pki")
    tls_port = free_port()
    gateway = receiving(tls={"port": tls_port, "cert_file": str(pki.gateway.cert), "key_file": str(pki.gateway.key),
                             "ca_file": str(pki.ca)})
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.modality.cert), str(pki.modality.key))
    receivers, associations = _receivers(gateway), []
    # Usually 1 and 1; on a loaded machine the process that holds one may take the next too.
    while len(associations) < 6 and min(_connections_held(process, tls_port) for process in receivers) == 0:
        associations += _associate(tls_port, 1, tls_args=(context, "localhost"))
    assert all(assoc.is_established for assoc in associations)
    assert min(_connections_held(process, tls_port) for process in receivers) == 1
    for assoc in associations:
        assoc.release()


def test_a_receiving_process_wakes_the_preparers_after_what_it_records(tmp_path, study):
    config = GatewayConfig(ingest={"ae_title": "DEID_GW", "port": free_port(), "allowed_callers": [{"ae_title": "SCANNER"}]},
                           storage={"root": str(tmp_path / "var")},
                           database={"url": f"sqlite:///{tmp_path / 'gateway.db'}"})
    Database(config.database.url).create_schema()
    (listening,) = open_listeners(config.ingest)
    arrivals = children.Wakeup()
    child = children.start_and_wait(receive_in_child, (config, [listening], ConnectionCount(), b"s" * 32, arrivals),
                                    "receiver-1")
    try:
        listening.listen(8)
        arrivals.clear()
        assert storescu(config.ingest.port, study.files[:2]).returncode == 0
        assert arrivals.wait(timeout=10)
    finally:
        children.stop_all([child])
        listening.sock.close()
