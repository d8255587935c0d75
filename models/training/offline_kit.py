"""Pack what the trainers need on a machine that cannot fetch it: a GPU lent without network access.

    python -m models.training.offline_kit --out .kit

Such a machine has PyTorch, OpenCV, Pillow and NumPy, but not pydicom, the Debian font packages
or pydicom's test images. Without them the generator would draw other samples: Pillow's default
font, procedural backgrounds only. The kit holds

  fonts.tar.xz       every font ``models.training.synth.fonts`` uses here, with its path under its font folder;
  real_frames.npz    the real backgrounds (``models.training.synth.backgrounds.write_real_frames``);
  wheels/            pydicom's wheel, when pip can fetch it here.

``models/training/train_on_gpu.sh`` unpacks it there and trains. With the same libraries, the generator
draws there the samples it draws here. The kit is about 25 MB, well inside what travels with the
working tree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

from models.training.synth import backgrounds, fonts

#: pydicom as installed here: the generator stores its samples as datasets.
PYDICOM = "pydicom"


def font_root(path: str) -> Path:
    """The folder of FONT_DIRS that holds ``path`` (matplotlib's DejaVu: its own folder)."""
    for root in fonts.FONT_DIRS:
        if Path(path).is_relative_to(root):
            return Path(root)
    return Path(path).parent


def pack_fonts(out: Path) -> int:
    """fonts.tar.xz of the fonts in use, each under its path relative to its font folder."""
    used = fonts.all_fonts()
    with tarfile.open(out / "fonts.tar.xz", "w:xz") as tar:
        for path in used:
            tar.add(path, arcname=str(Path(path).relative_to(font_root(path))))
    return len(used)


def fetch_wheels(out: Path) -> bool:
    """pydicom's wheel, of the version installed here, for any Python 3 (it is pure Python)."""
    from importlib.metadata import version

    wheels = out / "wheels"
    wheels.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--dest", str(wheels), f"{PYDICOM}=={version(PYDICOM)}"],
                          capture_output=True, text=True)
    return done.returncode == 0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".kit"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{pack_fonts(args.out)} fonts packed")
    print(f"{backgrounds.write_real_frames(args.out / 'real_frames.npz')} real frames saved")
    if fetch_wheels(args.out):
        print("pydicom's wheel fetched")
    else:
        print(f"pip could not fetch pydicom here: put its wheel in {args.out / 'wheels'} by hand")


if __name__ == "__main__":
    main()
