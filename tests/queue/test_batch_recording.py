"""The worker's outputs are written and recorded a batch at a time (gateway.queue.recording).

What matters: an instance counts as recorded only after its file is durable and its batch's
transaction has run; instances de-identified while a batch is being recorded share the next
one; a failed batch fails each of its instances (and nothing of it is recorded); and what waits
in memory is bounded whatever the instances' sizes.
"""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest

from gateway.queue.recording import BatchRecorder


class Ledger:
    """A ``record`` callback that notes each batch; it can be held closed until released."""

    def __init__(self, held: bool = False, fail_first: bool = False):
        self.batches: list[list[str]] = []
        self.open = threading.Event()
        self.entered = threading.Event()
        self.fail_first = fail_first
        if not held:
            self.open.set()

    def __call__(self, entries: list[str]) -> list[str]:
        self.entered.set()
        self.open.wait(10)
        self.batches.append(list(entries))
        if self.fail_first and len(self.batches) == 1:
            raise OSError("no space left on device")
        return [f"recorded {entry}" for entry in entries]


def _output(folder: Path, name: str, size: int = 10) -> list[tuple[Path, bytes]]:
    return [(folder / name[:1] / f"{name}.dcm", name.encode() * size)]


def test_instances_queued_during_a_batch_share_the_next_one(tmp_path):
    ledger = Ledger(held=True)
    with BatchRecorder(ledger) as recorder:
        first = recorder.submit("a", _output(tmp_path, "a"))
        assert ledger.entered.wait(10)  # "a" is being recorded; the rest queue meanwhile
        rest = [recorder.submit(name, _output(tmp_path, name)) for name in "bcde"]
        ledger.open.set()
        results = [future.result(10) for future in [first, *rest]]

    assert ledger.batches == [["a"], ["b", "c", "d", "e"]]
    assert results == [f"recorded {name}" for name in "abcde"]


def test_a_lingering_recorder_takes_what_arrives_soon_after_the_first_in_one_batch(tmp_path):
    """The forwarder's answers come one at a time, a few milliseconds apart."""
    ledger = Ledger()
    with BatchRecorder(ledger, linger=5.0, max_instances=4) as recorder:
        futures = []
        for name in "abcdef":
            futures.append(recorder.submit(name, []))
            time.sleep(0.01)
        assert [future.result(10) for future in futures[:4]] == [f"recorded {name}" for name in "abcd"]
    # Four (max_instances) end the wait at once; closing ends it for the last two.
    assert ledger.batches == [["a", "b", "c", "d"], ["e", "f"]]


def test_an_instance_is_recorded_only_once_its_file_is_in_place_and_private(tmp_path):
    seen = {}

    def record(entries):
        for entry in entries:
            path = tmp_path / entry[:1] / f"{entry}.dcm"
            seen[entry] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        return entries

    with BatchRecorder(record) as recorder:
        recorder.submit("xy", _output(tmp_path, "xy", size=3)).result(10)

    assert seen == {"xy": (b"xyxyxy", 0o600)}
    assert not list(tmp_path.glob("**/.incoming-*"))


def test_a_failed_batch_fails_each_of_its_instances_and_the_next_batch_goes_on(tmp_path):
    ledger = Ledger(held=True, fail_first=True)
    with BatchRecorder(ledger) as recorder:
        failing = [recorder.submit("a", _output(tmp_path, "a"))]
        assert ledger.entered.wait(10)
        later = recorder.submit("b", _output(tmp_path, "b"))
        ledger.open.set()
        with pytest.raises(OSError):
            failing[0].result(10)
        assert later.result(10) == "recorded b"


def test_a_file_that_cannot_be_written_fails_its_batch_before_anything_is_recorded(tmp_path):
    (tmp_path / "blocked").write_bytes(b"")  # a file where the output's folder should be
    ledger = Ledger()
    with BatchRecorder(ledger) as recorder:
        future = recorder.submit("x", [(tmp_path / "blocked" / "x.dcm", b"data")])
        with pytest.raises(OSError):
            future.result(10)

    assert ledger.batches == []


def test_the_worker_waits_once_the_outputs_waiting_pass_the_memory_bound(tmp_path):
    ledger = Ledger(held=True)
    with BatchRecorder(ledger, max_bytes=100) as recorder:
        recorder.submit("a", _output(tmp_path, "a", size=60))
        assert ledger.entered.wait(10)  # "a" (60 bytes) is being recorded and still counts
        submitted = threading.Event()
        late = threading.Thread(target=lambda: (recorder.submit("b", _output(tmp_path, "b", size=60)),
                                                submitted.set()))
        late.start()
        assert not submitted.wait(0.3)  # 60 + 60 > 100: held back
        ledger.open.set()
        assert submitted.wait(10)
        late.join()

    assert ledger.batches == [["a"], ["b"]]


def test_an_instance_larger_than_the_bound_still_goes_through_alone(tmp_path):
    with BatchRecorder(Ledger(), max_bytes=10) as recorder:
        assert recorder.submit("big", _output(tmp_path, "big", size=100)).result(10) == "recorded big"
