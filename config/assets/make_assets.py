"""Draws the sample issuer logo and signature PNGs (no dependencies; run from this directory).

The images are our own drawings, so they can ship with the project. Re-run after editing.
"""
import math
import struct
import zlib


def write_png(path, width, height, pixel):
    """pixel(x, y) -> (r, g, b, a); writes an 8-bit RGBA PNG."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def logo(x, y, size=128):
    """A blue roundel with a white cross and a green ring."""
    cx = cy = size / 2 - 0.5
    r = math.hypot(x - cx, y - cy)
    if r > 62:
        return (0, 0, 0, 0)
    if r > 56:
        return (34, 139, 74, 255)
    arm = abs(x - cx) < 9 and abs(y - cy) < 34 or abs(y - cy) < 9 and abs(x - cx) < 34
    return (255, 255, 255, 255) if arm else (31, 60, 136, 255)


def signature(x, y, width=260, height=88):
    """A dark blue handwritten-looking stroke on a transparent background."""
    t = x / width
    curve = height / 2 + 22 * math.sin(t * 9.0) * (1 - t) + 10 * math.sin(t * 23.0)
    loop = height / 2 - 14 * math.cos(t * 5.0)
    for c in (curve, loop if 0.1 < t < 0.45 else None):
        if c is not None and abs(y - c) < 2.2:
            return (20, 30, 90, 255)
    if height - 12 < y < height - 10 and 10 < x < width - 10:
        return (20, 30, 90, 160)
    return (0, 0, 0, 0)


if __name__ == "__main__":
    write_png("logo.png", 128, 128, logo)
    write_png("signature.png", 260, 88, signature)
