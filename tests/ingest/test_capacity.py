"""Connections counted per receiving process, added up over all of them."""

from __future__ import annotations

import multiprocessing
import socket

from pynetdicom import AE

from gateway.ingest.capacity import ConnectionCount


def _accept_two_and_start_one(count: ConnectionCount, counted, done) -> None:
    ae, first, second = AE(), socket.socket(), socket.socket()
    count.accepted(ae, first)
    count.accepted(ae, second)
    count.started(ae, first)  # an association thread that ended at once: nothing left of it
    counted.set()
    done.wait(60)


def test_a_connection_counts_from_its_accept_until_its_association_ends():
    count, ae, sock = ConnectionCount(), AE(), socket.socket()
    count.accepted(ae, sock)
    assert count.total == 1
    count.started(ae, sock)  # its association ran (the thread counted by pynetdicom) and ended
    assert count.total == 0
    sock.close()


def test_every_process_adds_its_own_connections_to_the_total_while_it_lives():
    spawn = multiprocessing.get_context("spawn")
    count, ae = ConnectionCount(processes=3), AE()
    counted, done = spawn.Event(), spawn.Event()
    child = spawn.Process(target=_accept_two_and_start_one, args=(count.for_process(2), counted, done))
    child.start()
    assert counted.wait(60)
    count.accepted(ae, socket.socket())
    assert count.total == 2  # one here, one in the child
    assert count.busier_than_another  # the second process holds none

    done.set()
    child.join(60)
    assert count.total == 1  # the child's connections ended with it, whatever its slot says


def test_a_process_is_busier_while_another_holds_fewer():
    count, ae = ConnectionCount(processes=2), AE()
    other = count.for_process(1)
    count.accepted(ae, socket.socket())
    assert count.busier_than_another
    assert not other.busier_than_another
    other.accepted(ae, socket.socket())
    assert not count.busier_than_another and not other.busier_than_another
