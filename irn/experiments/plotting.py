"""Small line plots drawn with Pillow (no matplotlib dependency).

:func:`line_plot` draws one line per named series with axes, "nice" tick labels, axis
titles and a legend, and writes a PNG. Points whose value is ``None`` or not finite are
left out (the line is broken there).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: Line colours, cycled (a colour-blind-friendly qualitative palette).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (120, 120, 120),
    (0, 0, 0),
    (240, 228, 66),
)

Point = float | None


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about ``target`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-6:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi - step * 1e-6:
        ticks.append(round(t, 10))
    return ticks


def _fmt(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{v:.{decimals}f}"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: a fixed bitmap font
        return ImageFont.load_default()


def _finite(v: Point) -> bool:
    return v is not None and math.isfinite(v)


def _in_plot(
    x: float, y: float, bounds: tuple[float, float, float, float], plot: tuple[float, float]
) -> tuple[float, float]:
    """Data (x, y) -> pixels from the top left corner of the axes (width, height = ``plot``)."""
    x0, x1, y0, y1 = bounds
    return (x - x0) / (x1 - x0 or 1.0) * plot[0], (1 - (y - y0) / (y1 - y0 or 1.0)) * plot[1]


def _legend_corner(
    series: Mapping[str, tuple[Sequence[float], Sequence[Point]]],
    bounds: tuple[float, float, float, float],
    plot: tuple[float, float],
    box: tuple[float, float],
) -> tuple[bool, bool] | None:
    """(right, top) of the first corner of the axes, in the order top right, top left, bottom right,
    bottom left, whose legend box hides no point of the lines (each segment sampled), or None."""
    pw, ph = plot
    bw, bh = box
    points: list[tuple[float, float]] = []
    for xs, ys in series.values():
        prev: tuple[float, float] | None = None
        for x, y in zip(xs, ys, strict=True):
            if not _finite(y):
                prev = None
                continue
            here = _in_plot(float(x), float(y), bounds, plot)  # type: ignore[arg-type]
            if prev is not None:
                dx, dy = here[0] - prev[0], here[1] - prev[1]
                points += [(prev[0] + dx * i / 16, prev[1] + dy * i / 16) for i in range(16)]
            points.append(here)
            prev = here
    for right_side, top_side in ((True, True), (False, True), (True, False), (False, False)):
        bx = pw - bw if right_side else 0.0
        by = 0.0 if top_side else ph - bh
        if not any(bx <= px <= bx + bw and by <= py <= by + bh for px, py in points):
            return right_side, top_side
    return None


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[Point]]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (900, 560),
    supersample: int = 2,
) -> Path:
    """Draw ``{label: (xs, ys)}`` as lines on shared axes and write a PNG to ``path``.

    ``size`` is (width, height) in pixels; lines are drawn ``supersample`` times larger and
    downsampled for smooth edges. Series with no finite point are listed in the legend only.
    """
    if not series:
        raise ValueError("line_plot needs at least one series")
    xs_all = [float(x) for xs, _ in series.values() for x in xs]
    ys_all = [float(y) for _, ys in series.values() for y in ys if _finite(y)]  # type: ignore[arg-type]
    if not xs_all:
        raise ValueError("line_plot needs at least one point")
    if not ys_all:
        ys_all = [0.0, 1.0]
    x_ticks = nice_ticks(min(xs_all), max(xs_all))
    y_lo, y_hi = min(ys_all), max(ys_all)
    pad = 0.04 * (y_hi - y_lo) if y_hi > y_lo else 0.5
    y_ticks = nice_ticks(y_lo - pad, y_hi + pad)
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]

    k = max(1, int(supersample))
    font, small = _font(15 * k), _font(13 * k)
    labels = list(series)
    line_h = 20 * k
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(measure.textlength(s, font=small) for s in labels)
    box_w, box_h = int(text_w + 44 * k), line_h * len(labels) + 10 * k
    left, right, top, bottom = 78 * k, 24 * k, (44 if title else 20) * k, 62 * k
    width, height = size[0] * k, size[1] * k
    pw, ph = width - left - right, height - top - bottom
    corner = _legend_corner(series, (x0, x1, y0, y1), (pw, ph), (box_w + 8 * k, box_h + 8 * k))
    if corner is None:  # every corner inside the axes would hide data: the legend goes below the plot
        height += box_h + 12 * k
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)

    def px(x: float) -> float:
        return left + _in_plot(x, y0, (x0, x1, y0, y1), (pw, ph))[0]

    def py(y: float) -> float:
        return top + _in_plot(x0, y, (x0, x1, y0, y1), (pw, ph))[1]

    grid, axis = (228, 228, 228), (40, 40, 40)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in x_ticks:
        draw.line([(px(t), top), (px(t), top + ph)], fill=grid, width=k)
        draw.text((px(t), top + ph + 6 * k), _fmt(t, x_step), fill=axis, font=small, anchor="ma")
    for t in y_ticks:
        draw.line([(left, py(t)), (left + pw, py(t))], fill=grid, width=k)
        draw.text((left - 8 * k, py(t)), _fmt(t, y_step), fill=axis, font=small, anchor="rm")
    draw.rectangle([left, top, left + pw, top + ph], outline=axis, width=k)
    if title:
        draw.text((left + pw / 2, 12 * k), title, fill=axis, font=font, anchor="ma")
    if xlabel:
        draw.text((left + pw / 2, top + ph + bottom - 10 * k), xlabel, fill=axis, font=font, anchor="md")
    if ylabel:
        bbox = draw.textbbox((0, 0), ylabel, font=font)
        label = Image.new("RGB", (bbox[2] - bbox[0] + 4 * k, bbox[3] - bbox[1] + 8 * k), "white")
        ImageDraw.Draw(label).text((2 * k, 2 * k - bbox[1]), ylabel, fill=axis, font=font)
        label = label.rotate(90, expand=True)
        img.paste(label, (8 * k, int(top + ph / 2 - label.height / 2)))

    for i, (xs, ys) in enumerate(series.values()):
        colour = PALETTE[i % len(PALETTE)]
        run: list[tuple[float, float]] = []
        for x, y in zip(xs, ys, strict=True):
            if _finite(y):
                run.append((px(float(x)), py(float(y))))  # type: ignore[arg-type]
                continue
            if len(run) > 1:
                draw.line(run, fill=colour, width=2 * k, joint="curve")
            elif len(run) == 1:
                draw.ellipse([run[0][0] - 2 * k, run[0][1] - 2 * k, run[0][0] + 2 * k, run[0][1] + 2 * k], fill=colour)
            run = []
        if len(run) > 1:
            draw.line(run, fill=colour, width=2 * k, joint="curve")
        elif len(run) == 1:
            draw.ellipse([run[0][0] - 2 * k, run[0][1] - 2 * k, run[0][0] + 2 * k, run[0][1] + 2 * k], fill=colour)

    # legend: the corner inside the axes that hides no data (top right first), else below the plot
    if corner is None:
        bx, by = left + (pw - box_w) / 2, top + ph + bottom
    else:
        right_side, top_side = corner
        bx = left + pw - box_w - 8 * k if right_side else left + 8 * k
        by = top + 8 * k if top_side else top + ph - box_h - 8 * k
    draw.rectangle([bx, by, bx + box_w, by + box_h], fill="white", outline=(160, 160, 160), width=k)
    for i, label in enumerate(labels):
        colour = PALETTE[i % len(PALETTE)]
        cy = by + 5 * k + line_h * i + line_h / 2
        draw.line([(bx + 8 * k, cy), (bx + 30 * k, cy)], fill=colour, width=3 * k)
        draw.text((bx + 36 * k, cy), label, fill=axis, font=small, anchor="lm")

    if k > 1:
        img = img.resize(size, Image.Resampling.LANCZOS)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, format="PNG")
    return out
