"""The second detector: another detector's map, raised into the first pass's where it can add.

detector-1.1 fine-tuned on the view it is shown at inference also sees the working scale; the
first pass's map, raised to the higher of the two probabilities, gives components that are added
after the looks where nothing was found yet. Alone it is more precise and finds less; beside
detector-1.1 each finds lines the other scores just under the bar (dark text on bright speckled
tissue, a short age in a corner block), for no more false regions. It sees only the tiles of a
greyscale image in which the first pass reached SECOND_DETECTOR_GATE somewhere (a colourful image
already pays for the hue views, and a tile the first detector saw nothing in is most of a
text-free image's time), and it only adds: the looks see detector-1.1's map alone.

Its lines lie beside text the first detector is sure of: every line it added on the four synthetic
sets is in a tile whose first pass peaked at 1.0, and gates from 0.1 to 0.95 keep all of them. At
SECOND_DETECTOR_GATE 95-97 % of the synthetic tiles with text pass, and 1-7 % of text-free tiles
(synthetic CT and MR, the public no-text files); at 0.7, 10-23 % of those.
"""

from __future__ import annotations

import numpy as np

from models.looks.tiling import TILE, Network, keep_higher, run_batched, tile_origins

#: Its weights' name in the weights directory; loaded unless ``load(second_detector=False)`` (``pixels.second_detector: false``).
SECOND_DETECTOR = "detector_eqview"
#: The first-pass peak a tile needs to be shown to it: few text-free tiles reach it, tiles with text do.
SECOND_DETECTOR_GATE = 0.9


def raised_maps(network: Network, spreads: list[np.ndarray | None], works: list[np.ndarray],
           probs: list[np.ndarray]) -> list[np.ndarray | None]:
    """Each first-pass map raised to the second detector's answer on the tiles of a greyscale
    image (no chroma ``spread``) where it reached SECOND_DETECTOR_GATE (None where no tile did).
    Tiles of one shape share network calls, as in the first pass."""
    chosen: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for i, (spread, work, prob) in enumerate(zip(spreads, works, probs, strict=True)):
        if spread is not None:
            continue
        for y, x in tile_origins(*work.shape):
            tile_shape = work[y:y + TILE, x:x + TILE].shape
            seen = prob[y // 2:(y + tile_shape[0] + 1) // 2, x // 2:(x + tile_shape[1] + 1) // 2]
            if seen.max() >= SECOND_DETECTOR_GATE:
                chosen.setdefault(tile_shape, []).append((i, y, x))
    out: list[np.ndarray | None] = [None] * len(probs)
    for members in chosen.values():
        tiles = [works[i][y:y + TILE, x:x + TILE] for i, y, x in members]
        for (i, y, x), second in zip(members, run_batched(network, tiles), strict=True):
            if out[i] is None:
                out[i] = probs[i].copy()
            keep_higher(out[i], second, y, x)
    return out
