"""Assembles the pipeline the configuration asks for."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.db import Database
from gateway.pipeline.pipeline import Pipeline


def destination_profiles(config: GatewayConfig) -> dict[str, str]:
    """Destination name -> the profile whose output it receives."""
    return {d.name: d.profile or config.deid.profile for d in config.egress.destinations}


def needed_profiles(config: GatewayConfig) -> list[str]:
    """Every profile some destination receives; the default profile when none is configured."""
    profiles = list(dict.fromkeys(destination_profiles(config).values()))
    return profiles or [config.deid.profile]


def build_pipeline(
    config: GatewayConfig, db: Database | None, secret: bytes, device: str = "auto"
) -> Pipeline:
    from gateway.deid.pseudonyms import PseudonymService
    from gateway.deid.stage import HeaderStage

    instance_stages = []
    if config.pixels.enabled:
        from gateway.pixels.stage import PixelStage

        instance_stages.append(PixelStage(config, device=device))
    pseudonyms = PseudonymService(config, db, secret)
    profile_stages = {
        profile: [HeaderStage(config, profile, secret, pseudonyms)]
        for profile in needed_profiles(config)
    }
    return Pipeline(instance_stages, profile_stages)
