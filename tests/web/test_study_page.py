"""The study page: thumbnails of the de-identified output only, regions outlined, a few frames
of a cine, sign-offs; the study list's filters."""

from __future__ import annotations

import cv2
import numpy as np

from gateway.audit import events as audit
from gateway.queue.tables import Delivery, Instance, InstanceState, Output, Study, StudyState
from gateway.web.studyview import frames_to_show
from gateway.web.thumbs import Outline
from tests.pixels.synth import make_cine
from tests.web.conftest import client_for


def _seed(console, path_in: str = "outbox"):
    config, db, _ = console
    case = make_cine(frames=8, changing_text_frame=5)
    folder = getattr(config.storage, path_in) / "basic"
    folder.mkdir(parents=True, exist_ok=True)
    case.ds.save_as(folder / "cine.dcm", enforce_file_format=True)
    with db.session() as session:
        study = Study(study_key="aa" * 32, anon_uid="2.25.42", state=StudyState.DONE)
        session.add(study)
        session.flush()
        instance = Instance(study_id=study.id, sop_key="bb" * 32, anon_uid="2.25.43", sop_class_uid="1.2",
                            transfer_syntax_uid="1.2.840.10008.1.2.1", sha256="cc" * 32, size=1,
                            state=InstanceState.PROCESSED)
        session.add(instance)
        session.flush()
        output = Output(instance_id=instance.id, profile="basic", path=str(folder / "cine.dcm"),
                        anon_uid="2.25.43", sop_class_uid="1.2", transfer_syntax_uid="1.2.840.10008.1.2.1")
        session.add(output)
        session.flush()
        session.add(Delivery(output_id=output.id, study_id=study.id, destination="archive", state="sent"))
        audit.record(session, "pixels_detail", study=study, actor="worker", instance="2.25.43",
                     backend="telea", verification="passed", policy="redact_all", seconds=0.2,
                     regions=[{"box": [6, 4, 120, 24], "source": "detector", "category": "name"},
                              {"box": [70, 110, 180, 126], "source": "detector", "category": "date",
                               "frame": 5}],
                     kept_regions=[{"box": [150, 4, 180, 20], "source": "detector", "category": "safe"}])
        return output.id


def test_the_study_page_outlines_the_redacted_regions_on_the_output(console):
    output_id = _seed(console)
    client = client_for(console, "vera")
    page = client.get("/studies/2.25.42").text
    for expected in ("telea", "passed", "name", "date", "safe", "kept", "frame 6 of 8"):
        assert expected in page, expected
    assert f"/thumbnails/{output_id}/5.png" in page  # the frame whose caption was redacted
    png = client.get(f"/thumbnails/{output_id}/5.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) == 320
    red = np.all(np.abs(image.astype(int) - (42, 42, 255)) < 30, axis=2)
    green = np.all(np.abs(image.astype(int) - (80, 208, 32)) < 30, axis=2)  # BGR
    assert red.sum() > 200 and green.sum() > 50
    # Frame 1 has no caption: only the name's outline (which covers every frame).
    first = cv2.imdecode(np.frombuffer(client.get(f"/thumbnails/{output_id}/0.png").content, np.uint8), 1)
    assert np.all(np.abs(first.astype(int) - (42, 42, 255)) < 30, axis=2).sum() < red.sum()


def test_a_file_outside_the_outbox_is_never_rendered(console):
    output_id = _seed(console, path_in="spool")  # an output row pointing at an original
    client = client_for(console, "vera")
    assert client.get(f"/thumbnails/{output_id}/0.png").status_code == 404


def test_a_cine_shows_a_few_frames_with_its_own_regions_first():
    assert frames_to_show(1, [], 3) == [0]
    assert frames_to_show(100, [], 3) == [0, 50, 99]
    own = [Outline(i, "redacted", (0, 0, 1, 1), f) for i, f in enumerate([10, 11, 12, 13, 14])]
    assert frames_to_show(100, own, 3) == [10, 12, 14]
    assert frames_to_show(100, [Outline(1, "redacted", (0, 0, 1, 1), None)], 2) == [0, 99]


def test_the_study_list_filters_by_state_date_and_destination(console):
    _seed(console)
    client = client_for(console, "vera")
    assert "2.25.42" in client.get("/studies?state=done&destination=archive").text
    assert "2.25.42" not in client.get("/studies?state=failed").text
    assert "2.25.42" not in client.get("/studies?destination=second").text
    assert "2.25.42" not in client.get("/studies?since=2999-01-01").text
    assert "2.25.42" in client.get("/studies?until=2999-01-01&since=not-a-date").text
