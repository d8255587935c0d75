"""The console in a real browser (Debian's chromium, driven by Playwright) against a real
gateway process that forwards to Orthanc.

One gateway serves the whole module; the tests run in order, as an operator's day would:
a study arrives with burned-in text in one image and a cine with more frames than the
configuration allows, so the cine is quarantined. A viewer logs in, reviews the redactions and
cannot release. The configuration is fixed and the gateway restarted; an operator releases the
cine, which then reaches Orthanc, and re-pushes the study. Every page and API response, as
each role, is free of the study's patient data, and axe-core finds no serious violation.
Screenshots are kept (see the ``artifacts`` fixture).
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import cv2
import httpx
import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.integration.conftest import destination_for
from tests.peers import ORTHANC, STORESCU, Gateway, Orthanc, free_port, storescu, wait_for
from tests.pixels.synth import PHI, make_cine, make_color
from tests.study import FORBIDDEN, IDENTITY
from tests.web.conftest import PASSWORDS, ROLES
from tests.web.helpers import add_user

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore"),
              pytest.mark.skipif(not (ORTHANC and STORESCU), reason="needs Orthanc and dcmtk")]

#: Everything that must never appear on a page: the header canaries, and the burned-in text.
CANARIES = [*FORBIDDEN, *(v.encode() for v in IDENTITY.values()), *(t.encode() for t in PHI),
            b"4471203", b"19610314"]


def _study_files(folder) -> list:
    """An ultrasound image with burned-in text, and an 8-frame cine with a caption, both with
    the canary identity in their headers, in one study."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    files = []
    for name, case in (("text.dcm", make_color("RGB", rows=240, cols=320, seed=3)),
                       ("cine.dcm", make_cine(frames=8, changing_text_frame=5))):
        ds = case.ds
        for keyword, value in IDENTITY.items():
            setattr(ds, keyword, value)
        ds.StudyDescription = "CHEST CANARY^JOHN"
        ds.StudyInstanceUID = study_uid
        ds.save_as(folder / name, enforce_file_format=True)
        files.append(folder / name)
    return files


def _add_users(gateway: Gateway) -> None:
    for name, role in ROLES.items():
        add_user(gateway, name, role, PASSWORDS[name])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Orthanc, and the gateway with its console; the cine is quarantined (max_frames 5)."""
    work = tmp_path_factory.mktemp("console")
    archive = Orthanc(work / "orthanc").start()
    web_port = free_port()
    gateway = Gateway(work / "gateway", destinations=[destination_for(archive)], settings={
        "pixels": {"enabled": True, "max_frames": 5},
        "web": {"enabled": True, "port": web_port},
        "storage": {"retention_hours": 24},  # outputs stay in the outbox for review and re-push
    })
    _add_users(gateway)
    gateway.start()
    _console_up(f"http://127.0.0.1:{web_port}")
    try:
        storescu(gateway.port, _study_files(work / "study"))
        wait_for(lambda: len(archive.instances()) == 1, 180, what="the image with text archived")
        wait_for(lambda: "more frames" in gateway.cli("quarantine").stdout, 60, what="the cine quarantined")
        yield {"gateway": gateway, "archive": archive, "base": f"http://127.0.0.1:{web_port}"}
    finally:
        gateway.stop()
        archive.stop()


def _console_up(base: str) -> None:
    """The console answers (it starts beside the DICOM port the gateway fixture waits for)."""
    def answers() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 30, what="the console")


def _log_in(browser, base: str, name: str):
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/studies")
    assert page.url.startswith(base + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/studies")
    return page


def _study_label(page) -> str:
    return page.locator("table a.uid").first.inner_text()


def test_logging_in_and_out(browser, site, artifacts):
    page = _log_in(browser, site["base"], "vera")
    assert page.get_by_role("heading", name="Studies").is_visible()
    assert "vera (viewer)" in page.content()
    page.screenshot(path=str(artifacts / "studies.png"), full_page=True)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(site["base"] + "/login")
    page.goto("/studies")
    assert "/login" in page.url
    page.context.close()


def test_a_viewer_reviews_the_redactions_but_cannot_release(browser, site, artifacts):
    page = _log_in(browser, site["base"], "vera")
    page.goto("/quarantine")
    assert "more frames than pixels.max_frames" in page.content()
    assert page.get_by_role("button", name=re.compile("Release")).count() == 0
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    entry = re.search(r"<td>#(\d+)</td>", page.content()).group(1)
    forged = page.request.post(f"/quarantine/{entry}/release", form={"csrf": token})
    assert forged.status == 403

    page.goto("/studies")
    page.locator("table a.uid").first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("redacted and restored").is_visible()
    images = page.locator("figure img")
    assert images.count() >= 1 and images.first.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(artifacts / "study-viewer.png"), full_page=True)
    png = page.request.get(images.first.get_attribute("src"))
    assert png.status == 200 and png.headers["content-type"] == "image/png"
    _assert_outlined(png.body(), artifacts / "thumbnail.png")
    page.context.close()


def _assert_outlined(png: bytes, keep) -> None:
    """The thumbnail has the redaction outline's colour (RGB 255, 42, 42) in it."""
    keep.write_bytes(png)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    outline = np.all(np.abs(image.astype(int) - (42, 42, 255)) < 30, axis=2)
    assert outline.sum() > 100, "no redaction outline drawn on the thumbnail"


