"""What ``models.training.offline_kit`` packs lets a machine without the font packages or pydicom's test
images draw the very samples this one draws (``models/training/train_on_gpu.sh`` trains there)."""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from models.training import offline_kit
from models.training.offline_kit import font_root
from models.training.synth import backgrounds, fonts
from tests.models.samples import needs_pinned_fonts

ROOT = Path(__file__).resolve().parents[2]
#: Run in a fresh process: how many fonts come from SYNTH_FONT_DIRS, and a digest of 8 samples.
SAMPLES_DRAWN = """
import hashlib, os
from models.training.synth import SynthConfig, backgrounds, fonts, generate
if "SYNTH_REAL_FRAMES" in os.environ:
    backgrounds._decoded_frames = None  # nothing may be decoded: the frames come from the file
folder = os.environ.get("SYNTH_FONT_DIRS", "/usr/share/fonts")
print(sum(path.startswith(folder) for path in fonts.all_fonts()))
digest = hashlib.sha256()
for split, seed in (("train", 3), ("test", 1000)):
    for index in range(4):
        sample = generate(seed, index, SynthConfig(font_split=split))
        digest.update(sample.image.tobytes())
        digest.update(repr([(line.text, line.box) for line in sample.lines]).encode())
print(digest.hexdigest())
"""


def _samples_drawn(**env: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-c", SAMPLES_DRAWN], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, check=True)
    count, digest = done.stdout.split()
    return int(count), digest


def test_real_frames_read_back_as_they_were_saved(tmp_path, monkeypatch):
    saved = tmp_path / "real_frames.npz"
    count = backgrounds.write_real_frames(saved)
    monkeypatch.setenv("SYNTH_REAL_FRAMES", str(saved))
    read = backgrounds.real_frames.__wrapped__()  # past the cache of this process's own frames
    assert len(read) == count == len(backgrounds.real_frames())
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(read, backgrounds.real_frames()))


@needs_pinned_fonts
def test_fonts_and_frames_elsewhere_draw_the_same_samples(tmp_path):
    """The kit's fonts, unpacked with their paths under their font folder, sort as they do here."""
    for path in fonts.all_fonts():
        copy = tmp_path / "fonts" / Path(path).relative_to(font_root(path))
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    backgrounds.write_real_frames(tmp_path / "real_frames.npz")
    fonts_there, there = _samples_drawn(SYNTH_FONT_DIRS=str(tmp_path / "fonts"),
                                        SYNTH_REAL_FRAMES=str(tmp_path / "real_frames.npz"))
    assert fonts_there == len(fonts.all_fonts()), "every font is drawn from the other folder"
    assert there == _samples_drawn()[1]


@needs_pinned_fonts
def test_the_font_archive_holds_each_font_under_its_path_in_its_font_folder(tmp_path, monkeypatch):
    two = fonts.all_fonts()[:2]
    monkeypatch.setattr(offline_kit.fonts, "all_fonts", lambda: two)
    assert offline_kit.pack_fonts(tmp_path) == 2
    with tarfile.open(tmp_path / "fonts.tar.xz") as tar:
        names = tar.getnames()
    assert names == [str(Path(path).relative_to(font_root(path))) for path in two]
    assert all(not name.startswith("/") for name in names)
