"""An incident timeline as a Markdown post-incident review draft and as a self-contained HTML page.

The page needs nothing but itself: inline CSS and SVG, no script, no font or image to
fetch. It shows the time axis, the burn rates sampled across the incident with the page
thresholds, the versions live over time, every event (promotions, approvals, alerts,
drift reports, rollbacks), what rolled back and why, time to detect and time to roll back.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["duration_text", "to_html", "to_markdown", "write_incident"]

COLORS = ["#3b6fd8", "#d8813b", "#2f9e6e", "#9b4dca", "#c23b5a", "#6b7280", "#0e9aa7", "#b5a300"]
EVENT_COLORS = {
    "promote": "#2f9e6e",
    "approve": "#3b6fd8",
    "rollback": "#c2262e",
    "slo_breach": "#d8813b",
    "alarm": "#d8813b",
    "drift": "#9b4dca",
    "register": "#6b7280",
    "reject": "#6b7280",
}


def duration_text(seconds: float | None) -> str:
    """``1 h 05 min``, ``12 min 30 s``, ``40 s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


def _short(iso: str | None) -> str:
    return "-" if not iso else datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def _versions_text(event: dict[str, Any]) -> str:
    a, b = event.get("from_version"), event.get("to_version")
    if a is not None and b is not None:
        return f"v{a} → v{b}"
    return f"v{b}" if b is not None else ""


def _why(rollback: dict[str, Any]) -> str:
    """What the rollback's evidence says triggered it."""
    evidence = rollback.get("evidence") or {}
    alert = evidence.get("alert")
    if isinstance(alert, dict):
        return (
            f"SLO {alert.get('slo')} {alert.get('severity')} alert: burn {alert.get('burn_rate_long', 0):.1f} over "
            f"{alert.get('long_window')} and {alert.get('burn_rate_short', 0):.1f} over {alert.get('short_window')} "
            f"(threshold {alert.get('threshold')}), budget left {alert.get('budget_remaining', 0):.1%}"
        )
    if evidence.get("alarm"):
        return f"alarm {evidence['alarm']} ({evidence.get('mapped_by', 'name')})"
    drift = evidence.get("drift")
    if isinstance(drift, dict):
        return f"{drift.get('severity')} drift on {', '.join(drift.get('drifted_features') or [])}"
    return str(rollback.get("reason") or "operator decision")


