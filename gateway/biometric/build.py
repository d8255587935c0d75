"""Where the biometric stage goes in the pipeline: first among the stages of the profiles that
ask for it, before their header stage.

Why a profile stage rather than an instance stage: instance stages run once per instance and
their result is what every profile starts from, so an instance stage could only deform the
images of every destination or of none. The issue's requirement is per destination, and a
destination is served by its profile (``egress.destinations[i].profile``), so the stage runs on
the profile's own copy, after the pixel stage, before the header stage (which then writes the
method and model version this stage noted into DeidentificationMethod). Two profiles that both ask for
it each run it (deterministically, so with the same bytes); a site rarely has more than one.
A ``headers`` worker of a split deployment therefore loads the generator (ONNX Runtime, CPU) when
the first chest radiograph of such a profile arrives; a ``pixels`` worker never does.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.biometric.config import BiometricConfig
from gateway.config import ConfigError
from gateway.pipeline.stage import Stage


def check(config: BiometricConfig, known_profiles: Sequence[str]) -> None:
    """Start-up checks: the profiles exist, and so does the generator the method needs."""
    unknown = sorted(set(config.profiles) - set(known_profiles))
    if unknown:
        raise ConfigError(f"biometric.profiles: unknown profile {unknown[0]!r}; known: {sorted(known_profiles)}")
    if config.method == "prichexy" and config.profiles:
        from models.biometric.runtime import WEIGHTS, weights_name

        root = config.weights_dir or WEIGHTS
        if not (root / f"{weights_name(config.mu)}.onnx").exists():
            raise ConfigError(f"biometric.mu: no generator for mu {config.mu} in {root} "
                              f"(train one with models.training.biometric, or choose the shipped mu)")


def with_biometric(config: BiometricConfig, profile_stages: dict[str, list[Stage]], secret: bytes,
                   output_syntax: str, known_profiles: Sequence[str]) -> dict[str, list[Stage]]:
    """``profile_stages`` with one shared BiometricStage put first for every listed profile in it."""
    check(config, known_profiles)
    wanted = [p for p in config.profiles if p in profile_stages]
    if not wanted:
        return profile_stages
    from gateway.biometric.stage import BiometricStage

    stage = BiometricStage(config, secret, output_syntax)
    return {name: ([stage, *stages] if name in wanted else stages) for name, stages in profile_stages.items()}
