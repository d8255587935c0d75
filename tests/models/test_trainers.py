"""Each trainer's command line, end to end: a few steps, then weights the finder loads and runs.

The long runs that made the shipped weights are the same commands with minutes instead of steps,
so a trainer that no longer writes loadable weights is found here rather than after an hour.
"""

import shutil

import numpy as np
import pytest
import torch

from models.inference import DEFAULT_WEIGHTS, TextFinder
from models.training import train_detector, train_recognizer
from models.training.loop import TrainConfig, config_from_command_line, to_device
from models.training.synth import SynthConfig, generate

FEW_STEPS = ["--max-steps", "2", "--workers", "0", "--checkpoint-minutes", "60", "--real-backgrounds", "false"]


def test_every_trainer_has_the_shared_settings_on_its_command_line():
    for config in (train_detector.DetectorTrainConfig, train_recognizer.RecognizerTrainConfig):
        cfg = config_from_command_line(config, ["--device", "cpu", "--minutes", "3", "--workers", "7"])
        assert (cfg.device, cfg.minutes, cfg.workers) == ("cpu", 3.0, 7)
        assert isinstance(cfg, TrainConfig)


def test_a_batch_moves_to_the_device_whole():
    """The loss functions index batches by position, so a moved batch keeps its shape of tuple or list."""
    batch = (torch.zeros(2, 3), [torch.ones(1), torch.ones(2)], 5)
    moved = to_device(batch, "meta")
    assert isinstance(moved, tuple) and isinstance(moved[1], list) and moved[2] == 5
    assert moved[0].device.type == "meta" and all(t.device.type == "meta" for t in moved[1])


def test_the_detector_trainer_writes_weights_the_finder_loads(tmp_path):
    train_detector.main(FEW_STEPS + ["--batch", "2", "--crop", "128", "--width", "8", "--out", str(tmp_path)])
    finder = TextFinder.load(tmp_path, second_detector=False, verifier=False)
    assert finder.version.startswith(train_detector.DETECTOR_VERSION + "+none")
    regions = finder.detect(generate(3, 0, SynthConfig(real_backgrounds=False)).image)
    assert isinstance(regions, list)


def test_the_recogniser_trainer_writes_weights_the_finder_reads_with(tmp_path):
    shutil.copy(DEFAULT_WEIGHTS / "detector.pt", tmp_path)
    shutil.copy(DEFAULT_WEIGHTS / "detector.json", tmp_path)
    train_recognizer.main(FEW_STEPS + ["--batch", "4", "--hidden", "16", "--out", str(tmp_path)])
    finder = TextFinder.load(tmp_path, second_detector=False, verifier=False)
    assert train_recognizer.RECOGNIZER_VERSION in finder.version
    image = generate(3, 0, SynthConfig(real_backgrounds=False)).image
    regions = finder.detect(image)
    assert regions, "the shipped detector finds the text of this sample"
    assert len(finder.read(image, regions)) == len(regions)


def test_the_recogniser_trainer_widens_a_narrower_checkpoint_it_starts_from(tmp_path):
    """``--init`` of a narrower network, ``--hidden``/``--width`` of a wider one: the wider one is
    trained and saved with its size, and the finder builds it from that."""
    narrow, wide = tmp_path / "narrow", tmp_path / "wide"
    train_recognizer.main(FEW_STEPS + ["--batch", "4", "--hidden", "16", "--width", "8", "--out", str(narrow)])
    train_recognizer.main(FEW_STEPS + ["--batch", "4", "--hidden", "24", "--width", "12",
                                       "--init", str(narrow / "recognizer.pt"), "--out", str(wide)])
    meta = torch.load(wide / "recognizer.pt", map_location="cpu", weights_only=True)["meta"]
    assert (meta["hidden"], meta["width"]) == (24, 12)
    for name in ("detector.pt", "detector.json"):
        shutil.copy(DEFAULT_WEIGHTS / name, wide)
    finder = TextFinder.load(wide, second_detector=False, verifier=False)
    image = generate(3, 0, SynthConfig(real_backgrounds=False)).image
    assert len(finder.read(image, finder.detect(image))) >= 1


def test_the_detector_trainer_widens_a_narrower_checkpoint_it_starts_from(tmp_path):
    narrow, wide = tmp_path / "narrow", tmp_path / "wide"
    detector = FEW_STEPS + ["--batch", "2", "--crop", "128"]
    train_detector.main(detector + ["--width", "8", "--out", str(narrow)])
    train_detector.main(detector + ["--width", "12", "--init", str(narrow / "detector.pt"), "--out", str(wide)])
    assert torch.load(wide / "detector.pt", map_location="cpu", weights_only=True)["meta"]["width"] == 12
    regions = TextFinder.load(wide, second_detector=False, verifier=False).detect(generate(3, 0, SynthConfig(real_backgrounds=False)).image)
    assert isinstance(regions, list)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here (CI never has one)")
def test_weights_trained_on_a_gpu_are_saved_for_the_cpu(tmp_path):
    train_detector.main(FEW_STEPS + ["--batch", "2", "--crop", "128", "--width", "8", "--device", "cuda",
                                     "--out", str(tmp_path)])
    state = torch.load(tmp_path / "detector.pt", map_location=None, weights_only=True)["state_dict"]
    assert all(v.device.type == "cpu" for v in state.values())
    assert isinstance(TextFinder.load(tmp_path, second_detector=False, verifier=False).detect(np.zeros((64, 64), np.uint8)), list)
