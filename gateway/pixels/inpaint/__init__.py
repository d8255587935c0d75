"""Restoration backends, one per module (like diffusers pipelines), chosen by ``pixels.backend``."""

from __future__ import annotations

from gateway.pixels.config import PixelsConfig
from gateway.pixels.inpaint.base import Inpainter, RestoreContext, restore_many
from gateway.pixels.inpaint.fill import FillInpainter
from gateway.pixels.inpaint.telea import TeleaInpainter


def make_backend(config: PixelsConfig, device: str) -> Inpainter:
    if config.backend == "fill":
        return FillInpainter()
    if config.backend == "telea":
        return TeleaInpainter(config.telea_radius)
    from gateway.pixels.inpaint.sd2 import Sd2Inpainter

    if not config.sd2.model:
        raise ValueError("pixels.sd2.model must name a local model directory for backend sd2")
    s = config.sd2
    return Sd2Inpainter(s.model, device, s.steps, s.guidance_scale, s.crop_size, s.prompt, s.seed,
                        batch_size=s.batch_size)


__all__ = ["FillInpainter", "Inpainter", "RestoreContext", "TeleaInpainter", "make_backend", "restore_many"]
