"""The header stage: PS3.15 Annex E de-identification of one profile, as a pipeline stage."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydicom import Dataset

from gateway.deid.config import DeidConfig
from gateway.deid.engine import DeidSettings, deidentify
from gateway.deid.method import add_method_notes
from gateway.deid.options import OPTIONS
from gateway.deid.profiles import compile_profile
from gateway.deid.pseudonyms import PseudonymService
from gateway.pipeline.stage import CLEAN_PIXEL_DATA, InstanceContext, Quarantine, StageUnavailable
from gateway.pixels.decode import VIDEO_REASON, is_video

log = logging.getLogger(__name__)


class HeaderStage:
    """Runs the engine for ``profile``; everything is compiled once, in the constructor."""

    name = "header"

    def __init__(self, deid: DeidConfig, profile: str, secret: bytes,
                 pseudonyms: PseudonymService | None = None):
        specs = deid.profiles
        if profile not in specs:
            raise ValueError(f"unknown de-identification profile {profile!r}; known: {sorted(specs)}")
        if not secret:
            raise ValueError("the de-identification secret is empty")
        self.profile = compile_profile(profile, specs[profile])
        pseudonyms = pseudonyms or PseudonymService(deid, None, secret)
        project = specs[profile].project
        if project is not None and project != deid.pseudonyms.project:
            # A research project of its own: its pseudonyms, UIDs and date shifts come from
            # its own namespace, so its data cannot be joined with another project's.
            pseudonyms = pseudonyms.for_project(project)
        self.secret = pseudonyms.namespace
        self.pseudonyms = pseudonyms
        self.settings = DeidSettings(
            method_text=deid.method_text,
            shift_min_days=deid.date_shift.min_days,
            shift_max_days=deid.date_shift.max_days,
        )

    def __call__(self, ds: Dataset, ctx: InstanceContext) -> Dataset:
        if is_video(ds) and CLEAN_PIXEL_DATA not in ctx.declared_options:
            # With the pixel stage off too: a video is never forwarded without its frames checked.
            raise Quarantine(VIDEO_REASON)
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
        except (Quarantine, StageUnavailable):
            raise  # StageUnavailable (the pseudonym database): transient, for the worker to retry
        except Exception as exc:  # noqa: BLE001 - any failure means the header is not known clean
            # The exception text may quote a value from the dataset: log and report its type only.
            log.warning("header de-identification failed (%s) for profile %s", type(exc).__name__, self.profile.name)
            raise Quarantine(f"header de-identification failed ({type(exc).__name__})") from None
        add_method_notes(ds, ctx.method_notes)
        if CLEAN_PIXEL_DATA in ctx.declared_options and "PixelData" in ds:
            # The pixel stage checked every frame and found (or left) no text.
            ds.BurnedInAnnotation = "NO"
        self.pseudonyms.link_study(ctx.original, ds, self.profile.name)  # for coordinator lookups
        for option in result.options:  # what this instance now satisfies, e.g. Retain UIDs
            ctx.declare(OPTIONS[option][0])
        for action, n in result.counts.items():
            report.count(action, n)
        report.details["profile"] = self.profile.name
        report.details["options"] = list(result.options)
        return ds


def build_header_stages(deid: DeidConfig, profiles: Iterable[str], secret: bytes,
                        pseudonyms: PseudonymService | None = None) -> dict[str, HeaderStage]:
    """One HeaderStage per profile in use, sharing one pseudonym service (for Pipeline)."""
    pseudonyms = pseudonyms or PseudonymService(deid, None, secret)
    return {name: HeaderStage(deid, name, secret, pseudonyms) for name in profiles}
