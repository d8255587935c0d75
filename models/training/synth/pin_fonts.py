"""Make ``fonts.json``, the pinned font list (``pinned``), from the installed Debian font packages.

    .venv/bin/python -m models.training.synth.pin_fonts            # rewrite fonts.json
    .venv/bin/python -m models.training.synth.pin_fonts --check    # compare only: exit 1 if it would change

The packages are deploy/setup.sh's font packages, read from its ``for font in ...`` list, so that the
pin and what setup installs cannot drift apart. Of each package's files (``dpkg-query -L``), those under
/usr/share/fonts named *.ttf, *.otf or *.otb, not left out by ``fonts.EXCLUDED_PREFIXES`` and that FreeType
opens are pinned, sorted by path. That is the rule by which the font list was discovered when the shipped
models were trained, kept to those packages: on the machine where ``fonts.json`` was made (Debian 12
bookworm, with the package versions it records, and no other font package) the pinned list is the list
discovered there before, file for file and in the same order, and the generator drew the same images for
fixed seeds before and after (issue 35: 443 samples of four configurations compared by hash).

Pinning other versions, or another package list, changes what every seed draws: the synthetic sets, the
tests that name images, and the figures in models/weights/MODEL_CARD.md. Run it only deliberately, and say
so in the model card; ``--check`` is what to run to see whether a machine has the pinned fonts.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from models.training.synth import fonts, pinned

#: The script whose font packages are pinned.
SETUP = Path(__file__).resolve().parents[3] / "deploy" / "setup.sh"
FONT_SUFFIXES = (".ttf", ".otf", ".otb")


def setup_packages(setup: Path = SETUP) -> list[str]:
    """The font packages deploy/setup.sh installs for the tests (its ``for font in ...; do`` list)."""
    listed = re.search(r"for font in (.*?); do", setup.read_text(), re.DOTALL)
    if listed is None:
        raise SystemExit(f"{setup}: no 'for font in ...; do' list of font packages")
    return [word for word in listed.group(1).split() if word != "\\"]


def _dpkg(*args: str) -> str:
    return subprocess.run(["dpkg-query", *args], capture_output=True, text=True, check=True).stdout


def package_fonts(package: str, root: str = pinned.DEFAULT_ROOT) -> list[Path]:
    """The package's font files under `root` that the generator may draw with."""
    chosen = []
    for line in _dpkg("-L", package).splitlines():
        path = Path(line)
        if not (path.is_relative_to(root) and path.suffix in FONT_SUFFIXES and path.is_file()):
            continue
        if path.name.startswith(fonts.EXCLUDED_PREFIXES):
            continue
        try:
            fonts.load(str(path), 12)
        except OSError:  # FreeType cannot open it: it was never drawn with
            continue
        chosen.append(path)
    return chosen


def build(packages: list[str], root: str = pinned.DEFAULT_ROOT) -> dict:
    """The content of fonts.json for `packages` as installed here."""
    versions = {p: _dpkg("-W", "-f=${Version}", p).strip() for p in packages}
    owned = {path: package for package in packages for path in package_fonts(package, root)}
    entries = [{"path": str(path.relative_to(root)), "package": owned[path], "sha256": pinned.sha256_of(path)}
               for path in sorted(owned, key=str)]
    return {"made_by": "python -m models.training.synth.pin_fonts (see its docstring)",
            "root": root, "packages": versions, "fonts": entries}


def dumps(data: dict) -> str:
    """JSON with one font a line, so that a change to the pin reads as a short diff."""
    head = {k: v for k, v in data.items() if k != "fonts"}
    text = json.dumps(head, indent=1)[:-2]
    rows = ",\n".join("  " + json.dumps(entry) for entry in data["fonts"])
    return f'{text},\n "fonts": [\n{rows}\n ]\n}}\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with fonts.json, write nothing")
    args = parser.parse_args(argv)
    text = dumps(build(setup_packages()))
    if args.check:
        same = text == pinned.PIN_FILE.read_text()
        print("the installed fonts are the pinned ones" if same else "the installed fonts differ from fonts.json")
        return 0 if same else 1
    pinned.PIN_FILE.write_text(text)
    print(f"{len(json.loads(text)['fonts'])} fonts pinned in {pinned.PIN_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
