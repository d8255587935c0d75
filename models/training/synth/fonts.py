"""The fonts the generator draws with, and the train / held-out split.

The generator draws only from the pinned list (``pinned``, ``fonts.json``): the files of deploy/setup.sh's
Debian font packages that the shipped models were trained with, in a fixed order, each checked against its
SHA-256, so that a seed draws the same image on every machine whatever else is installed (issue 35). What
happens when they are missing or differ is in ``pinned``'s docstring. Whole families are held out of
training so the synthetic test set measures generalisation to unseen typefaces.

A machine that cannot install the packages (a GPU lent without network access) is given the same files in
another folder, named by the environment variable SYNTH_FONT_DIRS (folders separated by ``os.pathsep``), by
``models.training.offline_kit``, unpacked there with the paths they have under /usr/share/fonts.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from PIL import ImageFont

from models.training.synth import pinned

#: Where the pinned fonts are looked for (see the module's docstring for SYNTH_FONT_DIRS).
FONT_DIRS = os.environ.get("SYNTH_FONT_DIRS", pinned.DEFAULT_ROOT).split(os.pathsep)
#: Families (file-name prefixes) never used for training; the test split uses only these.
HELD_OUT_PREFIXES = ("FreeSerif", "LiberationSansNarrow", "NotoSansMono", "DejaVuSansCondensed", "terminus-bold-oblique")
#: Left out when pinning (``pin_fonts``): decorative, symbol, initials, small-caps and hairline fonts: they
#: do not look like scanner text, and symbol and initials fonts map ASCII codes to pictures and small capitals
#: draw lower case as capitals, so lines drawn with them would be mislabelled.
EXCLUDED_PREFIXES = (
    "DejaVuMathTeXGyre", "DejaVuSans-ExtraLight", "D050000L", "StandardSymbolsPS", "Z003",
    "Lato-Hairline", "Lato-Thin", "Roboto-Thin", "Cantarell-Thin", "JetBrainsMono-Thin", "JetBrainsMono-ExtraLight",
    "LinBiolinum_K", "LinLibertine_I.", "Go-Smallcaps", "unifont_",
)
#: The font text falls back to when its own lacks a character (OCR-A and OCR-B have no "µ" or "°").
FALLBACK_NAME = "DejaVuSans.ttf"
#: Code points no text font draws: what a font renders for them is its "missing glyph" box.
_NOT_CHARACTERS = ("\U0010FFFD", "\uFFFF")


def all_fonts() -> tuple[str, ...]:
    """The pinned fonts, found in FONT_DIRS, in the pinned order; () when drawing with Pillow's built-in font.

    Raises ``pinned.FontsMismatch`` rather than draw from fonts other than the pinned ones (see ``pinned``).
    SYNTH_FONTS is read on each call, so that a test can ask for the built-in font."""
    return _resolved(tuple(FONT_DIRS), os.environ.get("SYNTH_FONTS", ""))


@functools.lru_cache(maxsize=16)
def _resolved(roots: tuple[str, ...], mode: str) -> tuple[str, ...]:
    return pinned.resolve(roots, mode)


def split(name: str) -> tuple[str | None, ...]:
    """'train' or 'test' font list (everything if a split is empty; Pillow's built-in font if no font is drawn with)."""
    return _split(name, all_fonts())


@functools.lru_cache(maxsize=32)
def _split(name: str, fonts: tuple[str, ...]) -> tuple[str | None, ...]:
    """Cached: every generated sample asks for it, and filtering 247 paths took 1.5 ms of the sample's
    33, time that a lent GPU spends waiting for examples."""
    if not fonts:
        return (None,)
    held = tuple(f for f in fonts if Path(f).name.startswith(HELD_OUT_PREFIXES))
    train = tuple(f for f in fonts if f not in held)
    chosen = held if name == "test" else train
    return chosen or fonts


@functools.lru_cache(maxsize=256)
def _missing_glyph_masks(path: str) -> frozenset:
    font = load(path, 24)
    return frozenset(_glyph(font, c) for c in _NOT_CHARACTERS)


def _glyph(font, char: str) -> tuple:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@functools.lru_cache(maxsize=65536)
def draws(path: str | None, char: str) -> bool:
    """Whether the font has a glyph of its own for `char` (not the box it draws for what it lacks)."""
    if path is None or char == " ":
        return True
    return _glyph(load(path, 24), char) not in _missing_glyph_masks(path)


def for_text(path: str | None, text: str) -> str | None:
    """`path`, or the fallback font when `path` lacks a character of `text`, so that no line is
    drawn with boxes where its label has letters. Deterministic: no random draw is spent."""
    if all(draws(path, c) for c in set(text)):
        return path
    fallback = [f for f in all_fonts() if Path(f).name == FALLBACK_NAME]
    return fallback[0] if fallback else None


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
