#!/usr/bin/env python3
"""Independent checks of QR payloads that a QR reader (zbarimg) returned.

  qr_payloads.py unzip FILE     FILE is a DIVOC QR payload: must be a ZIP holding exactly one
                                DEFLATE entry certificate.json; its content goes to stdout.
  qr_payloads.py shc-jws FILE   FILE holds a SMART Health Card QR text "shc:/<digits>"; prints the
                                JWS (each digit pair + 45 is one character, per the SHC spec).
"""
import re
import sys
import zipfile


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


if __name__ == "__main__":
    {"unzip": unzip, "shc-jws": shc_jws}[sys.argv[1]](sys.argv[2])