# -- Markdown -----------------------------------------------------------------------------------
def to_markdown(timeline: dict[str, Any]) -> str:
    """Return a post-incident review draft: summary, measures, timeline, rollbacks, traces, sections to fill."""
    m = timeline["measures"]
    model, env = timeline["model"], timeline["environment"]
    lines = [
        f"# Post-incident review (draft): {model} in {env}",
        "",
        f"Window: {_short(timeline['from'])} to {_short(timeline['to'])} (UTC).",
        "",
        "## Summary",
        "",
    ]
    if timeline["rollbacks"]:
        last = timeline["rollbacks"][-1]
        lines.append(
            f"{model} v{last['from_version']} went live in {env} at {_short(m['released_at'])}. "
            f"The impact began at {_short(m['impact_started_at'])}, was detected at {_short(m['detected_at'])} "
            f"and {env} was rolled back to v{last['to_version']} at {_short(m['rolled_back_at'])} "
            f"by {last['actor']}: {_why(last)}."
        )
    else:
        lines.append(f"No rollback of {model} in {env} in this window.")
    lines += [
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| time to detect | {duration_text(m['time_to_detect_seconds'])} |",
        f"| time to roll back (after detection) | {duration_text(m['time_to_roll_back_seconds'])} |",
        f"| version rolled back | {'-' if m['bad_version'] is None else 'v' + str(m['bad_version'])} |",
        "",
        "## Timeline",
        "",
        "| time (UTC) | event | versions | actor | details | trace |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for event in timeline["events"]:
        details = str(event.get("reason") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {_short(event['at'])} | {event['label']} | {_versions_text(event)} | {event['actor']} | "
            f"{details} | {event.get('trace_id') or ''} |"
        )
    lines += ["", "## What rolled back and why", ""]
    for rollback in timeline["rollbacks"]:
        lines.append(
            f"* {_short(rollback['at'])}: v{rollback['from_version']} → v{rollback['to_version']} by "
            f"{rollback['actor']} (trigger `{rollback.get('trigger')}`, audit #{rollback.get('audit_seq')}): "
            f"{_why(rollback)}"
        )
    if not timeline["rollbacks"]:
        lines.append("* none")
    lines += ["", "## Versions live", ""]
    lines += [f"* v{s['version']}: {_short(s['from'])} to {_short(s['to'])}" for s in timeline["versions"]]
    lines += ["", "## Traces", ""]
    lines += [f"* `{t}`" for t in timeline["trace_ids"]] or ["* none recorded"]
    lines += [
        "",
        "## Root cause",
        "",
        "_To be written._",
        "",
        "## What went well, what did not",
        "",
        "_To be written._",
        "",
        "## Action items",
        "",
        "| action | owner | due |",
        "| --- | --- | --- |",
        "| | | |",
        "",
    ]
    return "\n".join(lines)


# -- HTML ---------------------------------------------------------------------------------------
WIDTH, LEFT, RIGHT = 1100, 70, 20
CHART_TOP, CHART_HEIGHT = 30, 240


def _x(when: str, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    return float(LEFT + (WIDTH - LEFT - RIGHT) * (datetime.fromisoformat(when) - start).total_seconds() / span)


def _svg(timeline: dict[str, Any]) -> str:
    start, end = datetime.fromisoformat(timeline["from"]), datetime.fromisoformat(timeline["to"])
    series = [s for s in timeline["burn"]["series"] if s.get("points")]
    thresholds = timeline["burn"]["thresholds"]
    peak = max(
        [r for s in series for p in s["points"] for r in p["rates"].values() if r is not None]
        + [t["burn_rate"] for t in thresholds]
        + [1.0]
    )
    top = peak * 1.1

    def y(value: float) -> float:
        return float(CHART_TOP + CHART_HEIGHT * (1 - min(value, top) / top))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 420" width="{WIDTH}" height="420" '
        'role="img" aria-label="burn rates, versions and events over time">',
        f'<rect x="{LEFT}" y="{CHART_TOP}" width="{WIDTH - LEFT - RIGHT}" height="{CHART_HEIGHT}" class="plot"/>',
        f'<text x="{LEFT}" y="18" class="title">burn rate (error ratio ÷ error budget), page windows</text>',
    ]
    for i in range(5):
        value = top * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" class="tick" text-anchor="end">{value:.1f}</text>')
    for threshold in {(t["burn_rate"], t["long"], t["short"]) for t in thresholds}:
        rate, long, short = threshold
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(rate):.1f}" y2="{y(rate):.1f}" class="threshold"/>'
            f'<text x="{WIDTH - RIGHT - 4}" y="{y(rate) - 4:.1f}" class="tick" text-anchor="end">'
            f"page {long}/{short} &gt; {rate:g}</text>"
        )
    legend = []
    color = 0
    for s in series:
        for window in s["windows"]:
            points = [
                (_x(p["at"], start, end), y(p["rates"][window]))
                for p in s["points"]
                if p["rates"].get(window) is not None
            ]
            if not points:
                continue
            stroke = COLORS[color % len(COLORS)]
            color += 1
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="2"/>')
            legend.append((stroke, f"{s['slo']} {window}"))
    for i, (stroke, text) in enumerate(legend):
        lx = LEFT + 10 + (i % 6) * 170
        ly = CHART_TOP + 14 + (i // 6) * 16
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="12" height="4" fill="{stroke}"/>'
            f'<text x="{lx + 16}" y="{ly - 4}" class="tick">{escape(text)}</text>'
        )
    lane = CHART_TOP + CHART_HEIGHT + 30
    parts.append(f'<text x="{LEFT - 6}" y="{lane + 17}" class="tick" text-anchor="end">live</text>')
    for i, segment in enumerate(timeline["versions"]):
        x0, x1 = _x(segment["from"], start, end), _x(segment["to"], start, end)
        fill = COLORS[int(segment["version"]) % len(COLORS)]
        parts.append(
            f'<rect x="{x0:.1f}" y="{lane}" width="{max(x1 - x0, 1):.1f}" height="26" fill="{fill}" class="version"/>'
            f'<text x="{(x0 + x1) / 2:.1f}" y="{lane + 17}" class="vlabel" text-anchor="middle">'
            f"v{segment['version']}</text>"
        )
        del i
    marks = lane + 60
    parts.append(f'<text x="{LEFT - 6}" y="{marks + 4}" class="tick" text-anchor="end">events</text>')
    for n, event in enumerate(e for e in timeline["events"] if e["kind"] in EVENT_COLORS):
        ex = _x(event["at"], start, end)
        fill = EVENT_COLORS[event["kind"]]
        parts.append(
            f'<line x1="{ex:.1f}" x2="{ex:.1f}" y1="{CHART_TOP}" y2="{marks}" class="mark" stroke="{fill}"/>'
            f'<circle cx="{ex:.1f}" cy="{marks}" r="6" fill="{fill}"><title>{escape(_short(event["at"]))} '
            f"{escape(event['label'])} {escape(_versions_text(event))}</title></circle>"
            f'<text x="{ex:.1f}" y="{marks + 20 + (n % 3) * 13}" class="elabel" text-anchor="middle">'
            f"{escape(event['label'])}</text>"
        )
    axis = marks + 62
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{axis}" y2="{axis}" class="axis"/>')
    for i in range(7):
        when = start + (end - start) * i / 6
        tx = _x(when.isoformat(), start, end)
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{axis}" y2="{axis + 5}" class="axis"/>'
            f'<text x="{tx:.1f}" y="{axis + 18}" class="tick" text-anchor="middle">{when.strftime("%H:%M")}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2937;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:22px 0 8px}
