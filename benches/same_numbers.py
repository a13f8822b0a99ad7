#!/usr/bin/env python3
"""Compares two audit or replay outputs (JSON, or CSV by the file name) and passes when
they are equal but for numbers within a relative difference of each other: every text,
every count and every structure must be equal. Prints each field that moved and its
largest relative difference, and each difference beyond the limit.

    python3 benches/same_numbers.py RELATIVE OLD NEW      # e.g. 1e-9

Used by identical.sh and paired.sh (their RELATIVE setting) for a change of how the
adjusted model is fitted, whose full-precision estimates move in their last digits.
"""
import csv, json, sys
if len(sys.argv) != 4:
    sys.exit(__doc__)
limit, old_path, new_path = float(sys.argv[1]), sys.argv[2], sys.argv[3]
moved, problems = {}, []
def number(v):
    if isinstance(v, bool): return None
    if isinstance(v, (int, float)): return float(v)
    try: return float(v)
    except (TypeError, ValueError): return None
def compare(a, b, where):
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys(): problems.append(f"{where}: keys differ"); return
        for k in a: compare(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b): problems.append(f"{where}: lengths differ"); return
        for x, y in zip(a, b): compare(x, y, f"{where}[]")
    elif a != b:
        x, y = number(a), number(b)
        if x is None or y is None or isinstance(a, int) and isinstance(b, int):
            problems.append(f"{where}: {a!r} against {b!r}"); return
        relative = abs(x - y) / max(abs(x), abs(y))
        if relative > limit: problems.append(f"{where}: {a!r} against {b!r}"); return
        moved[where] = max(moved.get(where, 0.0), relative)
if old_path.endswith(".json"):
    compare(json.load(open(old_path)), json.load(open(new_path)), "")
else:
    old_rows, new_rows = list(csv.reader(open(old_path))), list(csv.reader(open(new_path)))
    if len(old_rows) != len(new_rows): problems.append("rows differ")
    header = old_rows[0] if old_rows else []
    for old_row, new_row in zip(old_rows, new_rows):
        if len(old_row) != len(new_row): problems.append(f"{old_row[:1]}: cells differ"); continue
        for name, a, b in zip(header, old_row, new_row):
            if a != b and not (a.lstrip("-").isdigit() and b.lstrip("-").isdigit()):
                compare(float(a) if number(a) is not None else a, float(b) if number(b) is not None else b, f"{old_row[0]}.{name}")
            elif a != b:
                problems.append(f"{old_row[0]}.{name}: {a} against {b}")
for p in problems[:20]: print("   ", p)
for where, relative in sorted(moved.items(), key=lambda m: -m[1]):
    print(f"    {where}: largest relative difference {relative:.1e}")
sys.exit(1 if problems else 0)
