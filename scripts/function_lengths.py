#!/usr/bin/env python3
"""Lists C++ function bodies longer than a limit (default 80 lines), the
longest first: `scripts/function_lengths.py [--limit N] DIR...`. A body is a
brace block opened at the end of a line that starts at namespace or class
depth and looks like a definition (a ')' before the '{', or a lambda-free
constructor initialiser list); comments and strings are blanked first. A
heuristic for reviews, not a parser: exits 1 when a body is over the limit."""
import argparse
import os
import re
import sys

SOURCE = (".cc", ".h", ".cu")


def blank_comments_and_strings(text):
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def functions(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = blank_comments_and_strings(f.read())
    lines = text.split("\n")
    scopes = []  # (kind, start line) of each open brace
    for number, line in enumerate(lines, 1):
        for i, ch in enumerate(line):
            if ch == "{":
                head = " ".join(l.strip() for l in lines[max(0, number - 4):number - 1]) + " " + line[:i]
                head = head.strip()
                outer = all(kind in ("namespace", "class") for kind, _, _ in scopes)
                if re.search(r"\b(namespace)\b[^;{}]*$", head):
                    kind = "namespace"
                elif re.search(r"\b(class|struct|union|enum)\b[^;(){}]*$", head):
                    kind = "class"
                elif outer and re.search(r"\)\s*(const|override|final|noexcept|mutable|->[^{;]*|\s)*$", head) \
                        and not re.search(r"\b(if|for|while|switch|catch)\s*\(", line[:i]):
                    kind = "function"
                elif outer and re.search(r"\)\s*:\s*[^;]*$", head):
                    kind = "function"  # a constructor with an initialiser list
                else:
                    kind = "block"
                name = re.findall(r"([~\w:]+)\s*\(", head)
                scopes.append((kind, number, name[0] if name else "?"))
            elif ch == "}" and scopes:
                kind, start, name = scopes.pop()
                if kind == "function":
                    yield name, start, number - start + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("dirs", nargs="+")
    options = parser.parse_args()
    found = []
    for top in options.dirs:
        for root, _, files in os.walk(top):
            for name in files:
                if name.endswith(SOURCE):
                    path = os.path.join(root, name)
                    found += [(length, path, start, fn) for fn, start, length in functions(path)
                              if length > options.limit]
    for length, path, start, fn in sorted(found, reverse=True):
        print(f"{length:5d}  {path}:{start}  {fn}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
