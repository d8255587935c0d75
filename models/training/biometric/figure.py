"""The privacy/utility trade-off as an SVG scatter (no plotting library needed).

x: classification AUC (utility, higher is better); y: re-identification AUC of the re-trained
attacker, or of the original verifier where no attacker was trained (privacy, lower is better).
One labelled point per anonymization.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT, PAD = 640, 440, 60


def trade_off_svg(points: list[tuple[str, float, float]], x_label: str, y_label: str) -> str:
    """``points``: (name, x, y) with x and y in [0, 1]; axes span the data with a margin."""
    xs = [p[1] for p in points if not math.isnan(p[1])]
    ys = [p[2] for p in points if not math.isnan(p[2])]
    x0, x1 = min(xs + [0.5]) - 0.02, max(xs + [0.5]) + 0.02
    y0, y1 = min(ys + [0.5]) - 0.02, max(ys + [0.5]) + 0.02

    def sx(v: float) -> float:
        return PAD + (v - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(v: float) -> float:
        return HEIGHT - PAD - (v - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
              f'font-size="11"><rect width="100%" height="100%" fill="white"/>'),
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">{escape(x_label)}</text>',
             (f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" text-anchor="middle">'
              f'{escape(y_label)}</text>')]
    for k in range(5):
        xv, yv = x0 + k * (x1 - x0) / 4, y0 + k * (y1 - y0) / 4
        parts.append(f'<text x="{sx(xv):.0f}" y="{HEIGHT - PAD + 15}" text-anchor="middle">{xv:.2f}</text>')
        parts.append(f'<text x="{PAD - 5}" y="{sy(yv) + 4:.0f}" text-anchor="end">{yv:.2f}</text>')
    for name, x, y in points:
        if math.isnan(x) or math.isnan(y):
            continue
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="steelblue"/>')
        parts.append(f'<text x="{sx(x) + 6:.1f}" y="{sy(y) - 6:.1f}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