.sub{color:#6b7280;margin:0 0 16px}
.cards{display:flex;gap:12px;margin:12px 0 8px}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:170px}
.card b{display:block;font-size:20px} .card span{color:#6b7280;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{border-bottom:1px solid #e5e7eb;padding:5px 8px;
text-align:left;vertical-align:top} th{background:#f9fafb} code{font-size:12px}
.plot{fill:#fbfbfd;stroke:#e5e7eb} .grid{stroke:#eef0f3} .threshold{stroke:#c2262e;stroke-dasharray:6 4}
.axis{stroke:#9ca3af} .tick{font-size:11px;fill:#4b5563} .title{font-size:12px;fill:#374151;font-weight:600}
.vlabel{font-size:12px;fill:#fff;font-weight:600} .elabel{font-size:10px;fill:#374151}
.mark{stroke-width:1;stroke-dasharray:2 3;opacity:.6} .rollback{color:#c2262e;font-weight:600}
"""


ROLLBACK_CLASS = ' class="rollback"'


def to_html(timeline: dict[str, Any]) -> str:
    """Return the incident page: one HTML document with inline CSS and SVG, no script, nothing to fetch."""
    m = timeline["measures"]
    model, env = escape(timeline["model"]), escape(timeline["environment"])
    rows = "".join(
        f"<tr><td>{escape(_short(e['at']))}</td><td{ROLLBACK_CLASS if e['kind'] == 'rollback' else ''}>"
        f"{escape(e['label'])}</td><td>{escape(_versions_text(e))}</td><td>{escape(str(e['actor']))}</td>"
        f"<td>{escape(str(e.get('reason') or ''))}</td><td><code>{escape(e.get('trace_id') or '')}</code></td></tr>"
        for e in timeline["events"]
    )
    rollbacks = (
        "".join(
            f"<tr><td>{escape(_short(r['at']))}</td><td>v{r['from_version']} → v{r['to_version']}</td>"
            f"<td>{escape(str(r['actor']))}</td><td>{escape(_why(r))}</td><td><code>{escape(str(r.get('trigger')))}</code>"
            f"</td><td>#{r.get('audit_seq')}</td></tr>"
            for r in timeline["rollbacks"]
        )
        or '<tr><td colspan="6">no rollback in this window</td></tr>'
    )
    traces = "".join(f"<li><code>{escape(t)}</code></li>" for t in timeline["trace_ids"]) or "<li>none recorded</li>"
    bad = "-" if m["bad_version"] is None else f"v{m['bad_version']}"
    cards = (
        f'<div class="card"><span>time to detect</span><b>{duration_text(m["time_to_detect_seconds"])}</b></div>'
        f'<div class="card"><span>time to roll back</span><b>{duration_text(m["time_to_roll_back_seconds"])}</b></div>'
        f'<div class="card"><span>version rolled back</span><b>{bad}</b></div>'
        f'<div class="card"><span>detected at (UTC)</span><b>{escape(_short(m["detected_at"]))[11:]}</b></div>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Incident: {model} in {env}</title><style>{CSS}</style></head><body>"
        f"<h1>Incident: {model} in {env}</h1>"
        f'<p class="sub">{escape(_short(timeline["from"]))} to {escape(_short(timeline["to"]))} UTC · '
        f"released {escape(_short(m['released_at']))} · impact from {escape(_short(m['impact_started_at']))} · "
        f"rolled back {escape(_short(m['rolled_back_at']))}</p>"
        f'<div class="cards">{cards}</div>'
        f"<h2>Burn rates, versions and events</h2>{_svg(timeline)}"
        "<h2>What rolled back and why</h2><table><tr><th>time (UTC)</th><th>move</th><th>actor</th><th>why</th>"
        f"<th>trigger</th><th>audit</th></tr>{rollbacks}</table>"
        "<h2>Timeline</h2><table><tr><th>time (UTC)</th><th>event</th><th>versions</th><th>actor</th>"
        f"<th>details</th><th>trace id</th></tr>{rows}</table>"
        f"<h2>Traces</h2><ul>{traces}</ul>"
        "</body></html>\n"
    )


def write_incident(timeline: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``<model>-<env>-incident.md`` and ``.html`` into the folder ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{timeline['model']}-{timeline['environment']}-incident"
    markdown, html = out / f"{stem}.md", out / f"{stem}.html"
    markdown.write_text(to_markdown(timeline), encoding="utf-8")
    html.write_text(to_html(timeline), encoding="utf-8")
    return markdown, html
