"""The generator draws from the pinned fonts only (issue 35): whatever else is installed, a seed draws the
same image, and fonts missing or of another version stop it rather than change what it draws."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.training.synth import SynthConfig, fonts, generate, pin_fonts, pinned
from tests.models.samples import needs_pinned_fonts

ROOT = Path(__file__).resolve().parents[2]
#: Run in a fresh process with SYNTH_FONT_DIRS set: for the generator as it is and for the discovery it had
#: before issue 35, how many fonts it draws from and a digest of 10 samples.
DRAWN = """
import hashlib
from pathlib import Path
from models.training.synth import SynthConfig, fonts, generate

def digest():
    h = hashlib.sha256()
    for split, seed in (("train", 3), ("test", 1000)):
        for index in range(5):
            sample = generate(seed, index, SynthConfig(font_split=split, real_backgrounds=False))
            h.update(sample.image.tobytes())
            h.update(repr([(line.text, line.box) for line in sample.lines]).encode())
    return h.hexdigest()

def discovered():
    '''fonts.all_fonts before issue 35: every font file under the font folders, sorted by path.'''
    paths = {str(p) for root in fonts.FONT_DIRS for ext in ("*.ttf", "*.otf", "*.otb") for p in Path(root).rglob(ext)}
    return tuple(p for p in sorted(paths) if not Path(p).name.startswith(fonts.EXCLUDED_PREFIXES))

print(len(fonts.all_fonts()), digest())
fonts.all_fonts = discovered
print(len(fonts.all_fonts()), digest())
"""
#: Fonts of other packages, as fonts-3270 and fonts-liberation2 install them, and one that the discovery
#: before issue 35 would have taken for a held-out family. Their bytes are those of a pinned font: what
#: changed the drawings was where they sorted, not what they look like.
EXTRAS = ("truetype/3270/3270-Regular.ttf", "truetype/liberation2/LiberationSans-Regular.ttf",
          "truetype/freefont/FreeSerifCondensed.ttf")


def _font_folder(folder: Path, leave_out=()) -> Path:
    """A font folder holding the pinned fonts (links to the installed ones), as the offline kit unpacks them."""
    for font, installed in zip(pinned.pin()[1], fonts.all_fonts(), strict=True):
        if font.path not in leave_out:
            (folder / font.path).parent.mkdir(parents=True, exist_ok=True)
            (folder / font.path).symlink_to(installed)
    return folder


def _drawn(folder: Path) -> list[tuple[int, str]]:
    env = {k: v for k, v in os.environ.items() if k != "SYNTH_FONTS"}
    done = subprocess.run([sys.executable, "-c", DRAWN], cwd=ROOT, env={**env, "SYNTH_FONT_DIRS": str(folder)},
                          capture_output=True, text=True, check=True)
    return [(int(count), digest) for count, digest in (line.split() for line in done.stdout.splitlines())]


@pytest.fixture
def pinned_mode(monkeypatch):
    """The generator's own rule, not the built-in font that conftest asks for where the fonts differ."""
    monkeypatch.delenv("SYNTH_FONTS", raising=False)


def test_the_pin_covers_exactly_the_font_packages_setup_installs():
    versions, pinned_fonts = pinned.pin()
    assert list(versions) == pin_fonts.setup_packages()
    assert {font.package for font in pinned_fonts} == set(versions), "every package gives at least one font"
    assert len({font.path for font in pinned_fonts}) == len(pinned_fonts)


@needs_pinned_fonts
def test_the_generator_draws_the_pinned_fonts_in_the_pinned_order():
    assert [str(Path(p).relative_to(pinned.DEFAULT_ROOT)) for p in fonts.all_fonts()] == \
        [font.path for font in pinned.pin()[1]]


@needs_pinned_fonts
@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="no dpkg here")
def test_pin_fonts_makes_the_pinned_list_from_the_installed_packages():
    """fonts.json is what its script makes of setup.sh's packages, so it can be made again and reviewed."""
    made = pin_fonts.build(pin_fonts.setup_packages())
    assert made["fonts"] == json.loads(pinned.PIN_FILE.read_text())["fonts"]


