"""Which drawn text the stored image still shows: the labels are of visible text only.

A line drawn white on saturated white, or read back through a stale window, is nobody's PHI and no
detector's target. Each line is checked against the background its letters are seen against, as
a whole, word by word and, at its ends, character by character.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from models.training.synth.canvas import Ink, Line, Word

#: Grey-level difference between glyph and surrounding pixels below which a line is not labelled.
MIN_CONTRAST = 16
#: Or, for a line partly over a bright part of the image and partly over a dark one, the share of a
#: word's ink that must stand out from the background around it by MIN_CONTRAST for the word to be
#: labelled.
MIN_VISIBLE_SHARE = 0.3


def labelled(line: Line, image: np.ndarray, ink: Ink) -> Line | None:
    """``line`` as the display image shows it (white on saturated white, stale windows...): less the
    characters hidden at its ends (a date whose first half lies on tissue of its own grey), then whole if
    it stands out as a whole, else the words of it that stand out where they are (a line running from a
    bright part of the image into a dark one), else nothing.

    Invisible text is nobody's PHI and no detector's target, so it is dropped from the labels.
    """
    region, on, off = _ink_and_background(image, ink)
    if not on.any() or not off.any():
        return line
    whole = np.abs(np.median(region[on], axis=0) - np.median(region[off], axis=0))
    line = _without_hidden_ends(line, ink, region, off)
    if float(whole.max()) >= MIN_CONTRAST:
        return line
    standing_out = _standing_out(region, on, off)
    y0, x0 = ink.y0, ink.x0
    words = []
    for word in line.words:
        wx0, wy0, wx1, wy1 = word.box
        area = (slice(max(0, wy0 - y0), max(0, wy1 - y0)), slice(max(0, wx0 - x0), max(0, wx1 - x0)))
        if on[area].any() and standing_out[area].sum() >= MIN_VISIBLE_SHARE * on[area].sum():
            words.append(word)
    if not words:
        return None
    if len(words) == len(line.words):
        return line
    box = (min(w.box[0] for w in words), min(w.box[1] for w in words),
           max(w.box[2] for w in words), max(w.box[3] for w in words))
    return replace(line, box=box, text=" ".join(w.text for w in words), words=tuple(words))


def _without_hidden_ends(line: Line, ink: Ink, region: np.ndarray, off: np.ndarray) -> Line:
    """``line`` less the characters at either end whose ink is within MIN_CONTRAST of the background
    around it, character by character: one part of a line may lie on tissue of its own grey.

    Only the ends are trimmed: a character hidden inside a line still belongs to a line a reader sees,
    and a redaction covers it anyway.
    """
    if ink.char_edges is None:
        return line
    on = ink.on
    edges = ink.char_edges - ink.x0
    rows = np.nonzero(on.any(axis=1))[0]
    band = slice(rows[0], rows[-1] + 1)  # a character is seen against the gaps beside it, not beyond a box
    hidden = []
    for k in range(len(line.text)):
        a, b = max(0, int(np.floor(edges[k]))), max(0, int(np.ceil(edges[k + 1])))
        glyph, around = on[band, a:b], off[band, a:b]
        if not glyph.any() or around.sum() < 3:  # too thin to judge: shown, as the line is
            hidden.append(line.text[k] == " ")
            continue
        pixels = region[band, a:b]
        contrast = np.abs(np.median(pixels[glyph], axis=0) - np.median(pixels[around], axis=0))
        hidden.append(float(contrast.max()) < MIN_CONTRAST)
    if all(hidden):
        return line
    first, last = hidden.index(False), len(hidden) - 1 - hidden[::-1].index(False)
    text = line.text[first:last + 1]
    if text == line.text.strip():
        return line
    x0, x1 = ink.x0 + int(np.floor(edges[first])), ink.x0 + int(np.ceil(edges[last + 1]))
    words, pos = [], 0
    for word in line.words:
        start = line.text.index(word.text, pos)
        pos = start + len(word.text)
        kept = word.text[max(0, first - start):max(0, last + 1 - start)]
        if kept:
            words.append(Word((max(word.box[0], x0), word.box[1], min(word.box[2], x1), word.box[3]), kept))
    if not words:
        return line
    box = (min(w.box[0] for w in words), min(w.box[1] for w in words),
           max(w.box[2] for w in words), max(w.box[3] for w in words))
    return replace(line, box=box, text=text, words=tuple(words))


def _ink_and_background(image: np.ndarray, ink: Ink):
    """A line's pixels (H, W, C float), its ink and the background its letters are seen against.

    The background is the gaps in and between the letters where there are enough of them: pixels
    beyond the ink may lie beyond a box drawn behind the text, and would lend the text the box's
    contrast with the image.
    """
    y0, x0, on = ink.y0, ink.x0, ink.on
    h, w = on.shape
    region = image[y0:y0 + h, x0:x0 + w].astype(np.float32)
    if region.ndim == 2:
        region = region[..., None]
    near = cv2.dilate(on.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    off = ~near
    if on.any():
        ys, xs = np.nonzero(on)
        inside = np.zeros_like(on)
        inside[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
        if (inside & off).sum() >= 4:
            off &= inside
    return region, on, off


def _standing_out(region: np.ndarray, on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """The ink that differs by MIN_CONTRAST from the background within a text height of it: each letter
    is seen against what is around it, not against the line's average."""
    rows = np.nonzero(on.any(axis=1))[0]
    cols = np.nonzero(on.any(axis=0))[0]
    if not len(rows):
        return on.copy()
    side = 2 * min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) + 1
    weight = cv2.boxFilter(off.astype(np.float32), -1, (side, side), normalize=False)
    seen = on & (weight > 0)
    contrast = np.zeros(on.shape, np.float32)
    for c in range(region.shape[2]):
        background = cv2.boxFilter(region[..., c] * off, -1, (side, side), normalize=False)
        contrast = np.maximum(contrast, np.abs(region[..., c] - background / np.maximum(weight, 1e-6)))
    return seen & (contrast >= MIN_CONTRAST)
