#!/usr/bin/env python3
"""Independent check of divoc-credential's canonicalization against PyLD.

Reads documents and our canonical N-Quads written by the Rust test `pyld` (tests/pyld.rs),
canonicalizes every document with PyLD's URDNA2015 using the same context documents (served by a
local document loader: nothing is fetched), and compares line by line.

Requires PyLD 2.0.4 (`pip install pyld==2.0.4`); this script installs nothing itself.

usage: pyld_check.py CONTEXTS_JSON DOCS_JSONL OURS_JSONL
  CONTEXTS_JSON  {"<url>": <context document>, ...}
  DOCS_JSONL     one JSON-LD document per line
  OURS_JSONL     one JSON string per line: our canonical N-Quads for the same document
exit status: 0 all equal, 1 mismatches, 2 usage / PyLD missing
"""
import json
import sys

try:
    from pyld import jsonld
except ImportError:
    print("PyLD is not installed: pip install pyld==2.0.4", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        contexts = json.load(f)

    def loader(url, options=None):
        if url not in contexts:
            raise jsonld.JsonLdError("context not served offline: " + url, "jsonld.LoadDocumentError")
        return {"contextUrl": None, "documentUrl": url, "document": contexts[url]}

    jsonld.set_document_loader(loader)
    compared = mismatches = 0
    with open(argv[2], encoding="utf-8") as docs, open(argv[3], encoding="utf-8") as ours:
        for lineno, (doc_line, our_line) in enumerate(zip(docs, ours), start=1):
            doc = json.loads(doc_line)
            expected = json.loads(our_line)
            theirs = jsonld.normalize(doc, {"algorithm": "URDNA2015", "format": "application/n-quads"})
            compared += 1
            if theirs != expected:
                mismatches += 1
                if mismatches <= 5:
                    a, b = expected.splitlines(), theirs.splitlines()
                    print(f"document {lineno}: MISMATCH", file=sys.stderr)
                    for i in range(max(len(a), len(b))):
                        x = a[i] if i < len(a) else "<none>"
                        y = b[i] if i < len(b) else "<none>"
                        if x != y:
                            print(f"  line {i + 1}\n    ours: {x!r}\n    pyld: {y!r}", file=sys.stderr)
                            break
    print(f"pyld {jsonld.__name__}: compared {compared} documents, {mismatches} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
