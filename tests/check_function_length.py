#!/usr/bin/env python3
"""check_function_length.py — no function in src/ longer than a screen (80 lines from the line that opens its
body to the line that closes it, both counted; lambdas count toward the function around them).

How it measures: comments and string/char literals are blanked, then braces are matched. A brace opens a
function body when every brace around it is a namespace, class, struct, union, enum or extern "C" scope and
the text before it (back to the previous `;`, `{` or `}`) has a `(` and is not an initializer (`= {`),
a control statement or a class head. Not a C++ parser: enough for manylm's style (the .clang-format).

Usage: check_function_length.py SRC_DIR [--limit N] [--list K]
  prints every function over the limit (and with --list the K longest) and exits 1 if there is one.
"""
import argparse
import pathlib
import re
import sys

SCOPE_HEAD = re.compile(r'\b(namespace|class|struct|union|enum)\b[^()]*$|extern\s+"C"\s*$')
CONTROL = re.compile(r'^\s*(if|for|while|switch|catch|do|else)\b')
NAME = re.compile(r'([~A-Za-z_][A-Za-z0-9_:<>~]*(?:operator\s*[^\s(]+)?)\s*\(')


def blank(text):
    """Comments, strings and chars replaced by spaces (newlines kept), raw strings included."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            d = text[i + 2:text.find("(", i)]
            j = text.find(")" + d + '"', i)
            j = n if j < 0 else j + len(d) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(n, j + 1)
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator 1'000
                out.append(c); i += 1; continue
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(path):
    text = blank(path.read_text(encoding="utf-8"))
    stack, found, last = [], [], 0  # stack: (kind, name, start line)
    line = 1
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == ";":
            last = i + 1
        elif c == "{":
            head = text[last:i].strip()
            head = re.sub(r"^\s*#.*$", "", head, flags=re.M).strip()
            in_scopes = all(k == "scope" for k, _, _ in stack)
            if SCOPE_HEAD.search(head.split(")")[-1] if ")" not in head else head.split("\n")[-1]) and "(" not in head:
                kind = "scope"
            elif in_scopes and "(" in head and not head.rstrip().endswith("=") and not CONTROL.match(head) \
                    and not re.search(r"=\s*$", head):
                kind = "function"
            else:
                kind = "block"
            m = NAME.search(head.replace("\n", " "))
            stack.append((kind, m.group(1) if m else head[:40], line))
            last = i + 1
        elif c == "}":
            if stack:
                kind, name, start = stack.pop()
                if kind == "function":
                    found.append((line - start + 1, name, start))
            last = i + 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--list", type=int, default=0)
    a = ap.parse_args()
    rows = []
    for path in sorted(pathlib.Path(a.src).rglob("*")):
        if path.suffix in (".h", ".cc") and path.is_file():
            rows += [(n, f"{path}:{start}", name) for n, name, start in functions(path)]
    rows.sort(reverse=True)
    over = [r for r in rows if r[0] > a.limit]
    for n, where, name in rows[:max(a.list, len(over))]:
        print(f"{n:5d} lines  {where}  {name}{'   <-- over the limit' if n > a.limit else ''}")
    print(f"check_function_length: {len(rows)} functions, longest {rows[0][0] if rows else 0} lines, "
          f"{len(over)} over {a.limit}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
