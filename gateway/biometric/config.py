"""Settings of the biometric stage: which profiles get it, how, and which instances it touches.

Off by default (no profile listed). A destination asks for it through its profile: list the
profile here, and give that profile to the destinations that should receive deformed chest
radiographs (``egress.destinations[i].profile``). Every other destination's profile leaves the
pixels as the pixel stage left them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gateway.settings_base import Section


class DpPixConfig(Section):
    """DP-Pix (Fan 2018): pixelization of the image at ``working_size`` px into ``cell`` x ``cell``
    cells, each its mean plus Laplace noise of scale neighbourhood / (cell^2 * epsilon)."""

    cell: int = Field(default=8, ge=1, le=256)
    neighbourhood: int = Field(default=1, ge=1)
    epsilon: float = Field(default=0.1, gt=0)
    working_size: int = Field(default=256, ge=8, le=4096)


class BiometricConfig(Section):
    # Profiles (deid.profiles) whose outputs are biometrically anonymized. Empty: off.
    profiles: list[str] = Field(default_factory=list)
    # "prichexy": PriCheXy-Net's learned deformation; "dp_pix": differentially private pixelization
    # (destroys most diagnostic detail; for comparison or for sites that need a formal guarantee).
    method: Literal["prichexy", "dp_pix"] = "prichexy"
    # PriCheXy-Net's strength: the largest displacement is mu x half the image's width. One
    # generator is trained per mu; models/weights ships prichexy_mu<mu>.onnx for the default.
    mu: Literal[0.001, 0.005, 0.01] = 0.01
    dp_pix: DpPixConfig = Field(default_factory=DpPixConfig)
    # Which instances are chest radiographs, by the header (case-insensitive; Modality,
    # BodyPartExamined, ViewPosition). Others pass unchanged and are counted.
    modalities: list[str] = Field(default_factory=lambda: ["CR", "DX"])
    body_parts: list[str] = Field(default_factory=lambda: ["CHEST"])
    views: list[str] = Field(default_factory=lambda: ["PA", "AP"])
    # A CR/DX instance whose BodyPartExamined is missing or empty: "quarantine" (held back for
    # review), "skip" (passes unchanged, counted) or "apply" (treated as a chest radiograph).
    unstated_body_part: Literal["quarantine", "skip", "apply"] = "quarantine"
    # Where prichexy_mu<mu>.onnx is read from (default: the shipped models/weights).
    weights_dir: Path | None = None
    # ONNX Runtime threads per worker process (0: the library's default).
    cpu_threads: int = Field(default=1, ge=0)
