"""Assembles the pipeline the configuration asks for: the one place that reads every section."""

from __future__ import annotations

from gateway.config import ConfigError, GatewayConfig
from gateway.db import Database
from gateway.pipeline.pipeline import Pipeline
from gateway.queue.tables import WorkerRole


def build_pipeline(
    config: GatewayConfig, db: Database | None, secret: bytes, device: str = "auto",
    role: str = WorkerRole.ALL, profiles: list[str] | None = None,
) -> Pipeline:
    """The pixel stage (when enabled) once per instance, then one header stage per profile:
    ``profiles`` (batch mode's ``--profile``), else every profile some destination or some
    routing rule asks for.

    A ``pixels`` worker gets only the first half and a ``headers`` worker only the second, so a
    header worker never loads a model.
    """
    profiles = profiles or list(dict.fromkeys(config.profiles_in_use() + config.rules.profiles()))
    unknown = sorted(set(profiles) - set(config.deid.profiles))
    if unknown:
        raise ConfigError(f"unknown de-identification profile {unknown[0]!r}; known: {sorted(config.deid.profiles)}")
    instance_stages = []
    if config.pixels.enabled and role != WorkerRole.HEADERS:
        from gateway.pixels.stage import PixelStage

        instance_stages.append(PixelStage(config.pixels, device=device))
    elif role == WorkerRole.PIXELS:
        raise ConfigError("a pixels worker needs the pixel stage: set pixels.enabled")
    profile_stages = {}
    if role != WorkerRole.PIXELS:
        from gateway.deid.pseudonyms import PseudonymService
        from gateway.deid.stage import build_header_stages

        pseudonyms = PseudonymService(config.deid, db, secret)
        header_stages = build_header_stages(config.deid, profiles, secret, pseudonyms)
        profile_stages = {profile: [stage] for profile, stage in header_stages.items()}
        from gateway.biometric.build import with_biometric  # chest radiographs, for the profiles that ask

        profile_stages = with_biometric(config.biometric, profile_stages, secret, config.pixels.output_syntax,
                                        list(config.deid.profiles))
    return Pipeline(instance_stages, profile_stages)
