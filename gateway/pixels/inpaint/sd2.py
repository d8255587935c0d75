"""Stable Diffusion 2 inpainting (diffusers), for texture-rich backgrounds Telea smears.

Loaded from a local directory (``save_pretrained`` layout) or a model id already in the local
cache — ``local_files_only``: the gateway never fetches weights. fp16 on CUDA, fp32 on CPU.

Each masked part is handled in a square crop (``crop_size``, 512 for SD2) centred on it; parts
larger than a crop are handled in a larger crop resized to ``crop_size``. The frame's value
range is mapped to 8 bits for the model and the result mapped back into the stored range and
dtype; only masked pixels are pasted back, so everything outside the mask keeps its exact
stored value. The prompt names the modality ("an ultrasound image") or is empty, per config.

Crops from every frame (and every instance) restored together go through the model
``batch_size`` at a time, each with its own generator seeded alike, so a crop's noise does not
depend on what it was batched with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from gateway.pixels.inpaint.base import (
    Restoration,
    RestoreContext,
    data_range,
    from_uint8,
    paste,
    to_uint8,
)
from gateway.pixels.mask import mask_parts
from gateway.pixels.regions import Box

MODALITY_PROMPTS = {
    "US": "an ultrasound image",
    "CR": "a chest radiograph",
    "DX": "a chest radiograph",
    "MG": "a mammogram",
    "CT": "a CT scan slice",
    "MR": "an MRI scan slice",
    "XA": "an X-ray angiography image",
    "RF": "a fluoroscopy image",
    "NM": "a nuclear medicine image",
    "PT": "a PET image",
    "ES": "an endoscopy image",
    "OT": "a medical image",
    "SC": "a medical image",
}


def prompt_for(modality: str, mode: str) -> str:
    if mode == "none":
        return ""
    return MODALITY_PROMPTS.get(modality.upper(), "a medical image")


def load_pipeline(model: str, device: str) -> Any:
    """The same loading path for a real SD2 directory and for the tiny test pipeline."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # worker logs, not terminals
    dtype = torch.float16 if device == "cuda" else torch.float32
    kwargs = {"local_files_only": True, "safety_checker": None, "requires_safety_checker": False}
    try:  # diffusers >= 0.36 calls it ``dtype``; older releases only know ``torch_dtype``
        pipe = StableDiffusionInpaintPipeline.from_pretrained(model, dtype=dtype, **kwargs)
    except TypeError:
        pipe = StableDiffusionInpaintPipeline.from_pretrained(model, torch_dtype=dtype, **kwargs)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _crop_window(part: Box, rows: int, cols: int, size: int) -> Box:
    """A square of at least ``size`` (or the whole image side) centred on ``part``."""
    side = max(size, part.x1 - part.x0 + 16, part.y1 - part.y0 + 16)
    cx, cy = (part.x0 + part.x1) // 2, (part.y0 + part.y1) // 2
    w, h = min(side, cols), min(side, rows)
    x0 = min(max(0, cx - w // 2), cols - w)
    y0 = min(max(0, cy - h // 2), rows - h)
    return Box(x0, y0, x0 + w, y0 + h)


@dataclass
class _Crop:
    """One square sent to the model: what it sees, and which of its pixels go back where."""

    item: int  # which of the frames restored together
    window: Box
    model_mask: np.ndarray  # everything masked in the window: the model never sees the text
    paste_mask: np.ndarray  # the part of it no earlier crop of the frame pasted
    lo: float
    hi: float
    rgb8: np.ndarray
    prompt: str


class Sd2Inpainter:
    name = "sd2"

    def __init__(self, model: str, device: str = "cpu", steps: int = 20, guidance_scale: float = 7.5,
                 crop_size: int = 512, prompt: str = "modality", seed: int = 0, pipeline: Any = None,
                 batch_size: int = 4):
        self.model = model
        self.device = device
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.crop_size = crop_size
        self.prompt_mode = prompt
        self.seed = seed
        self.batch_size = batch_size
        self._pipe = pipeline
        self.version = f"sd2:{model}"

    @property
    def pipe(self) -> Any:
        if self._pipe is None:
            self._pipe = load_pipeline(self.model, self.device)
        return self._pipe

    def restore(self, frame: np.ndarray, mask: np.ndarray, ctx: RestoreContext) -> np.ndarray:
        return self.restore_many([(frame, mask, ctx)])[0]

    def restore_many(self, items: list[Restoration]) -> list[np.ndarray]:
        crops = [crop for i, item in enumerate(items) for crop in self._crops(i, *item)]
        outs = [frame.copy() for frame, _, _ in items]
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start:start + self.batch_size]
            for crop, gen8 in zip(batch, self._run(batch), strict=True):
                frame, _, ctx = items[crop.item]
                w = crop.window
                original = frame[w.y0:w.y1, w.x0:w.x1]
                if original.ndim == 2:
                    gen8 = cv2.cvtColor(gen8, cv2.COLOR_RGB2GRAY)
                restored = from_uint8(gen8, crop.lo, crop.hi, original, ctx)
                target = outs[crop.item][w.y0:w.y1, w.x0:w.x1]
                target[crop.paste_mask] = restored[crop.paste_mask]
        return [paste(frame, out, mask) for (frame, mask, _), out in zip(items, outs, strict=True)]

    def _crops(self, item: int, frame: np.ndarray, mask: np.ndarray, ctx: RestoreContext) -> list[_Crop]:
        """A window around each masked part not already inside an earlier window."""
        rows, cols = mask.shape
        prompt = prompt_for(ctx.modality, self.prompt_mode)
        done = np.zeros_like(mask)
        crops = []
        for part in mask_parts(mask):
            if done[part.y0:part.y1, part.x0:part.x1].all():
                continue
            win = _crop_window(part, rows, cols, self.crop_size)
            region = (slice(win.y0, win.y1), slice(win.x0, win.x1))
            crop, model_mask = frame[region], mask[region]
            lo, hi = data_range(crop[~model_mask] if (~model_mask).any() else crop)
            crop8 = to_uint8(crop, lo, hi)
            rgb8 = np.repeat(crop8[..., None], 3, axis=2) if frame.ndim == 2 else crop8
            crops.append(_Crop(item, win, model_mask, model_mask & ~done[region], lo, hi,
                               np.ascontiguousarray(rgb8), prompt))
            done[region] |= model_mask
        return crops

    def _run(self, batch: list[_Crop]) -> list[np.ndarray]:
        """The model on a batch of crops, each resized to ``crop_size`` and back."""
        import torch
        from PIL import Image

        size = self.crop_size

        def square(image: np.ndarray, interpolation: int) -> Image.Image:
            same = image.shape[:2] == (size, size)
            return Image.fromarray(image if same else cv2.resize(image, (size, size), interpolation=interpolation))

        result = self.pipe(
            prompt=[crop.prompt for crop in batch],
            image=[square(crop.rgb8, cv2.INTER_AREA) for crop in batch],
            mask_image=[square((crop.model_mask * 255).astype(np.uint8), cv2.INTER_NEAREST) for crop in batch],
            height=size, width=size, num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
            generator=[torch.Generator(device="cpu").manual_seed(self.seed) for _ in batch],
            output_type="np",
        ).images
        outs = []
        for crop, image in zip(batch, result, strict=True):
            out8 = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
            h, w = crop.rgb8.shape[:2]
            outs.append(out8 if (h, w) == (size, size) else cv2.resize(out8, (w, h), interpolation=cv2.INTER_CUBIC))
        return outs
