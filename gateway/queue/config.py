"""Settings of study stability and job leases."""

from pydantic import Field

from gateway.settings_base import Section


class QueueConfig(Section):
    # A study with no new instance for this many seconds is ready for de-identification.
    stable_after: float = Field(default=60.0, gt=0)
    # How often the scheduler looks for stable studies and expired leases.
    scan_interval: float = Field(default=1.0, gt=0)
    # A worker that has not finished a job within this many seconds is presumed dead.
    lease_seconds: float = Field(default=600.0, gt=0)
    # A job that failed this often is marked failed and shown in status and audit.
    max_job_attempts: int = Field(default=3, ge=1)
    worker_poll_interval: float = Field(default=1.0, gt=0)
    # serve: the worker in a process of its own, so that receiving and the studies' jobs each have
    # a core (in one process, Python runs one thread at a time).
    worker_own_process: bool = True
    # Processes that run the pixel stage on each instance as it arrives (gateway.pipeline.prepare),
    # each with its own model sessions; 0: one per core on a CPU, one on a GPU.
    pixel_processes: int = Field(default=0, ge=0)
