"""Runs the stages over one instance, for every profile the destinations ask for."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset

from gateway.pipeline.stage import InstanceContext, Stage, StageReport, contained

log = logging.getLogger(__name__)


@dataclass
class ProfileResult:
    profile: str
    dataset: Dataset
    reports: list[StageReport]
    declared_options: set[str]


@dataclass
class Cleaned:
    """An instance after the instance stages: the dataset, and what those stages declared
    and reported."""

    dataset: Dataset
    context: InstanceContext


class Pipeline:
    """Instance stages once, then each profile's header stage on its own copy.

    ``profile_stages`` maps a profile name to the stages that make that profile's output.
    """

    def __init__(self, instance_stages: Sequence[Stage], profile_stages: dict[str, Sequence[Stage]]):
        self.instance_stages = list(instance_stages)
        self.profile_stages = {name: list(stages) for name, stages in profile_stages.items()}

    @property
    def profiles(self) -> list[str]:
        return list(self.profile_stages)

    def prepare(self, workings: list[Dataset]) -> list[dict[str, Any]]:
        """Let instance stages that can work on several instances at once (the pixel stage's
        detection) do so ahead of ``run``; ``workings`` are the datasets ``run`` will get, and
        element i of the result goes with ``workings[i]`` to ``run(..., prepared=...)``.

        A stage whose preparation fails prepares nothing: each instance then meets the problem,
        if it is its own, in its own turn, and the others go one at a time.
        """
        prepared: list[dict[str, Any]] = [{} for _ in workings]
        for stage in self.instance_stages:
            ahead = getattr(stage, "prepare", None)
            if ahead is None:
                continue
            try:
                results = ahead(workings)
            except BaseException as exc:  # noqa: BLE001 - see the docstring
                log.warning("stage %s could not prepare a group (%s); one at a time instead",
                            stage.name, type(contained(exc)).__name__)
                continue
            for slot, result in zip(prepared, results, strict=True):
                if result is not None:
                    slot[stage.name] = result
        return prepared

    def run(self, original: Dataset, profiles: Iterable[str] | None = None,
            working: Dataset | None = None, prepared: dict[str, Any] | None = None) -> list[ProfileResult]:
        """De-identify ``original``; raises :class:`~gateway.pipeline.stage.Quarantine`.

        ``working`` is a second, independent reading of the same instance for the stages to
        edit; parsing the bytes twice is several times cheaper than deep-copying a dataset.
        ``prepared`` is this instance's element of :meth:`prepare`'s result.
        """
        return self.run_profiles(original, self.run_instance_stages(original, working, prepared), profiles)

    def run_instance_stages(self, original: Dataset, working: Dataset | None = None,
                            prepared: dict[str, Any] | None = None) -> Cleaned:
        """The first half of ``run``: what a pixel worker does before handing the job on."""
        shared = InstanceContext(original=original, prepared=dict(prepared or {}))
        ds = working if working is not None else copy.deepcopy(original)
        for stage in self.instance_stages:
            ds = stage(ds, shared)
        return Cleaned(ds, shared)

    def run_profiles(self, original: Dataset, cleaned: Cleaned,
                     profiles: Iterable[str] | None = None) -> list[ProfileResult]:
        """The second half of ``run``: each profile's stages on its own copy of ``cleaned``."""
        wanted = list(profiles or self.profiles)
        results = []
        for profile in wanted:
            ctx = InstanceContext(
                original=original,
                profile=profile,
                declared_options=set(cleaned.context.declared_options),
                reports=list(cleaned.context.reports),
            )
            # Each profile edits its own copy; the last one may take the cleaned dataset itself.
            out = cleaned.dataset if profile == wanted[-1] else copy.deepcopy(cleaned.dataset)
            for stage in self.profile_stages[profile]:
                out = stage(out, ctx)
            results.append(ProfileResult(profile, out, ctx.reports, ctx.declared_options))
        return results
