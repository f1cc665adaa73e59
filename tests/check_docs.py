#!/usr/bin/env python3
"""check_docs.py — the docs keep up with the binary.

Usage: check_docs.py MANYLM_BINARY PROJECT_SOURCE_DIR

Runs `manylm --help`, every subcommand's `--help` and every bench sub-subcommand's `--help`, takes the
`--long` option names from the option column of each, and fails naming every one that docs/USAGE.md does
not mention literally (as `--name`). It also fails for any line over 120 characters in README.md,
docs/USAGE.md and docs/RESULTS.md (naming file:line), and for a README.md over 130 lines.
Not a spelling or link checker.
"""
import re
import subprocess
import sys
from pathlib import Path

MAX_LINE = 120
MAX_README_LINES = 130
LONG = re.compile(r"^--[A-Za-z0-9][A-Za-z0-9_-]*$")


def help_text(binary, words):
    r = subprocess.run([binary, *words, "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"check_docs: `{' '.join(['manylm', *words, '--help'])}` exited {r.returncode}:\n"
                         f"{r.stdout}{r.stderr}")
    return r.stdout


def options(text):
    """The --long names in the option column of a CLI11 help text (lines that start with '-')."""
    names = set()
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("-"):
            continue
        for name in s.split()[0].split(","):
            name = name.split("=")[0]
            if LONG.match(name):
                names.add(name)
    return names


def subcommands(text):
    """The names listed under a CLI11 help text's 'Subcommands:' heading."""
    names, inside = [], False
    for line in text.splitlines():
        if line.strip().upper().startswith("SUBCOMMANDS"):
            inside = True
            continue
        if inside:
            if not line.strip():
                continue
            if not line.startswith(" "):
                break
            names.append(line.split()[0])
    return names


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    binary, root = sys.argv[1], Path(sys.argv[2])
    failures = []

    # Every option of every command, bench's sub-subcommands included.
    found = {}  # option -> the commands whose --help lists it
    queue = [[]]
    while queue:
        words = queue.pop(0)
        text = help_text(binary, words)
        for o in options(text):
            found.setdefault(o, []).append(" ".join(["manylm", *words]))
        queue.extend([*words, sub] for sub in subcommands(text))
    if len(found) < 10:
        failures.append(f"only {len(found)} options found in the help texts: is the parser out of date?")
    usage = (root / "docs/USAGE.md").read_text(encoding="utf-8")
    for o in sorted(found):
        if not re.search(re.escape(o) + r"(?![A-Za-z0-9_-])", usage):
            failures.append(f"docs/USAGE.md: option {o} (of {', '.join(found[o])}) is not documented")

    # Line lengths and the README's length.
    for rel in ["README.md", "docs/USAGE.md", "docs/RESULTS.md"]:
        for n, line in enumerate((root / rel).read_text(encoding="utf-8").splitlines(), 1):
            if len(line) > MAX_LINE:
                failures.append(f"{rel}:{n}: line of {len(line)} characters (at most {MAX_LINE})")
    readme_lines = len((root / "README.md").read_text(encoding="utf-8").splitlines())
    if readme_lines > MAX_README_LINES:
        failures.append(f"README.md: {readme_lines} lines (at most {MAX_README_LINES}; details go to docs/)")

    for f in failures:
        print(f)
    if failures:
        return 1
    print(f"check_docs: {len(found)} options documented; README.md {readme_lines} lines; no line over {MAX_LINE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
