"""The API the gateway's pixel stage calls: find burned-in text regions and read them.

    finder = TextFinder.load()                 # models/weights by default
    regions = finder.detect(frame)             # list[TextRegion], original pixel coordinates
    texts = finder.read(frame, regions)        # one string per region (for PHI classification)

`detect` accepts a uint8 display image (HxW or HxWx3) or raw stored values of any other dtype
(rendered by percentiles; call `models.render.display_image(pixels, ds)` first to honour the
dataset's modality LUT / window / MONOCHROME1).  Large images are processed in overlapping tiles.

Detection is a sequence of looks (`models.looks`, one module each, with their thresholds): the
first pass at the working scale, then the colour, vertical (and rotated), coarse and second looks,
the second detector's additions and the first pass's faint components; a region the verifier and
the recogniser both doubt is set aside (`models.looks.unread`: ticks, traces, grids), and so is one
whose ink is drawn, not written, when neither reads it as text (`models.looks.drawn`), and the region
verifier then decides whether the regions show text at all (`models.looks.verdict`). This module holds the
order. The thresholds callers name (the verdict's, the hue views', the second detector's) are
re-exported here; every other threshold is in its look's module.

On CPU the detector runs from its ONNX export when that matches the weights (`models.runtime`),
and the recogniser loads on first use, so detecting imports no PyTorch at all. The weights are
read by `models.checkpoints`; the looks' raw boxes become regions in `models.regions`.
"""

from __future__ import annotations

import copy
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
from models.looks import coarse, colour, drawn, first, refine, rotated, unread, verdict, vertical
from models.looks.colour import HUE_VERIFY_THRESHOLD
from models.looks.refine import REFINE_MAX_SCALE
from models.looks.second_detector import SECOND_DETECTOR, SECOND_DETECTOR_GATE, raised_maps
from models.looks.tiling import at_scale, prob_maps
from models.looks.verdict import (
    FAINT_SCORE,
    VERIFIED_MIN_SCORE,
    VERIFIER,
    VERIFY_FAINT_THRESHOLD,
    VERIFY_SURE_SCORE,
    VERIFY_THRESHOLD,
)
from models.postprocess import Postprocess, working_scale
from models.reading import READ_BATCH, batch_lines, greedy_decode, prepare_line
from models.regions import TextRegion, line_gaps, merged, not_yet_found, to_region
from models.render import as_display, chroma, detector_view, to_gray
from models.runtime import OnnxNet, TorchNet

#: The finder and what its callers name: the thresholds of the verdict on an image (`models.looks.verdict`),
#: of the hue views and of the second detector. Each look's other thresholds are in its own module.
__all__ = [
    "DEFAULT_WEIGHTS", "FAINT_SCORE", "HUE_VERIFY_THRESHOLD", "LOOKS_VERSION", "SECOND_DETECTOR",
    "SECOND_DETECTOR_GATE", "TextFinder", "TextRegion", "VERIFIED_MIN_SCORE", "VERIFIER",
    "VERIFY_FAINT_THRESHOLD", "VERIFY_SURE_SCORE", "VERIFY_THRESHOLD",
]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights"
#: The detection procedure around the networks (its looks and their thresholds), recorded with the
#: weights' versions so that the audit tells apart two runs of the same weights that find different
#: text. Each version's change is told in models/weights/HISTORY.md ("The looks, version by version").
LOOKS_VERSION = "looks-11"


class TextFinder:
    """Detector + recogniser pair loaded from a weights directory.

    ``detector`` is any callable from a float32 NCHW array to logits (``models.runtime``);
    ``recognizer``, a callable from a batch of lines to CTC log-probs, is loaded by
    ``load_recognizer`` on first use (None: no recogniser shipped). ``second_detector``, when
    set, is another such callable whose answer on the first pass is added to the detector's
    (`models.looks.second_detector`).
    """

    def __init__(self, detector: Callable[[np.ndarray], np.ndarray], load_recognizer: Callable[[], Any] | None,
                 version: str, device: str = "cpu", postprocess: Postprocess = Postprocess()):
        self.detector = detector
        self._load_recognizer = load_recognizer
        self._recognizer = None
        self.version = version
        self.device = device
        self.postprocess = postprocess
        #: The coarse, second, colour and vertical looks (`models.looks`); off in ``single_scale``.
        self.extra_looks = True
        #: The rotated look, with the extra looks, after the vertical look: crops around columns of
        #: strokes the first pass did not answer, turned (`models.looks.rotated`).
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
        works = [at_scale(g, s) for g, s in zip(grays, scales, strict=True)]
        spreads = [chroma(display) for display in displays]
        probs = prob_maps(self.detector, works)
        raised = ([None] * len(probs) if self.second_detector is None
                  else raised_maps(self.second_detector, spreads, works, probs))
        return [self._regions(*each) for each in zip(displays, spreads, grays, scales, probs, raised, strict=True)]

    def _regions(self, display: np.ndarray, spread: np.ndarray | None, gray: np.ndarray, scale: float,
                 prob: np.ndarray, raised: np.ndarray | None = None) -> list[TextRegion]:
        """Regions from the first pass's map ``prob``, the looks and, where the second detector
        ``raised`` that map, the components of the raised map not yet found. Those come after the
        looks, which see detector-1.1's map alone: a raised map's components merge and split
        otherwise, and steer the second look elsewhere (a test card's "60%" was lost so)."""
        h, w = gray.shape
        found, faint = first.look(self, prob, scale)
        if self.extra_looks:
            found += colour.look(self, display, spread, scale, found)
            found += vertical.look(self, display, gray, prob, scale, found)
            if self.rotated_look:
                found += rotated.look(self, display, gray, scale, found)
            found += coarse.look(self, gray, scale)
        if self.extra_looks and scale <= REFINE_MAX_SCALE:
            found += refine.look(self, gray, prob, found, scale)
        if raised is not None:
            more, more_faint = first.look(self, raised, scale)
            found += not_yet_found(more, found, (h, w))
            faint += more_faint
        if faint:  # after every look, so that the looks still see what they saw without them
            found += not_yet_found(faint, found, (h, w))
        regions = merged([region for box in found if (region := to_region(box, (h, w))) is not None])
        regions = unread.keep_read(self, display, line_gaps(regions))  # what both other networks doubt goes
        regions = drawn.keep_written(self, display, regions)  # and lattices, traces, figures neither reads
        regions.sort(key=lambda r: (r.y0, r.x0))
        return regions

    def holds_text(self, image: np.ndarray, regions: list[TextRegion]) -> bool:
        """Whether ``regions`` found in ``image`` show that it holds text: the detector was sure of
        one of them, or the verifier believes one (`models.looks.verdict`). Without a verifier,
        any does."""
        return verdict.holds_text(self.verifier, image, regions)

    def text_probabilities(self, image: np.ndarray, regions: list[TextRegion]) -> np.ndarray:
        """The verifier's probability that each region of ``image`` holds text."""
        return verdict.text_probabilities(self.verifier, image, regions)

    # --------------------------------------------------------------- recognition
    def read(self, image: np.ndarray, regions: list[TextRegion]) -> list[str]:
        """Text of each region ('' when no recogniser is shipped). Tall regions are read both ways up."""
        return [text for text, _ in self.readings(image, regions)]

    def readings(self, image: np.ndarray, regions: list[TextRegion]) -> list[tuple[str, float]]:
        """(text, confidence) of each region: ``read`` with the recogniser's mean confidence."""
        if self.recognizer is None or not regions:
            return [("", 0.0)] * len(regions)
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
