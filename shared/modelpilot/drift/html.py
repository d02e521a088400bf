"""A self-contained HTML drift report: inline SVG histograms, no scripts, fonts or URLs.

Features appear in the report's order (drifted first, then by effect relative
to threshold); each shows reference (grey) and current (orange) bin shares.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpilot.drift.report import DriftReport

__all__ = ["attribution_section", "quality_section", "render_html", "render_quality_html"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1d2430;max-width:1100px}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin:0 0 .3rem}
.sev{display:inline-block;padding:.15rem .6rem;border-radius:.8rem;font-weight:600}
.sev-none{background:#dff5e1}.sev-warning{background:#fff1c2}.sev-critical{background:#ffd6d6}
.feature{border:1px solid #d9dee7;border-radius:.5rem;padding:.8rem 1rem;margin:1rem 0}
.drifted{border-color:#e06c5d;border-width:2px}
table{border-collapse:collapse;font-size:.85rem} td,th{padding:.15rem .6rem;text-align:left}
.muted{color:#5b6575;font-size:.85rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _svg(hist: dict[str, Any]) -> str:
    ref: list[float] = hist.get("reference", [])
    cur: list[float] = hist.get("current", [])
    if not ref:
        return ""
    width, height, pad = 640, 140, 18
    top = max([*ref, *cur, 1e-12])
    slot = (width - 2 * pad) / len(ref)
    bar = max(1.0, slot * 0.4)
    parts = [f'<svg width="{width}" height="{height + 30}" viewBox="0 0 {width} {height + 30}" role="img">']
    parts.append(f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#999"/>')
    labels = hist.get("labels")
    for i, (r, c) in enumerate(zip(ref, cur, strict=False)):
        x = pad + i * slot
        hr, hc = (height - 10) * r / top, (height - 10) * c / top
        parts.append(
            f'<rect x="{x:.1f}" y="{height - hr:.1f}" width="{bar:.1f}" height="{hr:.1f}" fill="#9aa5b1">'
            f"<title>reference {r:.2%}</title></rect>"
        )
        parts.append(
            f'<rect x="{x + bar:.1f}" y="{height - hc:.1f}" width="{bar:.1f}" height="{hc:.1f}" '
            f'fill="#f28c28"><title>current {c:.2%}</title></rect>'
        )
        if labels:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{height + 14}" font-size="10" text-anchor="middle">'
                f"{escape(str(labels[i]))[:12]}</text>"
            )
    edges = hist.get("edges")
    if edges:
        parts.append(f'<text x="{pad}" y="{height + 26}" font-size="10">≤ {escape(f"{edges[0]:.4g}")}</text>')
        parts.append(
            f'<text x="{width - pad}" y="{height + 26}" font-size="10" text-anchor="end">'
            f"&gt; {escape(f'{edges[-1]:.4g}')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _feature(item: dict[str, Any]) -> str:
    m = item["metrics"]
    q = item["quality"]
    verdict = "DRIFTED" if item["drifted"] else ("ignored" if item.get("ignored") else "ok")
    rows = [
        ("effect", f"{item['method']} = {_fmt(item['effect'])} (threshold {_fmt(item['threshold'])})"),
        (
            "test",
            f"{item['test']} p = {_fmt(item['pvalue'])}, corrected p = {_fmt(item['pvalue_corrected'])}",
        ),
        ("samples", f"reference {item['n_reference']}, current {item['n_current']}"),
    ]
    if item["kind"] == "numeric":
        rows.append(
            (
                "metrics",
                f"PSI {_fmt(m['psi'])} · JS {_fmt(m['jensen_shannon'])} · Hellinger "
                f"{_fmt(m['hellinger'])} · KS {_fmt(m['ks'])} (±{_fmt(m['ks_bound'])}) · "
                f"normalized Wasserstein {_fmt(m['wasserstein_norm'])} "
                f"(±{_fmt(m['wasserstein_bound'])})",
            )
        )
    else:
        rows.append(
            (
                "metrics",
                f"chi² {_fmt(m['chi2'])} (dof {_fmt(m['chi2_dof'])}) · JS "
                f"{_fmt(m['jensen_shannon'])} · L∞ {_fmt(m['linf'])} · PSI {_fmt(m['psi'])}",
            )
        )
    rows.append(
        (
            "quality",
            ", ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in q.items() if k.endswith("_rate")) or "-",
        )
    )
    if q.get("vanished_values"):
        gone = ", ".join(f"{name} ({share:.1%})" for name, share in q["vanished_values"].items())
        rows.append(("vanished", gone))
    if q.get("breaches"):
        rows.append(("breaches", "; ".join(q["breaches"])))
    escaped = ("breaches", "vanished")
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v) if k in escaped else v}</td></tr>" for k, v in rows)
    cls = "feature drifted" if item["drifted"] else "feature"
    return (
        f'<section class="{cls}"><h2>{escape(item["name"])} <span class="muted">({item["kind"]}, '
        f"{verdict}{', critical' if item['critical'] else ''})</span></h2><table>{table}</table>"
        f"{_svg(item.get('histogram', {}))}</section>"
    )


def render_html(report: DriftReport) -> str:
    """Return the report as one self-contained HTML page."""
    d = report.data
    window = d.get("window") or {}
    quality = d["quality"]
    head = (
        f"<h1>Drift report: {escape(str(d['model']))} / {escape(str(d['environment']))}"
        f"{' v' + escape(str(d['version'])) if d.get('version') is not None else ''}</h1>"
        f'<p><span class="sev sev-{escape(d["severity"])}">severity: {escape(d["severity"])}</span> '
        f"drifted: {escape(', '.join(d['drifted_features']) or 'none')}</p>"
        f'<p class="muted">report {escape(d["report_id"])} · window {escape(str(window.get("start")))} → '
        f"{escape(str(window.get('end')))} · {d['current']['rows']} rows "
        f"({d['current']['corrupt_rows']} corrupt, "
        f"{d['current']['corrupt_files']} corrupt files) vs {d['reference']['rows']} reference rows · "
        f"correction {escape(d['settings']['correction'])}, alpha {d['settings']['alpha']}</p>"
        '<p class="legend muted"><span style="background:#9aa5b1"></span>reference'
        '<span style="background:#f28c28"></span>current</p>'
    )
    if quality["breaches"]:
        head += "<p><strong>Data quality:</strong> " + escape("; ".join(quality["breaches"])) + "</p>"
    body = "".join(_feature(item) for item in d["features"])
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Drift report '
        f"{escape(d['report_id'])}</title><style>{_CSS}</style></head><body>{head}{body}</body></html>"
    )


# -- model quality and attribution ---------------------------------------------------------------
_QUALITY_CSS = """
.band{color:#5b6575} .miss{color:#b3261e;font-weight:600} .gain{color:#1b7f3b} .loss{color:#b3261e}
"""


def _metric_table(group: dict[str, Any]) -> str:
    metrics: dict[str, Any] = group.get("metrics") or {}
    estimated: dict[str, Any] = group.get("estimated") or {}
    check: dict[str, Any] = group.get("estimate_check") or {}
    rows = []
    for name in sorted(set(metrics) | set(estimated)):
        band = estimated.get(name)
        est = (
            f'{_fmt(band["value"])} <span class="band">[{_fmt(band["lower"])}, {_fmt(band["upper"])}]</span>'
            if band
            else "-"
        )
        verdict = check.get(name, {}).get("within")
        mark = "" if verdict is None else ("in band" if verdict else '<span class="miss">outside band</span>')
        rows.append(f"<tr><th>{escape(name)}</th><td>{_fmt(metrics.get(name))}</td><td>{est}</td><td>{mark}</td></tr>")
    head = "<tr><th>metric</th><th>realised</th><th>estimated [band]</th><th>check</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def quality_section(doc: dict[str, Any]) -> str:
    """The quality part of a report: per version, realised and estimated metrics, coverage, slices."""
    join = doc.get("join") or {}
    parts = [
        "<h2>Model quality</h2>",
        f'<p class="muted">{join.get("predictions", 0)} predictions, {join.get("labels_read", 0)} labels read, '
        f"{join.get('matched', 0)} joined (coverage {_fmt(join.get('coverage'))}); "
        f"{join.get('unknown_labels', 0)} labels for unknown inference ids, "
        f"{join.get('duplicate_labels', 0)} duplicate labels, {join.get('missing_ids', 0)} predictions without id</p>",
    ]
    for group in doc.get("versions", []):
        reliability = group.get("estimate_reliability") or {}
        note = ""
        if reliability and not reliability.get("reliable", True):
            note = '<p class="miss">estimate unreliable: ' + escape("; ".join(reliability.get("reasons", []))) + "</p>"
        parts.append(
            f'<section class="feature"><h2>v{escape(str(group.get("version")))} '
            f'<span class="muted">{group.get("labelled", 0)} of {group.get("predictions", 0)} predictions labelled '
            f"(coverage {_fmt(group.get('coverage'))})</span></h2>{_metric_table(group)}{note}"
        )
        slices = group.get("slices") or []
        if slices:
            keys = sorted({k for s in slices for k in (s.get("metrics") or {})})
            head = (
                "<tr><th>slice</th><th>predictions</th><th>labelled</th>"
                + "".join(f"<th>{escape(k)}</th>" for k in keys)
                + "</tr>"
            )
            body = "".join(
                f"<tr><td>{escape(str(s['column']))} = {escape(str(s['value']))}</td><td>{s['predictions']}</td>"
                f"<td>{s['labelled']}</td>" + "".join(f"<td>{_fmt(s['metrics'].get(k))}</td>" for k in keys) + "</tr>"
                for s in slices
            )
            parts.append(f"<table>{head}{body}</table>")
        parts.append("</section>")
    drift = doc.get("prediction_drift")
    if drift:
        parts.append(
            f"<h2>Prediction drift</h2><p>severity {escape(str(drift.get('severity')))}; drifted: "
            f"{escape(', '.join(drift.get('drifted') or []) or 'none')}</p>"
        )
        for item in drift.get("features", []):
            parts.append(
                f'<section class="feature"><h2>{escape(str(item["name"]))} <span class="muted">{item["method"]} = '
                f"{_fmt(item['effect'])} (threshold {_fmt(item['threshold'])}), corrected p = "
                f"{_fmt(item['pvalue_corrected'])}</span></h2>{_svg(item.get('histogram') or {})}</section>"
            )
    return "".join(parts)


def attribution_section(doc: dict[str, Any]) -> str:
    """The attribution part of a report: NDCG against the threshold and which features gained or lost."""
    section = doc.get("attribution")
    if not section:
        return ""
    parts = [
        "<h2>Feature attribution</h2>",
        f"<p>NDCG {_fmt(section.get('ndcg'))} (threshold {_fmt(section.get('threshold'))}, "
        f"{section.get('rows', 0)} rows)</p>",
    ]
    if section.get("notes"):
        parts.append('<p class="muted">' + escape("; ".join(section["notes"])) + "</p>")
    rows = []
    for change in section.get("changes", []):
        moved = change.get("rank_change")
        cls = "gain" if moved and moved > 0 else "loss" if moved and moved < 0 else ""
        word = "gained" if cls == "gain" else "lost" if cls == "loss" else "kept"
        rows.append(
            f"<tr><td>{escape(str(change['feature']))}</td><td>{_fmt(change.get('reference_rank'))} → "
            f"{_fmt(change.get('current_rank'))}</td><td>{_fmt(change.get('reference_importance'))} → "
            f'{_fmt(change.get("current_importance"))}</td><td class="{cls}">{word}</td></tr>'
        )
    if rows:
        parts.append(
            "<table><tr><th>feature</th><th>rank</th><th>mean |attribution|</th><th>importance</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    return "".join(parts)


def render_quality_html(doc: dict[str, Any]) -> str:
    """Return a quality report (its JSON document) as one self-contained HTML page."""
    window = doc.get("window") or {}
    breaches = [b for b in doc.get("breaches", []) if b.get("severity") != "none"]
    head = (
        f"<h1>Quality report: {escape(str(doc.get('model')))} / {escape(str(doc.get('environment')))} "
        f"v{escape(str(doc.get('version')))}</h1>"
        f'<p><span class="sev sev-{escape(str(doc.get("severity")))}">severity: {escape(str(doc.get("severity")))}'
        f"</span></p>"
        f'<p class="muted">report {escape(str(doc.get("report_id")))} · window {escape(str(window.get("start")))} → '
        f"{escape(str(window.get('end')))} · {escape(str(doc.get('task')))} model</p>"
    )
    if breaches:
        head += "<ul>" + "".join(f"<li>{escape(b['message'])}</li>" for b in breaches) + "</ul>"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Quality report '
        f"{escape(str(doc.get('report_id')))}</title><style>{_CSS}{_QUALITY_CSS}</style></head><body>{head}"
        f"{quality_section(doc)}{attribution_section(doc)}</body></html>"
    )
