"""The API the gateway's pixel stage calls: find burned-in text regions and read them.

    finder = TextFinder.load()                 # models/weights by default
    regions = finder.detect(frame)             # list[TextRegion], original pixel coordinates
    texts = finder.read(frame, regions)        # one string per region (for PHI classification)

`detect` accepts a uint8 display image (HxW or HxWx3) or raw stored values of any other dtype
(rendered by percentiles; call `models.render.display_image(pixels, ds)` first to honour the
dataset's modality LUT / window / MONOCHROME1).  Large images are processed in overlapping tiles.

On CPU the detector runs from its ONNX export when that matches the weights (`models.runtime`),
and the recogniser loads on first use, so detecting imports no PyTorch at all. The weights are
read by `models.checkpoints`; the looks' raw boxes become regions in `models.regions`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from models.checkpoints import (
    fuse_batchnorm,
    load_detector_module,
    load_recognizer_module,
    load_verifier_module,
    torch_with_threads,
    weights_version,
)
from models.postprocess import Postprocess, boxes_from_prob, components, working_scale
from models.regions import TextRegion, line_box, line_gaps, merged, not_yet_found, to_region
from models.render import CHROMA_MIN, CHROMA_PIXELS, as_display, chroma, detector_view, hue_views, to_gray
from models.runtime import OnnxNet, TorchNet

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights"
#: The detection procedure around the networks (its looks and their thresholds), recorded with the
#: weights' versions so that the audit tells apart two runs of the same weights that find different
#: text. looks-1: the working scale, the coarse look and the second look; looks-2: the detector's
#: view half equalised locally, the colour look (and the optional rotated look) added, and the
#: second look triggered by fainter responses; looks-3: each line lengthened over its faint ends
#: (``Postprocess.extend_threshold``) and the vertical look added; looks-4: overlapping regions
#: merged (MERGE_OVERLAP in ``models.regions``), lines' ends covered (LINE_END_MARGIN), the second
#: look triggered by fainter responses still, and the vertical look also by columns of specks;
#: looks-5: a line reaches down to the next line of its block over a gap with room for a line
#: (``line_gaps``); looks-6: the colour look also on the hue views (``models.render.hue_views``);
#: looks-7: the second detector, now on by default, only on greyscale images' tiles with a response
#: (SECOND_DETECTOR_GATE), its components added after the looks.
LOOKS_VERSION = "looks-7"
#: Tile side (working resolution) and overlap for large images.
TILE = 1024
OVERLAP = 96
#: Images (of one size) per network call in ``detect_batch``.
DETECT_BATCH = 16
#: Lines at most this many pixels wide are batched together through the recogniser.
READ_BATCH = 32
#: Second look: where the first pass saw faint text (probability above this, but no accepted box),
#: the area is detected again at twice the scale. Text 4-6 px tall in a large image is a blur of
#: one or two output pixels at the first scale and plain text at the second.
REFINE_THRESHOLD = 0.05
#: A second-look box is kept only if the first pass peaked at this inside it, and only if it is
#: small text (short side at most REFINE_MAX_TEXT working pixels): larger text was the first
#: pass's to find, and textures seen at twice the scale are what the second look gets wrong.
#: (0.2 and 0.5 in looks-1: 4-5 px text often peaks at 0.2-0.3 only, and at 0.1/0.2 the synthetic
#: sets gain recall with no new false region on the public no-text files. 0.05/0.08 in looks-4:
#: with repeats merged (MERGE_OVERLAP), the validation set gains 3 PHI lines for no new region on
#: the labelled public files or the no-text files.)
REFINE_PEAK = 0.08
REFINE_MAX_TEXT = 12
#: Context kept around each second-look area, and the gap below which areas are merged (output px).
REFINE_CONTEXT = 12
#: Coarse look: the image is also detected at half the working scale, where text too large for the
#: network's receptive field (50 px words, lead markers on a 2000 px radiograph) fits it. Only
#: boxes whose short side is at least COARSE_MIN_TEXT working pixels are taken from it: smaller
#: text is the first pass's, and seen coarsely it is a blur. Nor are boxes whose short side is
#: over COARSE_MAX_TEXT original pixels (60 px glyphs, the largest burned-in text expected, plus
#: the box's margins): at that size the coarse look is finding image structure, such as a
#: colour-Doppler box. Skipped when the half-scale image would be shorter than COARSE_MIN_SIDE.
COARSE_MIN_TEXT = 24
COARSE_MAX_TEXT = 96
#: Nor boxes whose short side is over this share of the image's short side: a line of text as
#: tall as half the image is not an annotation, and on a 64² nuclear-medicine frame the coarse
#: look otherwise boxes the whole heart.
COARSE_MAX_SHARE = 0.5
COARSE_MIN_SIDE = 64
#: Colour look: the working scale again, on the chroma of a colourful image (`models.render.chroma`)
#: and on its two opponent channels (`models.render.hue_views`, since looks-6), for text whose colour
#: differs from its background more than its brightness. Only boxes whose
#: short side is at most COLOUR_MAX_TEXT working pixels are taken from it: at larger sizes it finds
#: colour-Doppler boxes and colourful photographs' structure.
COLOUR_MAX_TEXT = 48
#: The hue views are looked at around colourful ground with this much context (original px), and on
#: the whole image when those areas cover more than HUE_WHOLE_SHARE of it (`_colourful_areas`).
HUE_CONTEXT = 24
HUE_WHOLE_SHARE = 0.5
#: A line seen only in a hue view is kept when the region verifier, shown that view, gives it at least
#: this probability of text: unchecked, the hue views box colour-Doppler flow and colour scales.
HUE_VERIFY_THRESHOLD = 0.8
#: Rotated look: the working scale on the image turned a quarter turn, for lines set vertically
#: (side labels). Only boxes that are lines there (at least ROTATED_MIN_ASPECT times as wide as
#: tall) and that the recogniser reads, one way up or the other, as at least ROTATED_MIN_CHARS
#: letters or digits with a mean confidence of at least ROTATED_MIN_CONFIDENCE are taken from it:
#: unchecked, it boxes the long vertical edges of posterised lung as lines of text.
ROTATED_MIN_ASPECT = 2.0
ROTATED_MIN_CHARS = 3
ROTATED_MIN_CONFIDENCE = 0.8
#: Vertical look (looks-3, always on): the rotated look's check on crops only, around first-pass
#: responses (above VERTICAL_THRESHOLD, not yet boxed) at least VERTICAL_MIN_ASPECT times as tall as
#: wide and VERTICAL_MIN_HEIGHT output pixels tall. The detector answers a vertical line faintly,
#: in pieces whose mean stays under the minimum score; turned upright, the line is plain text. It
#: costs nothing on an image without such responses, where the rotated look costs a full pass.
VERTICAL_THRESHOLD = 0.1
VERTICAL_MIN_ASPECT = 1.2
VERTICAL_MIN_HEIGHT = 4
#: The vertical look also looks at columns of specks (looks-4): responses each too small to be
#: tall, stacked at most VERTICAL_SPECK_GAP output pixels apart, together at least
#: VERTICAL_COLUMN_ASPECT times as tall as wide and VERTICAL_COLUMN_MIN_HEIGHT tall. Of a 10 px
#: vertical line the detector may answer only a speck in every other word.
VERTICAL_SPECK_GAP = 24
VERTICAL_COLUMN_ASPECT = 3.0
VERTICAL_COLUMN_MIN_HEIGHT = 16
#: Working scales above this get no second look (a x4 image of a x4 image is not worth it).
REFINE_MAX_SCALE = 2.0

#: Second detector (on unless ``load(second_detector=False)`` or ``pixels.second_detector: false``): the
#: weights of this name, detector-1.1 fine-tuned on the view it is shown at inference, also see
#: the working scale; the first pass's map, raised to the higher of the two probabilities, gives
#: components that are added after the looks where nothing was found yet. Alone it is more
#: precise and finds less; beside detector-1.1 each finds lines the other scores just under the
#: bar (dark text on bright speckled tissue, a short age in a corner block), for no more false
#: regions. Since looks-7 it sees only the tiles of a greyscale image in which the first pass
#: reached SECOND_DETECTOR_GATE somewhere (a colourful image already pays for the hue views, and
#: a tile the first detector saw nothing in is most of a text-free image's time), and it only
#: adds: the looks see detector-1.1's map alone.
SECOND_DETECTOR = "detector_eqview"
#: The second detector's lines lie beside text the first is sure of: every line it added on the
#: four synthetic sets is in a tile whose first pass peaked at 1.0, and gates from 0.1 to 0.95 keep
#: all of them. At this one 95-97 % of the synthetic tiles with text pass, and 1-7 % of text-free
#: tiles (synthetic CT and MR, the public no-text files); at 0.7, 10-23 % of those.
SECOND_DETECTOR_GATE = 0.9
#: Region verifier (`models.verifier`; on unless ``load(verifier=False)`` or ``pixels.verifier:
#: false``): the weights of this name judge each region found, with its surroundings. It decides
#: whether an image holds text at all (``holds_text``; the gateway asks it of a whole instance,
#: its tiles, crops and frames together): when the detector was sure of none of the regions
#: (every score under VERIFY_SURE_SCORE) and the verifier gives every one a probability of text
#: under VERIFY_THRESHOLD, the image has no regions; otherwise it keeps all of them. The
#: detector's false regions on step wedges, label maps, test cards and specular highlights score
#: 0.70-0.82. Judged region by region, the verifier also lost 0.3 % of PHI lines on fresh
#: synthetic images, every one in an image with text it kept; judged by image, it lost none, up
#: to a threshold five times this one (see the model card). So it spares text-free images, which
#: then pass byte for byte, and leaves the redaction of images with text to the detector. Not
#: applied by ``single_scale``: the check after restoration stays strict.
VERIFIER = "verifier"
VERIFY_THRESHOLD = 0.1
VERIFY_SURE_SCORE = 0.85
#: With the verifier the first pass also returns components scoring from VERIFIED_MIN_SCORE up to
#: the bar (FAINT_SCORE): such a component is a faint line (small MR text, a word on posterised
#: lung) as often as a texture. They are added after the looks, so that every region found without
#: them is still found. A faint region shows that an image holds text only when the verifier is
#: fairly sure of it (VERIFY_FAINT_THRESHOLD); at VERIFY_THRESHOLD, textures in five of the 37
#: public text-free files would pass for text again.
FAINT_SCORE = Postprocess().min_score
VERIFIED_MIN_SCORE = 0.65
VERIFY_FAINT_THRESHOLD = 0.5


def _unboxed(prob: np.ndarray, found: list, scale: float, threshold: float) -> np.ndarray:
    """Where the first pass saw faint text (above ``threshold``; uint8 0/1 at the map's stride)
    outside the boxes already ``found``: what is boxed will be redacted and needs no further look."""
    faint = (prob > threshold).astype(np.uint8)
    for x0, y0, x1, y1, _ in found:
        a = [int(v * scale / 2) for v in (x0, y0)]
        b = [int(np.ceil(v * scale / 2)) for v in (x1, y1)]
        faint[max(0, a[1]):b[1], max(0, a[0]):b[0]] = 0
    return faint


def _tall_responses(faint: np.ndarray) -> np.ndarray:
    """The components of ``faint`` (uint8 0/1) that are tall (VERTICAL_MIN_ASPECT, VERTICAL_MIN_HEIGHT)."""
    _, labels, stats = components(faint)
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_WIDTH]
    tall = (heights >= VERTICAL_MIN_ASPECT * widths) & (heights >= VERTICAL_MIN_HEIGHT)
    tall[0] = False
    return tall[labels].astype(np.uint8)


def _columns_of_specks(faint: np.ndarray) -> np.ndarray:
    """The pixels of ``faint`` (uint8 0/1) in columns of specks (see VERTICAL_SPECK_GAP)."""
    gap = VERTICAL_SPECK_GAP
    joined = cv2.dilate(faint, np.ones((gap + 1, 1), np.uint8))  # each speck reaches gap / 2 up and down
    _, labels, stats = components(joined)
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT] - gap, stats[:, cv2.CC_STAT_WIDTH]
    column = (heights >= VERTICAL_COLUMN_ASPECT * widths) & (heights >= VERTICAL_COLUMN_MIN_HEIGHT)
    column[0] = False
    return column[labels].astype(np.uint8) & faint


def _crop_areas(seeds: np.ndarray, scale: float, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Areas (x0, y0, x1, y1 in original pixels) around ``seeds`` (uint8 at the map's stride), with
    REFINE_CONTEXT output pixels of context; seeds nearer than that share one area."""
    c = REFINE_CONTEXT
    grown = cv2.dilate(seeds, np.ones((2 * c + 1, 2 * c + 1), np.uint8))
    count, _, stats = components(grown)
    h, w = shape
    return [(int(x * 2 / scale), int(y * 2 / scale),
             min(w, int(np.ceil((x + bw) * 2 / scale))), min(h, int(np.ceil((y + bh) * 2 / scale))))
            for x, y, bw, bh, _ in stats[1:count]]


def _tile_origins(h: int, w: int) -> list[tuple[int, int]]:
    """Top-left corners of the TILE-sided tiles, OVERLAP apart, a working image is seen in."""
    step = TILE - OVERLAP
    ys = list(range(0, max(1, h - OVERLAP), step)) if h > TILE else [0]
    xs = list(range(0, max(1, w - OVERLAP), step)) if w > TILE else [0]
    return [(y, x) for y in ys for x in xs]


def _keep_higher(out: np.ndarray, prob: np.ndarray, y: int, x: int) -> None:
    """Raise ``out`` (a whole image's map, stride 2) to a tile's map ``prob`` from working pixel (y, x)."""
    view = out[y // 2:y // 2 + prob.shape[0], x // 2:x // 2 + prob.shape[1]]
    np.maximum(view, prob[: view.shape[0], : view.shape[1]], out=view)


def _at_scale(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized to the working scale (itself when that is 1)."""
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1 else image


def _colourful_areas(spread: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Where the hue views are looked at: around the colourful ground of an image (its chroma
    ``spread`` over CHROMA_MIN), HUE_CONTEXT px on every side; the whole image when that is most of it.

    Text that differs from its ground in hue alone is as colourful as its ground, so it lies there;
    a grey ultrasound fan with one coloured label pays for the label, not for the fan."""
    h, w = spread.shape
    colourful = (spread > CHROMA_MIN).astype(np.uint8)
    grown = cv2.dilate(colourful, np.ones((2 * HUE_CONTEXT + 1, 2 * HUE_CONTEXT + 1), np.uint8))
    count, labels, stats = components(grown)
    seen = np.bincount(labels[colourful > 0], minlength=count)
    areas = [(x, y, x + bw, y + bh) for k, (x, y, bw, bh, _) in enumerate(stats) if k and seen[k] >= CHROMA_PIXELS]
    if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in areas) > HUE_WHOLE_SHARE * h * w:
        return [(0, 0, w, h)]
    return areas


class TextFinder:
    """Detector + recogniser pair loaded from a weights directory.

    ``detector`` is any callable from a float32 NCHW array to logits (``models.runtime``);
    ``recognizer``, a callable from a batch of lines to CTC log-probs, is loaded by
    ``load_recognizer`` on first use (None: no recogniser shipped). ``second_detector``, when
    set, is another such callable whose answer on the first pass is added to the detector's
    (see SECOND_DETECTOR).
    """

    def __init__(self, detector: Callable[[np.ndarray], np.ndarray], load_recognizer: Callable[[], Any] | None,
                 version: str, device: str = "cpu", postprocess: Postprocess = Postprocess()):
        self.detector = detector
        self._load_recognizer = load_recognizer
        self._recognizer = None
        self.version = version
        self.device = device
        self.postprocess = postprocess
        #: The coarse, second, colour and vertical looks (see their constants); off in ``single_scale``.
        self.extra_looks = True
        #: The rotated look, with the extra looks, instead of the vertical look; off by default: it
        #: finds 0.2-0.4 % more PHI on the synthetic sets but costs a full pass on every image.
        self.rotated_look = False
        #: Set by ``load()`` unless ``second_detector=False`` (see SECOND_DETECTOR).
        self.second_detector: Callable[[np.ndarray], np.ndarray] | None = None
        #: Set by ``load()`` unless ``verifier=False`` (see VERIFIER): regions in, logits of text out.
        self.verifier: Callable[[np.ndarray], np.ndarray] | None = None
        #: With the verifier, the first pass also returns components scoring from this up to the
        #: bar (see VERIFIED_MIN_SCORE).
        self.faint_min_score: float | None = None

    def with_rotated_look(self) -> "TextFinder":
        """The same networks, with the rotated look on (its version says so)."""
        twin = copy.copy(self)
        twin.rotated_look = True
        twin.version = f"{self.version}+rotated"
        return twin

    def single_scale(self) -> "TextFinder":
        """The same networks, detecting at the working scale only.

        The gateway verifies restored images with it: the extra looks exist to find small and
        large text the working scale misses in an original image, and on an inpainted one they
        mostly find the smudges and filled boxes of the restoration itself.
        """
        twin = copy.copy(self)
        twin.extra_looks = False
        twin.second_detector = None  # it would find the restoration's smudges all the more
        twin.verifier = None  # what is left of text after restoration need not look like text
        twin.faint_min_score = None  # faint components there are as often the restoration's smudges
        return twin

    @property
    def recognizer(self):
        if self._recognizer is None and self._load_recognizer is not None:
            self._recognizer = self._load_recognizer()
        return self._recognizer

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, device: str = "cpu", threads: int | None = None,
             second_detector: bool = True, verifier: bool = True) -> "TextFinder":
        """On CPU the ONNX export is used when it matches the weights; otherwise PyTorch runs it.
        ``threads`` bounds PyTorch, ONNX Runtime and OpenCV (process-wide, as PyTorch's own setting
        is): OpenCV's pool would spread the looks over every core, 12 ms more CPU time on a 512²
        colour image for 1-2 ms less wall time.
        ``second_detector``, ``verifier``: also load SECOND_DETECTOR, VERIFIER from the same
        directory (they must be there)."""
        root = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS
        if threads:
            cv2.setNumThreads(threads)

        def network(name: str, load_module: Callable = load_detector_module):
            if not (root / f"{name}.pt").exists():
                raise FileNotFoundError(f"no {name}.pt in the weights directory")
            net = OnnxNet.from_weights(root, name, threads or 1) if device == "cpu" else None
            if net is None:
                torch_with_threads(threads)
                net = TorchNet(fuse_batchnorm(load_module(root, name).eval()).to(device), device)
            return net

        detector = network("detector")
        version = weights_version(root, "detector", "detector-?")
        load_recognizer = None
        if (root / "recognizer.pt").exists():
            version += "+" + weights_version(root, "recognizer", "recognizer-?")

            def load_recognizer():
                net = OnnxNet.from_weights(root, "recognizer", threads or 1) if device == "cpu" else None
                if net is None:
                    torch_with_threads(threads)
                    net = TorchNet(fuse_batchnorm(load_recognizer_module(root).eval()).to(device), device)
                return net
        else:
            version += "+none"
        finder = cls(detector, load_recognizer, f"{version}+{LOOKS_VERSION}", device)
        if second_detector:
            finder.second_detector = network(SECOND_DETECTOR)
            finder.version += "+" + weights_version(root, SECOND_DETECTOR, f"{SECOND_DETECTOR}-?")
        if verifier:
            finder.verifier = network(VERIFIER, load_verifier_module)
            finder.faint_min_score = VERIFIED_MIN_SCORE
            finder.version += "+" + weights_version(root, VERIFIER, f"{VERIFIER}-?")
        return finder

    # ----------------------------------------------------------------- detection
    def _run_tiles(self, tiles: list[np.ndarray], network: Callable | None = None) -> list[np.ndarray]:
        """Probability maps (stride 2) of same-shaped uint8 tiles, in one call of ``network`` (the
        detector unless said)."""
        th, tw = tiles[0].shape
        ph, pw = (-th) % 16, (-tw) % 16
        x = np.stack([cv2.copyMakeBorder(t, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if ph or pw else t for t in tiles])
        network = network or self.detector
        logits = network((x.astype(np.float32) / 255.0)[:, None])[:, 0, : (th + 1) // 2, : (tw + 1) // 2]
        return list(1.0 / (1.0 + np.exp(-logits)))

    def _prob_map(self, gray: np.ndarray, network: Callable | None = None) -> np.ndarray:
        """Probability map at stride 2 of a working-resolution greyscale image, tiled if large."""
        h, w = gray.shape
        if h <= TILE and w <= TILE:
            return self._run_tiles([gray], network)[0]
        out = np.zeros(((h + 1) // 2, (w + 1) // 2), np.float32)
        for y, x in _tile_origins(h, w):
            (prob,) = self._run_tiles([gray[y:y + TILE, x:x + TILE]], network)
            _keep_higher(out, prob, y, x)
        return out

    def _prob_maps(self, works: list[np.ndarray], network: Callable | None = None) -> list[np.ndarray]:
        """``_prob_map`` of each image; single-tile images of one shape share network calls."""
        out: list[np.ndarray | None] = [None] * len(works)
        same_shape: dict[tuple[int, int], list[int]] = {}
        for i, work in enumerate(works):
            if max(work.shape) <= TILE:
                same_shape.setdefault(work.shape, []).append(i)
            else:
                out[i] = self._prob_map(work, network)
        for members in same_shape.values():
            for i, prob in zip(members, self._run_batched([works[i] for i in members], network), strict=True):
                out[i] = prob
        return out

    def _run_batched(self, tiles: list[np.ndarray], network: Callable | None = None) -> list[np.ndarray]:
        """``_run_tiles`` over same-shaped tiles, DETECT_BATCH per network call."""
        return [prob for start in range(0, len(tiles), DETECT_BATCH)
                for prob in self._run_tiles(tiles[start:start + DETECT_BATCH], network)]

    def detect(self, image: np.ndarray) -> list[TextRegion]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[TextRegion]]:
        """Regions of each image; none in an image that holds no text (``holds_text``)."""
        return [regions if self.holds_text(image, regions) else []
                for image, regions in zip(images, self.find_batch(images), strict=True)]

    def find_batch(self, images: list[np.ndarray]) -> list[list[TextRegion]]:
        """Every region found in each image, before the verifier has its say. The gateway judges
        a whole instance's tiles, crops and frames together; ``detect_batch`` judges each image.
        The first pass over images of one size is one batch through the network (what a GPU
        worker needs); the extra looks follow per image."""
        displays = [as_display(image) for image in images]
        grays = [detector_view(display) for display in displays]
        scales = [working_scale(*gray.shape) for gray in grays]
        works = [_at_scale(g, s) for g, s in zip(grays, scales, strict=True)]
        spreads = [chroma(display) for display in displays]
        probs = self._prob_maps(works)
        raised = ([None] * len(probs) if self.second_detector is None
                  else self._raised_by_second_detector(spreads, works, probs))
        return [self._regions(*each) for each in zip(displays, spreads, grays, scales, probs, raised, strict=True)]

    def _raised_by_second_detector(self, spreads: list[np.ndarray | None], works: list[np.ndarray],
                                   probs: list[np.ndarray]) -> list[np.ndarray | None]:
        """Each first-pass map raised to the second detector's answer on the tiles of a greyscale
        image (no chroma ``spread``) where it reached SECOND_DETECTOR_GATE (None where no tile did).
        Tiles of one shape share network calls, as in the first pass."""
        chosen: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        for i, (spread, work, prob) in enumerate(zip(spreads, works, probs, strict=True)):
            if spread is not None:
                continue
            for y, x in _tile_origins(*work.shape):
                tile_shape = work[y:y + TILE, x:x + TILE].shape
                seen = prob[y // 2:(y + tile_shape[0] + 1) // 2, x // 2:(x + tile_shape[1] + 1) // 2]
                if seen.max() >= SECOND_DETECTOR_GATE:
                    chosen.setdefault(tile_shape, []).append((i, y, x))
        raised: list[np.ndarray | None] = [None] * len(probs)
        for members in chosen.values():
            tiles = [works[i][y:y + TILE, x:x + TILE] for i, y, x in members]
            for (i, y, x), second in zip(members, self._run_batched(tiles, self.second_detector), strict=True):
                if raised[i] is None:
                    raised[i] = probs[i].copy()
                _keep_higher(raised[i], second, y, x)
        return raised

    def _regions(self, display: np.ndarray, spread: np.ndarray | None, gray: np.ndarray, scale: float,
                 prob: np.ndarray, raised: np.ndarray | None = None) -> list[TextRegion]:
        """Regions from the first pass's map ``prob``, the looks and, where the second detector
        ``raised`` that map, the components of the raised map not yet found. Those come after the
        looks, which see detector-1.1's map alone: a raised map's components merge and split
        otherwise, and steer the second look elsewhere (a test card's "60%" was lost so)."""
        h, w = gray.shape
        found, faint = self._first_pass(prob, scale)
        if self.extra_looks:
            found += self._colour_look(display, spread, scale, found)
            if self.rotated_look:
                found += self._rotated_look(display, gray, scale, found)
            else:
                found += self._vertical_look(display, gray, prob, scale, found)
            found += self._coarse_look(gray, scale)
        if self.extra_looks and scale <= REFINE_MAX_SCALE:
            found += self._second_look(gray, prob, found, scale)
        if raised is not None:
            more, more_faint = self._first_pass(raised, scale)
            found += not_yet_found(more, found, (h, w))
            faint += more_faint
        if faint:  # after every look, so that the looks still see what they saw without them
            found += not_yet_found(faint, found, (h, w))
        regions = merged([region for box in found if (region := to_region(box, (h, w))) is not None])
        regions = line_gaps(regions)
        regions.sort(key=lambda r: (r.y0, r.x0))
        return regions

    def _first_pass(self, prob: np.ndarray, scale: float) -> tuple[list, list]:
        """Boxes of the working scale's components at the bar, and those scoring from
        ``faint_min_score`` up to it (none without a verifier): one pass over the components,
        each judged on its own."""
        bar = self.postprocess.min_score
        if self.faint_min_score is None or self.faint_min_score >= bar:
            return boxes_from_prob(prob, scale, self.postprocess), []
        boxes = boxes_from_prob(prob, scale, replace(self.postprocess, min_score=self.faint_min_score))
        return [b for b in boxes if b[4] >= bar], [b for b in boxes if b[4] < bar]

    def holds_text(self, image: np.ndarray, regions: list[TextRegion]) -> bool:
        """Whether ``regions`` found in ``image`` show that it holds text: the detector was sure of
        one of them, or the verifier believes one (see VERIFIER and VERIFIED_MIN_SCORE). Without a
        verifier, any does."""
        if not regions:
            return False
        if self.verifier is None or any(r.score >= VERIFY_SURE_SCORE for r in regions):
            return True
        bars = [VERIFY_THRESHOLD if r.score >= FAINT_SCORE else VERIFY_FAINT_THRESHOLD for r in regions]
        return bool((self.text_probabilities(image, regions) >= np.array(bars)).any())

    def text_probabilities(self, image: np.ndarray, regions: list[TextRegion]) -> np.ndarray:
        """The verifier's probability that each region of ``image`` holds text."""
        from models.reading import prepare_region

        gray = to_gray(as_display(image))
        x = np.stack([prepare_region(gray, line_box(r)) for r in regions])[:, None]
        logits = np.concatenate([self.verifier(x[k:k + READ_BATCH]) for k in range(0, len(x), READ_BATCH)])[:, 0]
        return 1.0 / (1.0 + np.exp(-logits))

    def _colour_look(self, display: np.ndarray, spread: np.ndarray | None, scale: float, found: list) -> list:
        """Boxes of text, not yet ``found``, seen at the working scale in the chroma ``spread`` of a
        colourful display image, and in the hue views of its colourful areas (with the region verifier
        only)."""
        if spread is None:
            return []
        shape = display.shape[:2]
        boxes = not_yet_found(self._colour_boxes([spread], scale), found, shape)
        if self.verifier is None:
            return boxes
        for xa, ya, xb, yb in _colourful_areas(spread):
            for view in hue_views(display[ya:yb, xa:xb]):
                lines = [(x0 + xa, y0 + ya, x1 + xa, y1 + ya, s)
                         for x0, y0, x1, y1, s in self._colour_boxes([view], scale)]
                boxes += self._verified_in_view(view, (xa, ya), lines, found + boxes, shape)
        return boxes

    def _verified_in_view(self, view: np.ndarray, origin: tuple[int, int], lines: list, found: list,
                          shape: tuple[int, int]) -> list:
        """``lines`` not yet ``found`` that the region verifier, shown the hue ``view`` they were seen in
        (placed at ``origin``), believes hold text (HUE_VERIFY_THRESHOLD). Reading cannot check them:
        two lines on one label are often one box in a hue view. They are scored as lines the detector
        was sure of (VERIFY_SURE_SCORE): shown the luma, where they are nothing, the verifier would
        doubt them, and ``holds_text`` would clear an image whose only text they are."""
        pairs = [(line, region) for line in not_yet_found(lines, found, shape)
                 if (region := to_region(line, shape)) is not None]
        if not pairs:
            return []
        xa, ya = origin
        canvas = np.full(shape, 128, np.uint8)  # the view where it was taken, neutral grey elsewhere
        canvas[ya:ya + view.shape[0], xa:xa + view.shape[1]] = view
        believed = self.text_probabilities(canvas, [region for _, region in pairs]) >= HUE_VERIFY_THRESHOLD
        return [(*line[:4], max(line[4], VERIFY_SURE_SCORE))
                for (line, _), keep in zip(pairs, believed, strict=True) if keep]

    def _colour_boxes(self, views: list[np.ndarray], scale: float) -> list:
        """Boxes of text no taller than COLOUR_MAX_TEXT found at the working scale in ``views``."""
        return [box for prob in self._prob_maps([_at_scale(v, scale) for v in views]) for box in boxes_from_prob(prob, scale, self.postprocess)
                if min(box[2] - box[0], box[3] - box[1]) * scale <= COLOUR_MAX_TEXT]

    def _rotated_look(self, display: np.ndarray, gray: np.ndarray, scale: float, found: list) -> list:
        """Boxes of vertical lines, not yet ``found``, seen at the working scale in ``gray`` turned a
        quarter turn and confirmed by the recogniser (none when no recogniser is shipped)."""
        if self.recognizer is None:
            return []
        h, w = gray.shape
        return self._confirmed(display, self._turned_lines(gray, scale, (0, 0, w, h)), found)

    def _vertical_look(self, display: np.ndarray, gray: np.ndarray, prob: np.ndarray, scale: float,
                       found: list) -> list:
        """The rotated look on crops around tall first-pass responses not yet boxed."""
        faint = _unboxed(prob, found, scale, VERTICAL_THRESHOLD)
        seeds = _tall_responses(faint) | _columns_of_specks(faint)
        # the recogniser is loaded only once an image has candidates for it to confirm
        if not seeds.any() or self.recognizer is None:
            return []
        # one crop per cluster of tall responses (the pieces of one line), with context
        lines = []
        for crop in _crop_areas(seeds, scale, gray.shape):
            lines += self._turned_lines(gray, scale, crop)
        return self._confirmed(display, lines, found)

    def _turned_lines(self, gray: np.ndarray, scale: float, area: tuple[int, int, int, int]) -> list:
        """Boxes (in ``gray``'s pixels) of lines found at the working scale in ``area`` of ``gray``
        turned a quarter turn: lines there, vertical here."""
        xa, ya, xb, yb = area
        turned = np.ascontiguousarray(np.rot90(gray[ya:yb, xa:xb]))  # turned[i, j] = crop[j, width - 1 - i]
        work = _at_scale(turned, scale)
        width = xb - xa
        return [(xa + width - y1, ya + x0, xa + width - y0, ya + x1, score)
                for x0, y0, x1, y1, score in boxes_from_prob(self._prob_map(work), scale, self.postprocess)
                if x1 - x0 >= ROTATED_MIN_ASPECT * (y1 - y0)]

    def _confirmed(self, display: np.ndarray, lines: list, found: list) -> list:
        """``lines`` not yet ``found`` that the recogniser reads as text in ``display`` (see
        ROTATED_MIN_CHARS)."""
        shape = display.shape[:2]
        unique: list = []
        for line in not_yet_found(lines, found, shape):  # once, where crops overlap
            unique += not_yet_found([line], unique, shape)
        pairs = [(line, region) for line in unique if (region := to_region(line, shape)) is not None]
        if not pairs:
            return []
        readings = self.readings(display, [region for _, region in pairs])
        return [line for (line, _), (text, confidence) in zip(pairs, readings, strict=True)
                if confidence >= ROTATED_MIN_CONFIDENCE and sum(c.isalnum() for c in text) >= ROTATED_MIN_CHARS]

    def _coarse_look(self, gray: np.ndarray, scale: float) -> list:
        """Large-text boxes found at half ``scale``."""
        coarse = scale / 2
        if min(gray.shape) * coarse < COARSE_MIN_SIDE:
            return []
        small = cv2.resize(gray, None, fx=coarse, fy=coarse, interpolation=cv2.INTER_AREA)
        largest = min(COARSE_MAX_TEXT, COARSE_MAX_SHARE * min(gray.shape))
        return [b for b in boxes_from_prob(self._prob_map(small), coarse, self.postprocess)
                if COARSE_MIN_TEXT <= min(b[2] - b[0], b[3] - b[1]) * scale
                and min(b[2] - b[0], b[3] - b[1]) <= largest]

    def _second_look(self, gray: np.ndarray, prob: np.ndarray, found: list, scale: float) -> list:
        """Boxes found at twice ``scale`` in the areas of faint first-pass response not yet boxed."""
        faint = _unboxed(prob, found, scale, REFINE_THRESHOLD)
        count, labels, _ = components(faint)
        if count <= 1:
            return []
        peak = np.zeros(count, np.float32)
        np.maximum.at(peak, labels[faint > 0], prob[faint > 0])
        seeds = (peak >= REFINE_PEAK)[labels].astype(np.uint8)
        if not seeds.any():
            return []
        out = []
        for xa, ya, xb, yb in _crop_areas(seeds, scale, gray.shape):
            crop = gray[ya:yb, xa:xb]
            if crop.size == 0:
                continue
            fine = 2 * scale
            prob2 = self._prob_map(cv2.resize(crop, None, fx=fine, fy=fine, interpolation=cv2.INTER_LINEAR))
            for x0, y0, x1, y1, s in boxes_from_prob(prob2, fine, self.postprocess):
                x0, y0, x1, y1 = x0 + xa, y0 + ya, x1 + xa, y1 + ya
                if min(x1 - x0, y1 - y0) * scale > REFINE_MAX_TEXT:
                    continue
                seen = prob[int(y0 * scale / 2):int(np.ceil(y1 * scale / 2)), int(x0 * scale / 2):int(np.ceil(x1 * scale / 2))]
                if seen.size and seen.max() >= REFINE_PEAK:
                    out.append((x0, y0, x1, y1, s))
        return out

    # --------------------------------------------------------------- recognition
    def read(self, image: np.ndarray, regions: list[TextRegion]) -> list[str]:
        """Text of each region ('' when no recogniser is shipped). Tall regions are read both ways up."""
        return [text for text, _ in self.readings(image, regions)]

    def readings(self, image: np.ndarray, regions: list[TextRegion]) -> list[tuple[str, float]]:
        """(text, confidence) of each region: ``read`` with the recogniser's mean confidence."""
        if self.recognizer is None or not regions:
            return [("", 0.0)] * len(regions)
        from models.reading import batch_lines, greedy_decode, prepare_line

        gray = to_gray(as_display(image))
        crops: list[tuple[int, np.ndarray]] = []
        for i, r in enumerate(regions):
            crop = gray[r.y0:r.y1, r.x0:r.x1]
            if crop.size == 0:
                continue
            h, w = crop.shape
            if h > 1.5 * w and h > 12:
                crops.append((i, prepare_line(np.ascontiguousarray(np.rot90(crop, 3)))))
                crops.append((i, prepare_line(np.ascontiguousarray(np.rot90(crop, 1)))))
            else:
                crops.append((i, prepare_line(crop)))
        best: dict[int, tuple[str, float]] = {}
        order = sorted(range(len(crops)), key=lambda k: crops[k][1].shape[1])
        for start in range(0, len(order), READ_BATCH):
            chunk = [crops[k] for k in order[start:start + READ_BATCH]]
            log_probs = self.recognizer(batch_lines([c[1] for c in chunk]))
            for (i, line), (text, conf) in zip(chunk, greedy_decode(log_probs)):
                # padding frames past the line's own width are ignored by the greedy path in practice
                if i not in best or conf > best[i][1]:
                    best[i] = (text, conf)
        return [best.get(i, ("", 0.0)) for i in range(len(regions))]
