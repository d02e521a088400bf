"""The incident timeline of the demo's automatic rollback: the review draft, and the page rendered by headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from modelpilot.demo.story import STEPS
from modelpilot.service.incident_render import to_html

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    """Run the demo up to its automatic rollback in a kept home; return its timeline and page."""
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings
    from modelpilot.demo.context import DemoContext, SimulatedClock
    from modelpilot.demo.story import DEMO_POLICY
    from modelpilot.service.incident import incident_timeline

    home = tmp_path_factory.mktemp("demo")
    (home / "modelpilot.yaml").write_text(DEMO_POLICY, encoding="utf-8")
    clock = SimulatedClock()
    bus = bootstrap(Settings(backend="local", home=str(home), policy=str(home / "modelpilot.yaml")), clock=clock)
    ctx = DemoContext(home=home, bus=bus, clock=clock, as_json=True)
    ctx.data["keep_home"] = True
    for step in STEPS:
        step(ctx)
    page = Path(ctx.data["incident_page"])
    return incident_timeline(bus.services, "churn", "prod"), page, ctx


def test_timeline_tells_the_automatic_rollback(incident):
    timeline, page, _ctx = incident
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds.index("promote") < kinds.index("slo_breach") <= kinds.index("rollback")
    [rollback] = timeline["rollbacks"]
    assert (rollback["from_version"], rollback["to_version"]) == (4, 1)
    assert rollback["evidence"]["alert"]["severity"] == "page"
    assert [s["version"] for s in timeline["versions"]] == [1, 4, 1]
    m = timeline["measures"]
    assert (
        m["bad_version"] == 4 and m["released_at"] < m["impact_started_at"] <= m["detected_at"] <= m["rolled_back_at"]
    )
    # the demo's burst starts 30 min after v4 went live and is caught by a 5-minute check
    assert 0 < m["time_to_detect_seconds"] <= 10 * 60 and m["time_to_roll_back_seconds"] <= 5 * 60
    availability = next(s for s in timeline["burn"]["series"] if s["slo"] == "availability")
    peak = max(p["rates"]["5m"] or 0 for p in availability["points"])
    assert peak > 14.4  # the burst shows on the chart
    assert page.exists() and page.with_suffix(".md").exists()
    draft = page.with_suffix(".md").read_text(encoding="utf-8")
    assert "# Post-incident review (draft): churn in prod" in draft and "| time to detect |" in draft
    assert "v4 → v1" in draft and "## Action items" in draft


def test_the_page_is_self_contained(incident):
    _timeline, page, _ctx = incident
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<svg" in html and "What rolled back and why" in html and "time to detect" in html


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def render(page: Path, out: Path) -> tuple[Path, str]:
    """Screenshot ``page`` with headless Chromium; return the PNG and what the browser logged."""
    shot = out / f"{page.stem}.png"
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={out / 'profile'}",
            "--window-size=1200,1500",
            f"--screenshot={shot}",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return shot, done.stderr


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def test_chromium_renders_the_page_without_console_errors(incident, tmp_path):
    _timeline, page, _ctx = incident
    shot, log = render(page, tmp_path)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a real picture, not a blank page
    assert console_errors(log) == []


def test_console_errors_would_be_seen(tmp_path):
    """The check can fail: a page whose script throws shows up in Chromium's log."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><p>x</p><script>throw new Error('incident page broke')</script>", encoding="utf-8"
    )
    _shot, log = render(broken, tmp_path)
    assert any("incident page broke" in line for line in console_errors(log))


def test_html_escapes_what_the_audit_says(incident):
    timeline, _page, _ctx = incident
    hostile = {**timeline, "events": [{**timeline["events"][0], "reason": "<img src=x onerror=alert(1)>"}]}
    html = to_html(hostile)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
