#!/usr/bin/env python3
"""Independent FHIR structure check with fhir.resources (pydantic models of FHIR R4B, which for
Bundle, Patient, Immunization, ImmunizationRecommendation, Composition, Organization and
Practitioner has the same elements as R4). Used by divoc-fhir's interop test.

usage: validate_fhir.py BUNDLE_JSON...

Prints one JSON line per file: {"file": ..., "ok": true, "resources": ["Patient", ...]} or
{"file": ..., "ok": false, "error": "..."}. A missing fhir.resources is an ImportError
(non-zero exit), never a silent pass.
"""
import json
import sys

from fhir.resources.R4B.bundle import Bundle  # noqa: E402  (fail loudly when missing)


def first_difference(a, b, where="$"):
    """Path and values of the first place two JSON values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s: %r vs %r" % (where, k, a.get(k), b.get(k))
            d = first_difference(a[k], b[k], "%s.%s" % (where, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: %d vs %d items" % (where, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    if a == b or same_instant(a, b):
        return None
    return "%s: %r vs %r" % (where, a, b)


def same_instant(a, b):
    """fhir.resources re-prints date-times (drops zero milliseconds, Z vs +00:00): equal
    instants with a time part are the same value."""
    import datetime
    if not (isinstance(a, str) and isinstance(b, str) and "T" in a and "T" in b):
        return False
    try:
        return datetime.datetime.fromisoformat(a) == datetime.datetime.fromisoformat(b)
    except ValueError:
        return False


def check(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    bundle = Bundle.model_validate(data)
    kinds = [e.resource.get_resource_type() for e in (bundle.entry or [])]
    # Round trip through the models: nothing we wrote may be dropped as unknown.
    again = json.loads(bundle.model_dump_json(exclude_none=True))
    diff = first_difference(data, again)
    if diff:
        raise ValueError("fhir.resources does not reproduce the bundle (unknown or mistyped "
                         "element): ours vs theirs at " + diff)
    return kinds


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for path in sys.argv[1:]:
        try:
            print(json.dumps({"file": path, "ok": True, "resources": check(path)}))
        except Exception as e:  # every failure is a verdict for this file
            print(json.dumps({"file": path, "ok": False, "error": "%s: %s" % (type(e).__name__, e)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
