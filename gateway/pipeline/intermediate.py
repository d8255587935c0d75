"""The hand-over between a pixel worker and a header worker.

A pixel worker (a GPU host) runs the instance stages and leaves their result for a header
worker (CPU hosts): the dataset as a file beside the spool, since its header is still the
original one, and what the stages declared and reported as JSON in the instance's row. Reports
hold counts and coordinates only, as they do in the audit log, so the row holds no patient data.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydicom import Dataset

from gateway.files import hashed_path
from gateway.pipeline.stage import InstanceContext, StageReport
from gateway.storage_config import StorageConfig


def path_for(storage: StorageConfig, sha256: str) -> Path:
    """Named, like the spool, by the SHA-256 of the received bytes: nothing from the dataset."""
    return hashed_path(storage.intermediate, sha256)


def context_to_json(ctx: InstanceContext) -> str:
    return json.dumps({
        "declared_options": sorted(ctx.declared_options),
        "reports": [{"stage": r.stage, "counts": r.counts, "details": r.details} for r in ctx.reports],
    })


def context_from_json(text: str, original: Dataset) -> InstanceContext:
    data = json.loads(text)
    return InstanceContext(
        original=original,
        declared_options=set(data["declared_options"]),
        reports=[StageReport(r["stage"], dict(r["counts"]), dict(r["details"])) for r in data["reports"]],
    )
