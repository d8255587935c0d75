"""The pinned font list: the files the generator draws with, in drawing order, each with its SHA-256.

Why pinned: the generator picks a font by its index in the font list, so one font more, one fewer or one
changed in that list changes what a seed draws. When the list was discovered under /usr/share/fonts, four
Debian font packages more (fonts-3270, fonts-proggy, xfonts-terminus, fonts-liberation2) changed most
training samples and failed the tests that name an image (issue 35). Now ``fonts.json`` beside this module
names every file (its path under its font folder), the Debian package it comes from and its SHA-256, in the
order fonts are drawn from; nothing else installed is ever looked at. ``models.training.synth.pin_fonts``
made it (how, and when to run it again: see there).

What the generator does with it (`resolve`, called by ``fonts.all_fonts``):

- every pinned file found, each with its SHA-256: it draws from exactly these, in the pinned order;
- not one found, in the default folder (a machine without the font packages and without the offline kit):
  Pillow's built-in font only, with a `FontsNotInstalled` warning. That draws the same on every such machine;
- anything else raises `FontsMismatch`, naming each package concerned, the version pinned and the one
  installed: some files missing, a file with other bytes (another Debian version of the package), or no
  pinned file at all in a folder named by SYNTH_FONT_DIRS (an offline kit that did not unpack). The
  generator never draws from part of the list, nor from a changed file: the same seed would silently give
  another image, and a model trained on it would not be the one the card describes;
- SYNTH_FONTS=builtin: Pillow's built-in font whatever is installed, asked for knowingly (the tests of
  ``tests/models`` do so where the pinned fonts are not all there, and skip those that need the pinned ones).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

#: The pinned list (see the module's docstring).
PIN_FILE = Path(__file__).with_name("fonts.json")
#: Where the Debian packages install fonts; the only folder where finding none of them is not an error.
DEFAULT_ROOT = "/usr/share/fonts"
#: Values of SYNTH_FONTS: the pinned fonts (the default) or Pillow's built-in font.
MODES = ("", "pinned", "builtin")


class FontsMismatch(RuntimeError):
    """The pinned fonts are only partly there, or differ: drawing anyway would change what each seed draws."""


class FontsNotInstalled(UserWarning):
    """None of the pinned fonts is installed: every line is drawn in Pillow's built-in font."""


@dataclass(frozen=True)
class PinnedFont:
    path: str  # relative to its font folder, as under /usr/share/fonts
    package: str
    sha256: str


@functools.lru_cache(maxsize=1)
def pin() -> tuple[dict[str, str], tuple[PinnedFont, ...]]:
    """(Debian package -> version pinned, the fonts in drawing order), as ``fonts.json`` has them."""
    data = json.loads(PIN_FILE.read_text())
    return dict(data["packages"]), tuple(PinnedFont(**entry) for entry in data["fonts"])


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class Found:
    """What of the pinned list a set of font folders holds."""

    paths: tuple[str, ...]  # the pinned files found with their SHA-256, in pinned order
    missing: tuple[PinnedFont, ...]
    different: tuple[PinnedFont, ...]  # found, with another SHA-256

    @property
    def complete(self) -> bool:
        return not self.missing and not self.different

    @property
    def nothing(self) -> bool:
        return not self.paths and not self.different


@functools.lru_cache(maxsize=16)
def look(roots: tuple[str, ...]) -> Found:
    """Each pinned file in the first of `roots` that has it, checked against its SHA-256.

    Cached: it reads the 69 MB of fonts once per process, about 0.1 s, not once per sample."""
    paths, missing, different = [], [], []
    for font in pin()[1]:
        path = next((Path(root) / font.path for root in roots if (Path(root) / font.path).is_file()), None)
        if path is None:
            missing.append(font)
        elif sha256_of(path) != font.sha256:
            different.append(font)
        else:
            paths.append(str(path))
    return Found(tuple(paths), tuple(missing), tuple(different))


def installed_version(package: str) -> str:
    """The package's installed Debian version, for the message of `FontsMismatch`."""
    if not shutil.which("dpkg-query"):
        return "unknown (no dpkg here)"
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "not installed"


def _listed(fonts: list[PinnedFont]) -> str:
    return ", ".join(f.path for f in fonts[:3]) + (f" and {len(fonts) - 3} more" if len(fonts) > 3 else "")


def mismatch_message(found: Found, roots: tuple[str, ...]) -> str:
    """Which packages are missing or differ, and what to do: the text of `FontsMismatch`."""
    versions = pin()[0]
    lines = [(f"the fonts under {', '.join(roots)} are not the pinned ones ({PIN_FILE.name}): the generator "
              "would draw other images for the same seeds, so it draws none.")]
    for package in sorted({f.package for f in found.missing + found.different}):
        missing = [f for f in found.missing if f.package == package]
        different = [f for f in found.different if f.package == package]
        parts = [f"{len(missing)} missing ({_listed(missing)})"] if missing else []
        if different:
            parts.append(f"{len(different)} with another SHA-256 ({_listed(different)})")
        installed = f", installed here {installed_version(package)}" if DEFAULT_ROOT in roots else ""
        lines.append(f"  {package}: pinned {versions.get(package, '?')}{installed}: {'; '.join(parts)}")
    lines.append("Install the pinned versions (deploy/setup.sh --test, as root), or unpack the offline kit "
                 "(python -m models.training.offline_kit) and name its folder in SYNTH_FONT_DIRS; "
                 "SYNTH_FONTS=builtin draws with Pillow's built-in font instead. Pinning other versions "
                 "changes every drawing: see models/training/synth/pin_fonts.py.")
    return "\n".join(lines)


def resolve(roots: tuple[str, ...], mode: str = "") -> tuple[str, ...]:
    """The font files to draw from, in drawing order; () means Pillow's built-in font (see the module's docstring)."""
    if mode not in MODES:
        raise ValueError(f"SYNTH_FONTS={mode!r}: expected one of {', '.join(m for m in MODES if m)}")
    if mode == "builtin":
        return ()
    found = look(roots)
    if found.complete:
        return found.paths
    if found.nothing and roots == (DEFAULT_ROOT,):
        warnings.warn(f"none of the pinned fonts ({PIN_FILE.name}) is installed under {DEFAULT_ROOT}: drawing "
                      "with Pillow's built-in font only (deploy/setup.sh --test installs them)",
                      FontsNotInstalled, stacklevel=3)
        return ()
    raise FontsMismatch(mismatch_message(found, roots))
