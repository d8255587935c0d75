"""Running the gateway's parts: receiver, scheduler, worker and forwarder.

``serve`` runs all four together: the receiver and the scheduler as threads of one process, the
worker (the study's job), the preparers (pixel stage), the forwarder and, on a machine with more
than one core, more receivers as processes beside it (see :mod:`gateway.children`), starting
again one that ends untold. Each part also runs alone against the same database and spool, so a
site can put CPU workers for headers (``work --role headers``) and a GPU worker for pixels
(``work --role pixels --device cuda``) on other hosts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler

from gateway import children
from gateway.audit import events as audit
from gateway.audit import seals
from gateway.config import ConfigError, GatewayConfig
from gateway.db import Database
from gateway.egress import forwarder as forwarding
from gateway.egress.forwarder import Forwarder
from gateway.egress.retention import purge_delivered
from gateway.files import make_hashed_folders, sweep_leftovers
from gateway.ingest.capacity import ConnectionCount
from gateway.ingest.scp import (Listeners, close_listeners, open_listeners, receive_in_child, start_listening,
                                start_receiver)
from gateway.keys import load_secret
from gateway.pipeline import prepare
from gateway.pipeline import worker as working
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.worker import Worker
from gateway.queue.stability import queue_stable_studies, reclaim_expired_leases
from gateway.queue.tables import WorkerRole
from gateway.stopping import stop_on_signals

log = logging.getLogger("gateway")

PARTS = ("receive", "schedule", "work", "forward")


@dataclass
class Runtime:
    config: GatewayConfig
    db: Database
    secret: bytes


def open_runtime(config: GatewayConfig) -> Runtime:
    for directory in (config.storage.spool, config.storage.outbox, config.storage.quarantine):
        directory.mkdir(parents=True, exist_ok=True)
    db = Database(config.database.url)
    db.create_schema()
    return Runtime(config, db, load_secret(config.deid, config.storage.root))


#: How often ``serve`` looks for a process of its own that has ended, to start it again.
SUPERVISE_SECONDS = 2.0

#: How often the scheduler looks for files abandoned mid-write (besides once at start).
SWEEP_INTERVAL = 300.0

#: The retention pass runs at most this often: unlike finding stable studies, nothing waits on it,
#: and at a 0.1 s scan interval it took a tenth of the receiving process's time during a study.
PURGE_INTERVAL = 2.0


def sweep_leftovers_audited(runtime: Runtime) -> int:
    """Remove abandoned half-written files from the spool, outbox and quarantine; audit the count."""
    storage = runtime.config.storage
    idle = max(60.0, 2 * runtime.config.ingest.network_timeout)  # longer than any transfer stalls
    removed = sweep_leftovers([storage.spool, storage.outbox, storage.quarantine], idle)
    if removed:
        log.warning("removed %d half-written files left by a process that stopped mid-write", removed)
        with runtime.db.session() as session:
            audit.record(session, audit.LEFTOVERS_REMOVED, actor=audit.process_actor("gateway"), files=removed)
    return removed


def _audit_ended(runtime: Runtime, ended: list[tuple[str, int | None]]) -> None:
    """One event for each process of ``serve`` that ended untold, by its kind (``preparer``, not
    ``preparer-1``) and exit code: a worker the OOM killer takes now and then is worth knowing
    about, and the console's ``/metrics`` counts them."""
    for name, code in ended:
        audit.record_alone(runtime.db, audit.PROCESS_ENDED, actor=audit.process_actor("gateway"),
                           process=name.rsplit("-", 1)[0], exit_code=code)


def scheduler_tick(runtime: Runtime, jobs_made: threading.Event | children.Wakeup) -> None:
    """One pass of the scheduler: jobs whose worker died are taken back, quiet studies become
    jobs. ``jobs_made`` is set when either happened, so that the worker of the same ``serve``
    (a thread, or a process of its own) starts at once instead of at its next poll
    (``queue.worker_poll_interval``)."""
    config, db = runtime.config, runtime.db
    try:
        reclaimed = reclaim_expired_leases(db, config.queue)
        if queue_stable_studies(db, config.queue, config.pixels.enabled) + reclaimed:
            jobs_made.set()
    except Exception as exc:  # a locked database must not kill the scheduler
        log.error("scheduler tick failed: %s", type(exc).__name__)