@needs_pinned_fonts
def test_fonts_installed_beside_the_pinned_ones_change_no_drawing(tmp_path):
    """The failure of issue 35, shown with the discovery it had: other fonts in the font folder change what the
    seeds draw there, and no longer here."""
    folder = _font_folder(tmp_path / "fonts")
    (pinned_before, sample_before), (found_before, discovered_before) = _drawn(folder)
    for extra in EXTRAS:
        (folder / extra).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fonts.all_fonts()[0], folder / extra)
    (pinned_after, sample_after), (found_after, discovered_after) = _drawn(folder)

    assert pinned_before == pinned_after == len(pinned.pin()[1])
    assert sample_after == sample_before, "the pinned generator draws what it drew without the extra fonts"
    assert (found_before, discovered_before) == (pinned_before, sample_before), "the pin is what was discovered"
    assert found_after == found_before + len(EXTRAS)
    assert discovered_after != discovered_before, "the discovery before issue 35 draws other images with them"


@needs_pinned_fonts
def test_a_missing_pinned_font_stops_the_generator_and_names_its_package(tmp_path, monkeypatch, pinned_mode):
    gone = next(f for f in pinned.pin()[1] if f.package == "fonts-ocr-b")
    monkeypatch.setattr(fonts, "FONT_DIRS", [str(_font_folder(tmp_path, leave_out={gone.path}))])
    with pytest.raises(pinned.FontsMismatch, match=rf"fonts-ocr-b: pinned \S+: 1 missing \({gone.path}\)"):
        generate(0, 0, SynthConfig(real_backgrounds=False))


def test_the_mismatch_names_the_version_pinned_and_the_one_installed():
    """Under /usr/share/fonts a different file means another Debian version: the message says which."""
    font = pinned.pin()[1][0]
    message = pinned.mismatch_message(pinned.Found((), (), (font,)), (pinned.DEFAULT_ROOT,))
    version = pinned.pin()[0][font.package]
    assert f"{font.package}: pinned {version}, installed here " in message
    assert f"1 with another SHA-256 ({font.path})" in message


@needs_pinned_fonts
def test_a_pinned_font_of_another_version_stops_the_generator(tmp_path, monkeypatch, pinned_mode):
    """Another Debian version of a package: the same path, other bytes."""
    changed = next(f for f in pinned.pin()[1] if f.package == "fonts-lato")
    folder = _font_folder(tmp_path, leave_out={changed.path})
    shutil.copyfile(fonts.all_fonts()[0], folder / changed.path)
    monkeypatch.setattr(fonts, "FONT_DIRS", [str(folder)])
    with pytest.raises(pinned.FontsMismatch, match="fonts-lato: .*1 with another SHA-256"):
        fonts.split("train")


def test_a_font_folder_named_without_the_pinned_fonts_stops_the_generator(tmp_path, monkeypatch, pinned_mode):
    """SYNTH_FONT_DIRS naming an offline kit that did not unpack: not the built-in font, an error."""
    (tmp_path / "truetype").mkdir()
    monkeypatch.setattr(fonts, "FONT_DIRS", [str(tmp_path)])
    with pytest.raises(pinned.FontsMismatch, match="not the pinned ones"):
        fonts.all_fonts()


def test_a_machine_without_any_font_package_draws_with_the_built_in_font(tmp_path, monkeypatch, pinned_mode):
    """The last resort, the same on every such machine, and said aloud."""
    monkeypatch.setattr(pinned, "DEFAULT_ROOT", str(tmp_path))
    monkeypatch.setattr(fonts, "FONT_DIRS", [str(tmp_path)])
    with pytest.warns(pinned.FontsNotInstalled):
        assert fonts.all_fonts() == ()
    assert fonts.split("train") == fonts.split("test") == (None,)
    assert generate(0, 1, SynthConfig(real_backgrounds=False)).image.size


def test_synth_fonts_builtin_asks_for_the_built_in_font_whatever_is_installed(monkeypatch):
    monkeypatch.setenv("SYNTH_FONTS", "builtin")
    assert fonts.all_fonts() == () and fonts.split("train") == (None,)
    monkeypatch.setenv("SYNTH_FONTS", "mine")
    with pytest.raises(ValueError, match="SYNTH_FONTS"):
        fonts.all_fonts()
