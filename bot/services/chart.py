"""A bar chart as a PNG, drawn with zlib and struct alone (no plotting library to install).

Labels use a 3x5 pixel font with digits and a few signs, which is all a chart of counts per week
needs ("12", "07.04"); words go in the message's caption, where they can be translated.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

RGB = tuple[int, int, int]

WHITE: RGB = (255, 255, 255)
BAR: RGB = (46, 104, 168)
AXIS: RGB = (120, 120, 120)
INK: RGB = (40, 40, 40)
GRID: RGB = (232, 232, 232)

# 3x5 glyphs, one string of 15 bits (rows top to bottom, "1" = ink) per character.
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "/": "001001010100100", ":": "000010000010000", " ": "000000000000000",
}


class Canvas:
    """An RGB image in memory that can fill rectangles, draw small text and become a PNG."""

    def __init__(self, width: int, height: int, background: RGB = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def fill(self, x0: int, y0: int, x1: int, y1: int, color: RGB) -> None:
        """Fill the rectangle [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, x0), min(self.width, x1)
        y0, y1 = max(0, y0), min(self.height, y1)
        if x0 >= x1 or y0 >= y1:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: RGB = INK, scale: int = 2) -> None:
        """Draw text with its top-left corner at (x, y); unknown characters are skipped."""
        for i, ch in enumerate(text):
            glyph = _FONT.get(ch)
            if glyph is None:
                continue
            left = x + i * 4 * scale
            for bit, on in enumerate(glyph):
                if on == "1":
                    gx, gy = left + (bit % 3) * scale, y + (bit // 3) * scale
                    self.fill(gx, gy, gx + scale, gy + scale, color)

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return max(0, len(text) * 4 * scale - scale)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride])
                       for y in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bar_chart_png(values: Sequence[int], labels: Sequence[str], *, width: int = 720,
                  height: int = 360) -> bytes:
    """Bars for `values` with each value above its bar and `labels` below (digits and .-/:)."""
    if len(values) != len(labels):
        raise ValueError("one label per value")
    canvas = Canvas(width, height)
    left, right, top, bottom = 20, 20, 34, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    peak = max([*values, 1])
    for i in range(1, 5):  # light grid lines at quarters of the highest bar
        y = base - plot_h * i // 4
        canvas.fill(left, y, left + plot_w, y + 1, GRID)
    n = max(1, len(values))
    slot = plot_w / n
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        centre = int(left + slot * (i + 0.5))
        bar_w = max(2, int(slot * 0.7))
        bar_h = round(plot_h * value / peak)
        canvas.fill(centre - bar_w // 2, base - bar_h, centre - bar_w // 2 + bar_w, base, BAR)
        number = str(value)
        canvas.text(centre - canvas.text_width(number) // 2, base - bar_h - 14, number)
        label_scale = 2 if canvas.text_width(label, 2) <= slot - 2 else 1
        canvas.text(centre - canvas.text_width(label, label_scale) // 2, base + 10, label,
                    scale=label_scale)
    canvas.fill(left, base, left + plot_w, base + 2, AXIS)
    return canvas.png()