def _scheduler(runtime: Runtime, jobs_made: children.Wakeup) -> BackgroundScheduler:
    config, db = runtime.config, runtime.db
    scheduler = BackgroundScheduler()
    scheduler.add_job(scheduler_tick, "interval", args=(runtime, jobs_made), seconds=config.queue.scan_interval,
                      max_instances=1, coalesce=True, id="queue-tick")
    scheduler.add_job(_guarded(purge_delivered, db, config.storage.retention_hours), "interval",
                      seconds=max(config.queue.scan_interval, PURGE_INTERVAL), max_instances=1, coalesce=True,
                      id="purge")
    scheduler.add_job(_guarded(sweep_leftovers_audited, runtime), "interval", seconds=SWEEP_INTERVAL,
                      max_instances=1, coalesce=True, id="sweep")
    scheduler.add_job(_guarded(seals.seal, db, runtime.secret), "interval", seconds=seals.SEAL_INTERVAL,
                      max_instances=1, coalesce=True, id="audit-seal")
    return scheduler


def _guarded(task, *args):
    def run() -> None:
        try:
            task(*args)
        except Exception as exc:  # a locked database must not kill the scheduler
            log.error("scheduled %s failed: %s", task.__name__, type(exc).__name__)
    return run


def _web_server(runtime: Runtime):
    """The operator's console; refuses (ConfigError) to serve off loopback without TLS, or
    without accounts."""
    from gateway.web.server import make_server

    return make_server(runtime.config, runtime.db, runtime.secret)


@dataclass
class _Running:
    """What :func:`run` starts, and the wake-up calls between the parts, each a
    :class:`~gateway.children.Wakeup` since either side may be a process of its own."""

    stop: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)
    started: list[children.Child] = field(default_factory=list)
    receivers: list[children.Child] = field(default_factory=list)  # stopped first
    jobs_made: children.Wakeup = field(default_factory=children.Wakeup)  # scheduler -> worker
    arrivals: children.Wakeup = field(default_factory=children.Wakeup)  # receiver -> preparers
    outputs: children.Wakeup = field(default_factory=children.Wakeup)  # worker -> forwarder


def _start_preparers(config: GatewayConfig, device: str, running: _Running) -> None:
    """The processes that run the pixel stage on each instance as it arrives (both cores, each
    process its own model sessions): see :mod:`gateway.pipeline.prepare`."""
    count = prepare.processes(device, config.queue.pixel_processes)
    running.started += [children.start(prepare.serve, (config, device, running.arrivals), f"preparer-{n}")
                        for n in range(count)]


def _start_worker(runtime: Runtime, parts: tuple[str, ...], device: str, role: str, running: _Running) -> None:
    """The worker: a process of its own when it shares ``serve`` with the receiver
    (``queue.worker_own_process``), else a thread. Either way its pipeline is built before the
    receiver listens: a stage that cannot start stops start-up."""
    config = runtime.config
    if config.queue.worker_own_process and "receive" in parts:
        args = (config, device, role, runtime.secret, running.jobs_made, running.outputs)
        try:
            worker = children.start_and_wait(working.serve, args, "worker")
        except children.StartFailed as exc:
            raise ConfigError(str(exc)) from None
        # A job ends before its worker does, as with a thread: killed mid-job, its lease would
        # hold the study for up to a lease after a restart.
        worker.patience = config.queue.lease_seconds
        running.started.append(worker)
        return
    pipeline = build_pipeline(config, runtime.db, runtime.secret, device=device, role=role)
    worker = Worker.from_config(config, runtime.db, pipeline, role=role)
    worker.on_recorded = running.outputs.set
    running.threads.append(threading.Thread(target=worker.run_forever, args=(running.stop, running.jobs_made),
                                            name="worker"))


