"""Stable Diffusion 2 inpainting (diffusers), for texture-rich backgrounds Telea smears.

Loaded from a local directory (``save_pretrained`` layout) or a model id already in the local
cache — ``local_files_only``: the gateway never fetches weights. fp16 on CUDA, fp32 on CPU.

Each masked part is handled in a square crop (``crop_size``, 512 for SD2) centred on it; parts
larger than a crop are handled in a larger crop resized to ``crop_size``. The frame's value
range is mapped to 8 bits for the model and the result mapped back into the stored range and
dtype; only masked pixels are pasted back, so everything outside the mask keeps its exact
stored value. The prompt names the modality ("an ultrasound image") or is empty, per config.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from gateway.pixels.inpaint.base import (
    RestoreContext,
    data_range,
    from_uint8,
    paste,
    to_uint8,
)
from gateway.pixels.mask import components
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


class Sd2Inpainter:
    name = "sd2"

    def __init__(self, model: str, device: str = "cpu", steps: int = 20, guidance_scale: float = 7.5,
                 crop_size: int = 512, prompt: str = "modality", seed: int = 0, pipeline: Any = None):
        self.model = model
        self.device = device
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.crop_size = crop_size
        self.prompt_mode = prompt
        self.seed = seed
        self._pipe = pipeline
        self.version = f"sd2:{model}"

    @property
    def pipe(self) -> Any:
        if self._pipe is None:
            self._pipe = load_pipeline(self.model, self.device)
        return self._pipe

    def _run(self, rgb8: np.ndarray, mask8: np.ndarray, prompt: str) -> np.ndarray:
        import torch
        from PIL import Image

        size = self.crop_size
        h, w = rgb8.shape[:2]
        image = Image.fromarray(cv2.resize(rgb8, (size, size), interpolation=cv2.INTER_AREA) if (h, w) != (size, size) else rgb8)
        m = cv2.resize(mask8, (size, size), interpolation=cv2.INTER_NEAREST) if (h, w) != (size, size) else mask8
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        out = self.pipe(
            prompt=prompt, image=image, mask_image=Image.fromarray(m), height=size, width=size,
            num_inference_steps=self.steps, guidance_scale=self.guidance_scale, generator=generator,
            output_type="np",
        ).images[0]
        out8 = np.clip(np.rint(np.asarray(out) * 255.0), 0, 255).astype(np.uint8)
        if (h, w) != (size, size):
            out8 = cv2.resize(out8, (w, h), interpolation=cv2.INTER_CUBIC)
        return out8

    def restore(self, frame: np.ndarray, mask: np.ndarray, ctx: RestoreContext) -> np.ndarray:
        if not mask.any():
            return frame.copy()
        rows, cols = mask.shape
        out = frame.copy()
        prompt = prompt_for(ctx.modality, self.prompt_mode)
        grey = frame.ndim == 2
        done = np.zeros_like(mask)
        for part in components(mask):
            if done[part.y0:part.y1, part.x0:part.x1].all():
                continue  # already inside an earlier part's crop
            win = _crop_window(part, rows, cols, self.crop_size)
            crop = out[win.y0:win.y1, win.x0:win.x1]
            cmask = mask[win.y0:win.y1, win.x0:win.x1] & ~done[win.y0:win.y1, win.x0:win.x1]
            lo, hi = data_range(crop[~cmask] if (~cmask).any() else crop)
            crop8 = to_uint8(crop, lo, hi)
            rgb8 = np.repeat(crop8[..., None], 3, axis=2) if grey else crop8
            gen8 = self._run(np.ascontiguousarray(rgb8), (cmask * 255).astype(np.uint8), prompt)
            if grey:
                gen8 = cv2.cvtColor(gen8, cv2.COLOR_RGB2GRAY)
            restored = from_uint8(gen8, lo, hi, crop, ctx)
            out[win.y0:win.y1, win.x0:win.x1] = paste(crop, restored, cmask)
            done[win.y0:win.y1, win.x0:win.x1] |= cmask
        return paste(frame, out, mask)
