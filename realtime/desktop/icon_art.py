"""swapcam's icon, drawn here as SVG: a camera lens (amber ring on a dark tile) holding a
face split down the middle, one half light and one half amber (a swapped face), with
two arrows turning round it. ``python -m realtime.desktop.icon_art`` writes
``assets/swapcam.svg`` and the PNG sizes (rendered by Qt's SVG renderer)."""

from __future__ import annotations

import math
from pathlib import Path

from realtime.desktop.icons import ICONS, SIZES

AMBER, DARK, LIGHT, INK = "#ffb300", "#25252a", "#f2efe8", "#1c1c1f"


def _arc_arrow(cx: float, cy: float, r: float, start: float, end: float) -> str:
    """An arc from ``start`` to ``end`` degrees (clockwise on screen) with a head at its end."""
    def point(angle: float, radius: float = r) -> tuple[float, float]:
        a = math.radians(angle)
        return cx + radius * math.cos(a), cy + radius * math.sin(a)

    x0, y0 = point(start)
    x1, y1 = point(end)
    arc = (f'<path d="M {x0:.1f} {y0:.1f} A {r} {r} 0 0 1 {x1:.1f} {y1:.1f}" fill="none" '
           f'stroke="{AMBER}" stroke-width="22" stroke-linecap="round"/>')
    # the head: a triangle at the end, pointing along the direction of travel
    tip = point(end + 14)
    left = point(end - 4, r + 30)
    right = point(end - 4, r - 30)
    head = (f'<polygon points="{tip[0]:.1f},{tip[1]:.1f} {left[0]:.1f},{left[1]:.1f} '
            f'{right[0]:.1f},{right[1]:.1f}" fill="{AMBER}"/>')
    return arc + head


def icon_svg() -> str:
    """The icon as SVG text (512×512 view box)."""
    # the face's halves as two half-ellipse paths (Qt's SVG Tiny renderer has no clipPath)
    def half(sweep: int) -> str:
        return f"M 256 150 A 92 112 0 0 {sweep} 256 374 Z"

    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" '
        'viewBox="0 0 512 512">',
        f'<rect x="16" y="16" width="480" height="480" rx="104" fill="{DARK}"/>',
        f'<circle cx="256" cy="262" r="150" fill="{INK}" stroke="{AMBER}" stroke-width="18"/>',
        f'<path d="{half(0)}" fill="{LIGHT}"/>',
        f'<path d="{half(1)}" fill="{AMBER}"/>',
        f'<circle cx="222" cy="240" r="13" fill="{INK}"/>',
        f'<circle cx="290" cy="240" r="13" fill="{INK}"/>',
        f'<path d="M 212 306 Q 256 340 300 306" fill="none" stroke="{INK}" '
        'stroke-width="12" stroke-linecap="round"/>',
        _arc_arrow(256, 262, 205, 200, 250),
        _arc_arrow(256, 262, 205, 20, 70),
        f'<circle cx="410" cy="96" r="22" fill="{AMBER}"/>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def render_png(svg: str, size: int) -> bytes:
    """``svg`` rendered at ``size``×``size`` (PNG bytes, transparent corners)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(QByteArray(svg.encode("utf-8"))).render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stubs say bytes; Qt wants str
    return bytes(buffer.data().data())


def write_icons(folder: Path = ICONS) -> list[Path]:
    """Write ``swapcam.svg`` and ``swapcam-<N>.png`` for each size in ``SIZES``."""
    folder.mkdir(parents=True, exist_ok=True)
    svg = icon_svg()
    written = [folder / "swapcam.svg"]
    written[0].write_text(svg, encoding="utf-8")
    for size in SIZES:
        path = folder / f"swapcam-{size}.png"
        path.write_bytes(render_png(svg, size))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_icons():
        print(path)
