#!/usr/bin/env python3
"""Independent checks of QR payloads that a QR reader (zbarimg) returned.

  qr_payloads.py unzip FILE     FILE is a DIVOC QR payload: must be a ZIP holding exactly one
                                DEFLATE entry certificate.json; its content goes to stdout.
  qr_payloads.py shc-jws FILE   FILE holds a SMART Health Card QR text "shc:/<digits>"; prints the
                                JWS (each digit pair + 45 is one character, per the SHC spec).
  qr_payloads.py svg-to-png SVG PNG
                                Rasterizes a QR SVG (white background, black <path> fills made of
                                absolute/relative M, h, v, z commands, viewBox in modules) at 4
                                pixels per unit into an 8-bit grayscale PNG written with zlib, so
                                zbarimg can read what the SVG draws.
"""
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zipfile
import zlib


def unzip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names == ["certificate.json"], names
        info = z.getinfo("certificate.json")
        assert info.compress_type == zipfile.ZIP_DEFLATED, info.compress_type
        assert z.testzip() is None, "CRC mismatch"
        sys.stdout.buffer.write(z.read("certificate.json"))


def shc_jws(path):
    text = open(path, encoding="ascii").read()
    m = re.fullmatch(r"shc:/((?:[0-9]{2})+)", text)
    assert m, f"not a single-chunk shc:/ text: {text[:40]!r}"
    digits = m.group(1)
    sys.stdout.write("".join(chr(int(digits[i:i + 2]) + 45) for i in range(0, len(digits), 2)))


def svg_to_png(svg_path, png_path, scale=4):
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(svg_path).getroot()
    assert root.tag == ns + "svg", root.tag
    x0, y0, w, h = (int(v) for v in root.get("viewBox").split())
    assert (x0, y0) == (0, 0) and w == h, root.get("viewBox")
    dark = [[False] * w for _ in range(h)]
    paths = root.findall(ns + "path")
    assert len(paths) == 1, f"{len(paths)} paths"
    assert paths[0].get("fill") in ("#000", "#000000", "black"), paths[0].get("fill")
    tokens = re.findall(r"[MmHhVvZz]|-?[0-9]+", paths[0].get("d"))
    x = y = 0
    start = None
    polygon = []

    def fill(poly):
        # Every subpath must be an axis-aligned rectangle; fill the modules it covers.
        xs = [p[0] for p in poly]
        ys = [p[1] for p in poly]
        assert len(poly) == 4 and len(set(xs)) == 2 and len(set(ys)) == 2, poly
        for yy in range(min(ys), max(ys)):
            for xx in range(min(xs), max(xs)):
                assert not dark[yy][xx], f"module ({xx}, {yy}) painted twice"
                dark[yy][xx] = True

    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        i += 1
        if cmd in "Zz":
            fill(polygon)
            x, y = start
            polygon = []
            continue
        if cmd in "Mm":
            dx, dy = int(tokens[i]), int(tokens[i + 1])
            i += 2
            x, y = (dx, dy) if cmd == "M" else (x + dx, y + dy)
            start = (x, y)
            polygon = [(x, y)]
            continue
        v = int(tokens[i])
        i += 1
        if cmd == "H":
            x = v
        elif cmd == "h":
            x += v
        elif cmd == "V":
            y = v
        else:
            y += v
        if (x, y) != start:
            polygon.append((x, y))
    assert not polygon, "unclosed subpath"

    side = w * scale
    rows = bytearray()
    for yy in range(side):
        rows.append(0)
        rows.extend(0 if dark[yy // scale][xx // scale] else 255 for xx in range(side))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
    open(png_path, "wb").write(png)


if __name__ == "__main__":
    {"unzip": unzip, "shc-jws": shc_jws, "svg-to-png": svg_to_png}[sys.argv[1]](*sys.argv[2:])
