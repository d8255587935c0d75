"""Font discovery and the train / held-out split.

Fonts come from the Debian fonts-* packages under /usr/share/fonts and matplotlib's bundled
DejaVu; Pillow's built-in font is the last resort so the generator works on any machine.
Whole families are held out of training so the synthetic test set measures generalisation to
unseen typefaces.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

FONT_DIRS = ["/usr/share/fonts"]
#: Families (file-name prefixes) never used for training; the test split uses only these.
HELD_OUT_PREFIXES = ("FreeSerif", "LiberationSansNarrow", "NotoSansMono", "DejaVuSansCondensed", "terminus-bold-oblique")
#: Decorative/maths fonts that do not look like scanner text.
EXCLUDED_PREFIXES = ("DejaVuMathTeXGyre", "DejaVuSans-ExtraLight")


@functools.lru_cache(maxsize=1)
def all_fonts() -> tuple[str, ...]:
    paths: set[str] = set()
    for root in FONT_DIRS:
        base = Path(root)
        if base.is_dir():
            for ext in ("*.ttf", "*.otf", "*.otb"):
                paths.update(str(p) for p in base.rglob(ext))
    try:
        import matplotlib

        mpl = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        names = {Path(p).name for p in paths}
        paths.update(str(p) for p in mpl.glob("DejaVu*.ttf") if p.name not in names)
    except Exception:  # matplotlib is optional
        pass
    usable = []
    for path in sorted(paths):
        name = Path(path).name
        if name.startswith(EXCLUDED_PREFIXES):
            continue
        try:
            load(path, 12)
        except OSError:
            continue
        usable.append(path)
    return tuple(usable)


def split(name: str) -> tuple[str | None, ...]:
    """'train' or 'test' font list (everything if a split is empty; Pillow's built-in font if none is installed)."""
    fonts = all_fonts()
    if not fonts:
        return (None,)
    held = tuple(f for f in fonts if Path(f).name.startswith(HELD_OUT_PREFIXES))
    train = tuple(f for f in fonts if f not in held)
    chosen = held if name == "test" else train
    return chosen or fonts


def is_bitmap(path: str) -> bool:
    return path.endswith(".otb")


BITMAP_SIZES = (12, 14, 16, 18, 20, 22, 24, 28, 32)


@functools.lru_cache(maxsize=64)
def bitmap_sizes(path: str) -> tuple[int, ...]:
    sizes = []
    for size in BITMAP_SIZES:
        try:
            ImageFont.truetype(path, size)
            sizes.append(size)
        except OSError:
            pass
    return tuple(sizes) or (12,)


@functools.lru_cache(maxsize=4096)
def load(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font at `size` px; bitmap fonts snap to their nearest strike."""
    if path is None:
        return ImageFont.load_default(size=size)
    if is_bitmap(path):
        size = min(bitmap_sizes(path), key=lambda s: abs(s - size))
    return ImageFont.truetype(path, size)
