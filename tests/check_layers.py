#!/usr/bin/env python3
"""check_layers.py — the layering of src/ as a test: every `#include "X/..."` in src/<layer>/ must name the
layer itself or one it may use. The table comes from CMakeLists.txt's MANYLM_LAYERS (passed as arguments,
"layer:dep,dep"), the same one that gives each layer's library its dependencies; all layers share the `src`
include root, so an upward include would otherwise compile. Not a C++ parser: it reads include lines.

Usage: check_layers.py SRC_DIR core: data:core ... ; prints each violation and exits 1 if there is one.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/[^"]+"')


def main(argv):
    if len(argv) < 3:
        print("usage: check_layers.py SRC_DIR layer:deps ...", file=sys.stderr)
        return 2
    src = pathlib.Path(argv[1])
    allowed = {}
    for entry in argv[2:]:
        layer, _, deps = entry.partition(":")
        allowed[layer] = {layer} | {d for d in deps.split(",") if d}
    bad, files = [], 0
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cc") or not path.is_file():
            continue
        layer = path.relative_to(src).parts[0]
        if layer not in allowed:
            bad.append(f"{path}: folder '{layer}' is not a layer in MANYLM_LAYERS")
            continue
        files += 1
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) in allowed and m.group(1) not in allowed[layer]:
                bad.append(f"{path}:{n}: {layer}/ includes {m.group(1)}/ ({line.strip()}); "
                           f"{layer} may use only {', '.join(sorted(allowed[layer]))}")
    for b in bad:
        print(b)
    print(f"check_layers: {files} files in {len(allowed)} layers, {len(bad)} upward or unknown includes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