def test_an_operator_releases_the_cine_once_the_configuration_is_fixed(browser, site, artifacts):
    gateway, archive = site["gateway"], site["archive"]
    gateway.stop()
    gateway.settings["pixels"] = {"enabled": True}  # max_frames back to its default
    gateway.start()
    _console_up(site["base"])
    page = _log_in(browser, site["base"], "otto")
    page.goto("/quarantine")
    page.get_by_role("button", name=re.compile("Release entry")).first.click()
    page.wait_for_url(re.compile(r"/quarantine\?done=released"))
    assert page.get_by_role("status").inner_text().startswith("Released")
    wait_for(lambda: len(archive.instances()) == 2, 180, what="the released cine archived")

    page.goto("/studies")
    page.locator("table a.uid").first.click()
    page.wait_for_load_state("networkidle")
    frames = page.locator("figure img")
    assert frames.count() >= 4  # the image, and a few frames of the cine
    page.screenshot(path=str(artifacts / "study-operator.png"), full_page=True)
    page.context.close()


def test_an_operator_repushes_the_study(browser, site):
    archive = site["archive"]
    before = archive.stores_received()
    page = _log_in(browser, site["base"], "otto")
    page.locator("table a.uid").first.click()
    page.get_by_label("Destination").select_option("archive")
    page.get_by_role("button", name="Send the study again").click()
    page.wait_for_url(re.compile(r"done=repushed"))
    wait_for(lambda: archive.stores_received() >= before + 2, 120, what="the study stored again")
    page.context.close()


def _crawl(page, base: str) -> dict[str, bytes]:
    """Every page reachable by links from the overview, every picture and stylesheet on them,
    and the monitoring endpoints: GET only, so no action is taken."""
    todo = ["/", "/metrics", "/healthz", "/readyz", "/audit?limit=5000", "/no-such-page"]
    seen: dict[str, bytes] = {}
    while todo and len(seen) < 150:
        path = todo.pop(0)
        if path in seen:
            continue
        response = page.request.get(path)
        seen[path] = response.body()
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        html = seen[path].decode()
        for link in re.findall(r'(?:href|src)="([^"]+)"', html):
            target = urlsplit(urljoin(base + path, link.replace("&amp;", "&")))
            if target.netloc == urlsplit(base).netloc and target.path != "/login":
                todo.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


@pytest.mark.parametrize("name", ["vera", "otto", "ada"])
def test_no_patient_data_on_any_page_for_any_role(browser, site, name):
    page = _log_in(browser, site["base"], name)
    seen = _crawl(page, site["base"])
    assert any(path.startswith("/studies/") for path in seen)
    assert any(path.startswith("/thumbnails/") for path in seen)
    if name == "ada":
        assert "/users" in seen
    leaks = {path: [c for c in CANARIES if c in body or c.lower() in body.lower()]
             for path, body in seen.items()}
    assert {path: found for path, found in leaks.items() if found} == {}
    page.context.close()


def test_axe_finds_no_serious_violation_on_any_page(browser, site):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page = _log_in(browser, site["base"], "ada")
    label = _study_label(page)
    pages = ["/", "/studies", f"/studies/{label}", "/quarantine", "/audit", "/users", "/no-such-page"]
    found = {}
    for path in pages:
        page.goto(path)
        results = axe.run(page)
        serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = serious
    page.context.close()
    login = browser.new_page(base_url=site["base"])
    login.goto("/login")
    serious = [v["id"] for v in axe.run(login).response["violations"] if v["impact"] in ("serious", "critical")]
    if serious:
        found["/login"] = serious
    login.close()
    assert found == {}
