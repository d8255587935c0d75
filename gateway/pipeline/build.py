"""Assembles the pipeline the configuration asks for."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.db import Database
from gateway.pipeline.pipeline import Pipeline


def profile_by_destination(config: GatewayConfig) -> dict[str, str]:
    """Destination name -> the profile whose output it receives."""
    return {d.name: d.profile or config.deid.profile for d in config.egress.destinations}


def build_pipeline(
    config: GatewayConfig, db: Database | None, secret: bytes, device: str = "auto"
) -> Pipeline:
    """The pixel stage (when enabled) once per instance, then one header stage per profile in use."""
    from gateway.deid.pseudonyms import PseudonymService
    from gateway.deid.stage import build_header_stages

    instance_stages = []
    if config.pixels.enabled:
        from gateway.pixels.stage import PixelStage

        instance_stages.append(PixelStage(config, device=device))
    header_stages = build_header_stages(config, secret, PseudonymService(config, db, secret))
    return Pipeline(instance_stages, {profile: [stage] for profile, stage in header_stages.items()})
