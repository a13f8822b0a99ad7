#!/usr/bin/env python3
"""Compares two audit or replay outputs (JSON, or CSV by the file name) and passes when
they are equal but for numbers within a relative difference of each other: every text,
every count and every structure must be equal. Prints each field that moved and its
largest relative difference, and each difference beyond the limit.

    python3 benches/same_numbers.py RELATIVE OLD NEW      # e.g. 1e-9

Used by identical.sh and paired.sh (their RELATIVE setting) for a change of how the
adjusted model is fitted, whose full-precision estimates move in their last digits.
"""
import csv
import json
import sys

if len(sys.argv) != 4:
    sys.exit(__doc__)
limit, old_path, new_path = float(sys.argv[1]), sys.argv[2], sys.argv[3]
moved, problems = {}, []


def compare(a, b, where):
    """Records where `a` and `b` differ beyond the limit, and where numbers moved."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            problems.append(f"{where}: keys differ")
            return
        for key in a:
            compare(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            problems.append(f"{where}: lengths differ")
            return
        for x, y in zip(a, b):
            compare(x, y, f"{where}[]")
    elif a != b:
        # Only two floats may differ; a count, a text or a type may not.
        if not (isinstance(a, float) and isinstance(b, float)):
            problems.append(f"{where}: {a!r} against {b!r}")
            return
        relative = abs(a - b) / max(abs(a), abs(b))
        if relative > limit:
            problems.append(f"{where}: {a!r} against {b!r}")
            return
        moved[where] = max(moved.get(where, 0.0), relative)


def cell(text):
    """A CSV cell as JSON would have it: an integer, a float, or the text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


if old_path.endswith(".json"):
    with open(old_path) as old, open(new_path) as new:
        compare(json.load(old), json.load(new), "")
else:
    with open(old_path, newline="") as old, open(new_path, newline="") as new:
        old_rows, new_rows = list(csv.reader(old)), list(csv.reader(new))
    if len(old_rows) != len(new_rows):
        problems.append("rows differ")
    header = old_rows[0] if old_rows else []
    for old_row, new_row in zip(old_rows, new_rows):
        if len(old_row) != len(new_row):
            problems.append(f"{old_row[:1]}: cells differ")
            continue
        for name, a, b in zip(header, old_row, new_row):
            compare(cell(a), cell(b), f"{old_row[0]}.{name}")

for problem in problems[:20]:
    print("   ", problem)
for where, relative in sorted(moved.items(), key=lambda m: -m[1]):
    print(f"    {where}: largest relative difference {relative:.1e}")
sys.exit(1 if problems else 0)
