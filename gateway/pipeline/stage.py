"""The interface every de-identification stage implements.

A stage is a pure function of a dataset: dataset in, dataset out, no I/O of its own beyond what
its services give it. The worker owns reading, writing, the database and the audit log.

Two kinds of stage exist:
- instance stages (the pixel stage, the biometric stage) run once per received instance;
- profile stages (the header stage) run once per de-identification profile that some
  destination asks for, on a copy of the instance stages' result.

A stage that finds an instance unsafe to forward raises :class:`Quarantine`; the instance is
then kept back, never forwarded, and listed for review. A stage that cannot run *now*, through
no fault of the instance (its database is briefly unreachable), raises
:class:`StageUnavailable`; the whole job is then tried again later.

An instance stage may also do part of its work for several instances at once (the pixel stage
detects text in batches): it then implements :class:`PreparingStage`, the pipeline calls
``prepare`` on a group of working datasets, and each instance's own result reaches ``__call__``
as ``ctx.prepared[stage.name]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydicom import Dataset

# CID 7050 codes (PS3.16) that a stage declares once it has run and passed. The header stage
# writes DeidentificationMethodCodeSequence from the codes declared here plus its own options.
CLEAN_PIXEL_DATA = "113101"
CLEAN_RECOGNIZABLE_VISUAL_FEATURES = "113102"


class Quarantine(Exception):
    """Raised by a stage when an instance must not be forwarded.

    ``reason`` goes to the audit log and the quarantine listing, so it never carries a value
    from the dataset: say *what* failed ("pixel data cannot be decoded"), not *what it held*.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def contained(exc: BaseException) -> BaseException:
    """``exc`` as something to hold against one instance only; raised again if it is the
    process being told to stop.

    Everything else that escapes an instance's processing is that instance's fault, including
    the panics of native decoders: pyo3 raises them as ``PanicException``, a BaseException, so a
    plain ``except Exception`` would let one broken RLE stream fail the whole job. Use as
    ``except BaseException as exc: handle(contained(exc))``.
    """
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc
    return exc


class StageUnavailable(Exception):
    """Raised by a stage that cannot run now for a reason outside the instance (a service it
    depends on is down): the job is put back and tried later, and nothing is quarantined."""


@dataclass
class StageReport:
    """What one stage did to one instance, for the audit log: counts and coordinates only."""

    stage: str
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def count(self, action: str, n: int = 1) -> None:
        self.counts[action] = self.counts.get(action, 0) + n


@dataclass
class InstanceContext:
    """What a stage may know beyond the dataset it transforms.

    ``original`` is the instance as received, before any stage ran: the pixel stage matches
    burned-in text against its identifying values, and the header stage needs them to clean
    descriptors. Stages must not modify it. ``prepared`` holds, by stage name, what a
    :class:`PreparingStage` computed for this instance ahead of its turn.
    """

    original: Dataset
    profile: str | None = None
    prepared: dict[str, Any] = field(default_factory=dict)
    declared_options: set[str] = field(default_factory=set)
    method_notes: list[str] = field(default_factory=list)
    reports: list[StageReport] = field(default_factory=list)

    def report(self, stage: str) -> StageReport:
        report = StageReport(stage)
        self.reports.append(report)
        return report

    def declare(self, code: str) -> None:
        """Declare a CID 7050 option that this instance now satisfies (e.g. Clean Pixel Data)."""
        self.declared_options.add(code)

    def note_method(self, text: str) -> None:
        """Name, in DeidentificationMethod, an operation no CID 7050 option stands for (e.g. the
        biometric deformation and its model version). Text the gateway makes, never a value
        taken from the dataset; at most 64 characters (one LO value)."""
        if len(text) > 64:
            raise ValueError("a DeidentificationMethod value holds at most 64 characters")
        self.method_notes.append(text)


class Stage(Protocol):
    """One step of de-identification."""

    name: str

    def __call__(self, ds: Dataset, ctx: InstanceContext) -> Dataset:
        ...


class PreparingStage(Stage, Protocol):
    """An instance stage that can do part of its work for several instances at once."""

    def prepare(self, datasets: list[Dataset]) -> list[Any]:
        """One result per dataset (None where it prepared nothing), handed back to ``__call__``
        for that very dataset as ``ctx.prepared[self.name]``. Must not raise for one bad
        instance: leave that instance's result None and let its own turn meet the problem."""
        ...
