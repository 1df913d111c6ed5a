"""The SLA report drawn: each machine's month as a strip an operator looks at before answering a
customer (up, down and counted, down but not counted, excluded, unknown), with a legend."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from vpsfleet.sla import MINUTE_MS, State
from vpsfleet.sla_report import MachineReport, instant

COLOURS = {
    State.UP: ("#4caf50", "up"),
    State.DOWN_COUNTED: ("#d32f2f", "down, counted"),
    State.DOWN_NOT_COUNTED: ("#ff9800", "down, not counted (short)"),
    State.EXCLUDED: ("#5c6bc0", "excluded (maintenance, suspension, mitigation)"),
    State.UNKNOWN: ("#bdbdbd", "unknown (no probe data)"),
}
LABEL_W, STRIP_W, ROW_H, STRIP_H, TOP = 220, 900, 22, 14, 60
MIN_W = 1.0  # a three-minute outage is a twentieth of a pixel: drawn at least this wide


def render(reports: Sequence[MachineReport], month: str, zone: str) -> str:
    legend_y = TOP + ROW_H * len(reports) + 20
    height = legend_y + 20 * len(COLOURS) + 10
    width = LABEL_W + STRIP_W + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="24" font-size="16">SLA {escape(month)} ({escape(zone)} months)</text>',
        f'<text x="{LABEL_W}" y="46">{escape(month)}-01</text>',
        f'<text x="{LABEL_W + STRIP_W}" y="46" text-anchor="end">end of month</text>',
    ]
    for row, report in enumerate(reports):
        o = report.outcome
        y = TOP + row * ROW_H
        scale = STRIP_W / max(1, o.month_ms)
        credit = "no SLA" if o.credit_percent is None else f"credit {o.credit_percent:g} %"
        name = report.entry.machine.name
        out.append(f'<text x="10" y="{y + STRIP_H - 2}">{escape(name)} ({escape(credit)})</text>')
        # Up first, then everything else on top, so that short outages stay visible.
        ordered = sorted(o.segments, key=lambda s: s.state is not State.UP)
        for seg in ordered:
            x = LABEL_W + (seg.start - o.start) * scale
            w = max(MIN_W if seg.state is not State.UP else 0.0, seg.ms * scale)
            colour, what = COLOURS.get(seg.state, ("#000000", seg.state.value))
            detail = f"{what}{': ' + seg.reason if seg.reason else ''}, {instant(seg.start)} to " \
                     f"{instant(seg.end)} ({seg.ms / MINUTE_MS:.2f} min)"
            out.append(
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{STRIP_H}" '
                f'fill="{colour}" data-state="{seg.state.value}"><title>{escape(detail)}</title>'
                "</rect>"
            )
    for i, (state, (colour, what)) in enumerate(COLOURS.items()):
        y = legend_y + i * 20
        out.append(f'<rect x="10" y="{y}" width="14" height="14" fill="{colour}" '
                   f'data-legend={quoteattr(state.value)}/>')
        out.append(f'<text x="30" y="{y + 12}">{escape(what)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
