"""One study for review: its deliveries, its sign-offs, its series as thumbnails of the
de-identified outputs with the redacted regions outlined, and its timeline.

The regions come from the audit's ``pixels_detail`` events (coordinates, the recogniser's
category, the restoration backend, the verification outcome; never text). Outputs are matched
to them by their de-identified SOP Instance UID. Series are grouped by the output's
(de-identified) SeriesInstanceUID, read from the output file's header; nothing else is read
from a dataset, and only for sorting.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import Dataset, dcmread
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.queue.tables import Instance, Output, Study
from gateway.web.thumbs import Outline

PIXELS_DETAIL = "pixels_detail"


@dataclass
class InstanceView:
    instance_id: int
    anon_uid: str
    output_id: int | None
    frames: int = 1
    shown_frames: list[int] = field(default_factory=list)
    outlines: list[Outline] = field(default_factory=list)
    categories: dict[int, str] = field(default_factory=dict)  # outline number -> category
    sources: dict[int, str] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    order: tuple = ()

    @property
    def redacted(self) -> int:
        return sum(1 for o in self.outlines if o.kind != "kept")


@dataclass
class SeriesView:
    uid: str
    instances: list[InstanceView]
    hidden: int = 0  # instances not shown as thumbnails (see ?all=1)


@dataclass
class StudyPixels:
    series: list[SeriesView]
    without_output: Counter  # instances with no output to show, by state
    purged: int  # outputs gone from the outbox (delivered and past retention)


def pixel_details(session, study: Study) -> dict[str, dict]:
    """The latest ``pixels_detail`` of each instance of the study, by de-identified UID."""
    latest: dict[str, dict] = {}
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.study_id == study.id, AuditEvent.event == PIXELS_DETAIL).order_by(AuditEvent.id)):
        uid = event.detail.get("instance")
        if uid:
            latest[str(uid)] = event.detail
    return latest


def outlines_of(detail: dict) -> tuple[list[Outline], dict[int, str], dict[int, str]]:
    """Numbered outlines of a detail's regions, with each one's category and source."""
    outlines, categories, sources = [], {}, {}
    for kind, key in (("redacted", "regions"), ("filled", "fallback_regions"), ("kept", "kept_regions")):
        for region in detail.get(key) or []:
            box = region.get("box")
            if not isinstance(box, list) or len(box) != 4:
                continue
            number = len(outlines) + 1
            frame = region.get("frame")
            outlines.append(Outline(number, kind, tuple(int(v) for v in box),
                                    int(frame) if isinstance(frame, int) else None))
            categories[number] = str(region.get("category") or "-")
            sources[number] = str(region.get("source") or "-")
    return outlines, categories, sources


def frames_to_show(frames: int, outlines: list[Outline], wanted: int) -> list[int]:
    """A few frames of a cine, evenly spaced: over the frames with regions of their own when
    there are any (text that comes and goes is what a reviewer must see), else over all."""
    own = sorted({o.frame for o in outlines if o.frame is not None and 0 <= o.frame < frames})
    pool = own or list(range(frames))
    if len(pool) <= wanted:
        return pool
    return sorted({pool[round(i * (len(pool) - 1) / (wanted - 1))] for i in range(wanted)}) if wanted > 1 \
        else [pool[0]]


def study_pixels(session, study: Study, profiles: list[str], per_series: int, frames_wanted: int,
                 show_all: bool = False) -> StudyPixels:
    details = pixel_details(session, study)
    instances = session.scalars(select(Instance).where(Instance.study_id == study.id).order_by(Instance.id)).all()
    outputs: dict[int, list[Output]] = defaultdict(list)
    for output in session.scalars(select(Output).where(Output.instance_id.in_([i.id for i in instances]))):
        outputs[output.instance_id].append(output)
    by_series: dict[str, list[InstanceView]] = defaultdict(list)
    without, purged = Counter(), 0
    for instance in instances:
        output = _preferred(outputs.get(instance.id, []), profiles)
        if output is None:
            without[instance.state] += 1
            continue
        if not Path(output.path).is_file():
            purged += 1
            continue
        series, view = _view(instance, output, details.get(instance.anon_uid or "", {}), frames_wanted)
        by_series[series].append(view)
    shown = []
    for uid, views in sorted(by_series.items()):
        views.sort(key=lambda v: (-v.redacted, v.order))
        limit = len(views) if show_all else per_series
        shown.append(SeriesView(uid, views[:limit], max(0, len(views) - limit)))
    return StudyPixels(shown, without, purged)


def _preferred(outputs: list[Output], profiles: list[str]) -> Output | None:
    for profile in profiles:
        for output in outputs:
            if output.profile == profile:
                return output
    return outputs[0] if outputs else None


def _view(instance: Instance, output: Output, detail: dict, frames_wanted: int) -> tuple[str, InstanceView]:
    try:
        header = dcmread(output.path, stop_before_pixels=True,
                         specific_tags=["SeriesInstanceUID", "InstanceNumber", "NumberOfFrames"])
    except Exception:  # noqa: BLE001 - shown without a series; its thumbnail says it cannot render
        header = Dataset()
    frames = int(header.get("NumberOfFrames", 1) or 1)
    number = header.get("InstanceNumber")
    outlines, categories, sources = outlines_of(detail)
    view = InstanceView(instance.id, output.anon_uid, output.id, frames,
                        frames_to_show(frames, outlines, frames_wanted), outlines, categories, sources,
                        detail, order=(int(number) if str(number or "").isdigit() else 0, instance.id))
    return str(header.get("SeriesInstanceUID", "-")), view


def outlines_for_output(session, output: Output) -> tuple[Outline, ...]:
    """The outlines to draw on one output's thumbnail (from its instance's latest detail)."""
    instance = session.get(Instance, output.instance_id)
    study = session.get(Study, instance.study_id)
    detail = pixel_details(session, study).get(instance.anon_uid or "", {})
    return tuple(outlines_of(detail)[0])
