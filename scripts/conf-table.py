#!/usr/bin/env python3
"""The configuration table of docs/user-guide.md, generated from src/base/conf_options.def.

  scripts/conf-table.py          rewrite the table in docs/user-guide.md
  scripts/conf-table.py --check  exit 1 (saying which rows differ) when the docs are stale

"used by" lists the parts of src/ (directories) whose C files name the option; an option no
code reads is "reserved" (accepted and checked, no effect yet)."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEF = os.path.join(ROOT, "src/base/conf_options.def")
DOC = os.path.join(ROOT, "docs/user-guide.md")
HEADER = "| option | type | default | bounds / values | description | used by |"

ENTRY = re.compile(
    r'EM_CONF_OPTION\(\s*"([^"]+)"\s*,\s*(\w+)\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,'
    r'\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*([\w|]+)\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)', re.S)


def bounds(lo, hi, allowed, flags):
    if allowed:
        return " \\| ".join(allowed.split("|"))
    if "SECRET" in flags:
        return "secret"
    excl = lo.startswith(">")
    lo = lo[1:] if excl else lo
    if lo and hi:
        return ("(" if excl else "[") + lo + ", " + hi + "]"
    if lo:
        return ("> " if excl else "≥ ") + lo
    if hi:
        return "≤ " + hi
    return ""


def readers():
    found = {}
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in files:
            if not f.endswith((".c", ".h")) or f == "conf_options.def":
                continue
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                text = fh.read()
            part = os.path.relpath(d, os.path.join(ROOT, "src")).split(os.sep)[0]
            for name in set(re.findall(r'"(ember\.[A-Za-z0-9_.]+)"', text)):
                found.setdefault(name, set()).add(part)
    return found


def table():
    with open(DEF, encoding="utf-8") as fh:
        text = fh.read()
    used = readers()
    rows = [HEADER, "|---|---|---|---|---|---|"]
    for name, typ, default, lo, hi, allowed, flags, doc in ENTRY.findall(text):
        by = ", ".join(sorted(used.get(name, ()))) or "reserved"
        rows.append("| `%s` | %s | `%s` | %s | %s | %s |" % (
            name, typ.lower(), default if default else '""', bounds(lo, hi, allowed, flags),
            doc.replace("|", "\\|").replace("`", ""), by))
    return rows


def main():
    with open(DOC, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    start = lines.index(HEADER)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    new = table()
    if "--check" in sys.argv:
        if lines[start:end] == new:
            return 0
        old = set(lines[start:end])
        for row in new:
            if row not in old:
                print("docs/user-guide.md: configuration table lacks or differs: " + row)
        for row in lines[start:end]:
            if row not in set(new):
                print("docs/user-guide.md: configuration table has a stale row: " + row)
        print("run scripts/conf-table.py to regenerate it")
        return 1
    lines[start:end] = new
    with open(DOC, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
