"""The header stage: PS3.15 Annex E de-identification of one profile, as a pipeline stage."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydicom import Dataset

from gateway.deid.engine import DeidSettings, deidentify
from gateway.deid.profiles import compile_profile
from gateway.deid.pseudonyms import PseudonymService, PseudonymUnavailable
from gateway.pipeline.stage import CLEAN_PIXEL_DATA, InstanceContext, Quarantine

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

log = logging.getLogger(__name__)


class HeaderStage:
    """Runs the engine for ``profile``; everything is compiled once, in the constructor."""

    name = "header"

    def __init__(self, config: GatewayConfig, profile: str, secret: bytes,
                 pseudonyms: PseudonymService | None = None):
        specs = config.deid.profiles
        if profile not in specs:
            raise ValueError(f"unknown de-identification profile {profile!r}; known: {sorted(specs)}")
        if not secret:
            raise ValueError("the de-identification secret is empty")
        self.profile = compile_profile(profile, specs[profile])
        self.secret = secret
        self.pseudonyms = pseudonyms or PseudonymService(config, None, secret)
        self.settings = DeidSettings(
            method_text=config.deid.method_text,
            shift_min_days=config.deid.date_shift.min_days,
            shift_max_days=config.deid.date_shift.max_days,
        )

    def __call__(self, ds: Dataset, ctx: InstanceContext) -> Dataset:
        report = ctx.report(self.name)
        try:
            result = deidentify(
                ds,
                self.profile,
                self.secret,
                self.pseudonyms,
                self.settings,
                original=ctx.original,
                declared=ctx.declared_options,
            )
        except (Quarantine, PseudonymUnavailable):
            raise  # PseudonymUnavailable: a transient failure, for the worker to retry
        except Exception as exc:  # noqa: BLE001 - any failure means the header is not known clean
            # The exception text may quote a value from the dataset: log and report its type only.
            log.warning("header de-identification failed (%s) for profile %s", type(exc).__name__, self.profile.name)
            raise Quarantine(f"header de-identification failed ({type(exc).__name__})") from None
        if CLEAN_PIXEL_DATA in ctx.declared_options and "PixelData" in ds:
            # The pixel stage checked every frame and found (or left) no text.
            ds.BurnedInAnnotation = "NO"
        for action, n in result.counts.items():
            report.count(action, n)
        report.details["profile"] = self.profile.name
        report.details["options"] = list(result.options)
        return ds


def destination_profiles(config: GatewayConfig) -> list[str]:
    """The profiles the destinations ask for (the default profile for those that name none)."""
    wanted = [d.profile or config.deid.profile for d in config.egress.destinations] or [config.deid.profile]
    return list(dict.fromkeys(wanted))


def check_destination_profiles(config: GatewayConfig) -> None:
    """Raise ValueError naming the setting when a destination asks for an unknown profile."""
    for i, destination in enumerate(config.egress.destinations):
        if destination.profile is not None and destination.profile not in config.deid.profiles:
            raise ValueError(
                f"egress.destinations.{i}.profile: unknown de-identification profile {destination.profile!r}"
            )


def build_header_stages(config: GatewayConfig, secret: bytes,
                        pseudonyms: PseudonymService | None = None) -> dict[str, HeaderStage]:
    """One HeaderStage per profile in use, sharing one pseudonym service (for Pipeline)."""
    check_destination_profiles(config)
    pseudonyms = pseudonyms or PseudonymService(config, None, secret)
    return {name: HeaderStage(config, name, secret, pseudonyms) for name in destination_profiles(config)}