def _start_forwarder(runtime: Runtime, parts: tuple[str, ...], running: _Running) -> None:
    """The forwarder: a process of its own when it shares ``serve`` with other parts
    (``egress.own_process``), else a thread. Made here first either way, so that unusable TLS
    settings for a destination stop start-up."""
    config = runtime.config
    forwarder = Forwarder(config.egress, runtime.db, calling_ae=config.ingest.ae_title)
    if config.egress.own_process and len(parts) > 1:
        running.started.append(children.start(forwarding.serve, (config, running.outputs), "forwarder"))
    else:
        running.threads.append(threading.Thread(target=forwarder.run_forever, args=(running.stop, running.outputs),
                                                name="forwarder"))


def _start_receivers(runtime: Runtime, running: _Running) -> Listeners:
    """The receiver: this process and ``ingest.processes`` - 1 more, all accepting from the
    sockets bound here (see :mod:`gateway.ingest.listening`). Each is ready before the sockets
    listen, so a receiver that cannot start stops start-up, and once the port answers, every
    process accepts. The spool's folders are all made first: no acknowledgement then waits for
    one to be made and its parent synced."""
    config = runtime.config
    make_hashed_folders(config.storage.spool)
    listening = open_listeners(config.ingest)
    count = ConnectionCount(config.ingest.process_count)
    try:
        for n in range(1, config.ingest.process_count):
            args = (config, listening, count.for_process(n), runtime.secret, running.arrivals)
            try:
                running.receivers.append(children.start_and_wait(receive_in_child, args, f"receiver-{n}"))
            except children.StartFailed as exc:
                raise ConfigError(str(exc)) from None
        server = start_receiver(config.ingest, config.storage, runtime.db, runtime.secret,
                                on_received=running.arrivals.set, listening=listening, count=count)
        start_listening(config.ingest, listening)
        return server
    except BaseException:
        children.stop_all(running.receivers)
        close_listeners(listening)
        raise


def run(config: GatewayConfig, parts: tuple[str, ...] = PARTS, device: str = "auto",
        stop: threading.Event | None = None, role: str = WorkerRole.ALL) -> None:
    """Run the chosen parts until SIGTERM/SIGINT (or ``stop`` is set); ``role`` is the
    worker's (see :mod:`gateway.pipeline.worker`)."""
    runtime = open_runtime(config)
    sweep_leftovers_audited(runtime)
    # Before anything listens: a console that may not start stops start-up.
    web = _web_server(runtime) if "web" in parts else None
    running = _Running(stop or threading.Event())
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(running.stop.set)

    if "work" in parts:
        _start_worker(runtime, parts, device, role, running)
        if config.pixels.enabled and role != WorkerRole.HEADERS:
            _start_preparers(config, device, running)
    if "forward" in parts:
        _start_forwarder(runtime, parts, running)
    server = None
    if "receive" in parts:
        server = _start_receivers(runtime, running)
    scheduler = _scheduler(runtime, running.jobs_made) if "schedule" in parts else None
    if scheduler:
        scheduler.start()
    if web:
        running.threads.append(threading.Thread(target=web.run, name="web"))
    for thread in running.threads:
        thread.start()
    log.info("gateway running: %s", ", ".join(parts))
    try:
        while not running.stop.wait(SUPERVISE_SECONDS):
            ended = children.revive(running.receivers, running.stop)
            _audit_ended(runtime, ended + children.revive(running.started, running.stop))
    finally:
        log.info("stopping")
        if web:
            web.should_exit = True
        if server:
            server.shutdown()
            children.stop_all(running.receivers)
        if scheduler:
            scheduler.shutdown(wait=True)
        running.outputs.set()
        running.jobs_made.set()
        for thread in running.threads:
            thread.join()
        children.stop_all(running.started)
        runtime.db.dispose()
