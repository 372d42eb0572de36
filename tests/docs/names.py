#!/usr/bin/env python3
# isle — MIT licensed.
"""Docs drift: every isle_* / isle__* identifier that the docs, the README
or a header's comments name must still exist in the code.

    names.py SOURCE_DIR

Known names are the identifiers of the code itself: C and C++ sources and
headers with their comments removed (string literals stay: a profile's
JSON keys are names too), and the CMake files (for target names). Named ones are every isle_* or isle__* word in README.md,
CHANGELOG.md's Unreleased part is history and is skipped, docs/**/*.md
(docs/decisions/ too: a record cites what existed when it was written, so
it is skipped), and the comments of every header. A name written as a
pattern (isle_tcp_*, isle_ctx_...) is skipped. Exit 0 when every named
identifier is known, 1 with the list of the others (file:line name).
"""
import os
import re
import sys

WORD = re.compile(r"\bisle_{1,2}[A-Za-z0-9_]*[A-Za-z0-9]\b(?![*]|\.\.\.)")
CODE_DIRS = ["heap", "mailbox", "actor", "io", "include", "samples", "bench",
             "tools", "tests", "fuzz"]
C_EXT = (".c", ".h", ".cpp", ".hpp", ".cc")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def files(root, dirs, exts):
    for d in dirs:
        for base, subdirs, names in os.walk(os.path.join(root, d)):
            subdirs[:] = [s for s in subdirs if s not in ("build", ".git")]
            for n in names:
                if n.endswith(exts):
                    yield os.path.join(base, n)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    known = set()
    for p in files(root, CODE_DIRS, C_EXT):
        known.update(WORD.findall(COMMENT.sub(" ", read(p))))
    cmake = [os.path.join(root, "CMakeLists.txt")]
    cmake += list(files(root, CODE_DIRS, ("CMakeLists.txt", ".cmake")))
    for p in cmake:
        known.update(WORD.findall(read(p)))

    named = []  # (path, line, name)

    def scan(path, text):
        for i, line in enumerate(text.split("\n"), 1):
            for w in WORD.findall(line):
                named.append((os.path.relpath(path, root), i, w))

    scan(os.path.join(root, "README.md"), read(os.path.join(root, "README.md")))
    for base, subdirs, names in os.walk(os.path.join(root, "docs")):
        subdirs[:] = [s for s in subdirs if s != "decisions"]
        for n in names:
            if n.endswith(".md"):
                scan(os.path.join(base, n), read(os.path.join(base, n)))
    for p in files(root, CODE_DIRS, (".h",)):
        text = read(p)
        # Comments only, at their lines (code blanked out).
        out = []
        pos = 0
        for m in COMMENT.finditer(text):
            out.append(re.sub(r"[^\n]", " ", text[pos:m.start()]))
            out.append(m.group(0))
            pos = m.end()
        out.append(re.sub(r"[^\n]", " ", text[pos:]))
        scan(p, "".join(out))

    missing = [(p, i, w) for p, i, w in named if w not in known]
    for p, i, w in missing:
        print("%s:%d: %s names %s, which the code does not have" % (p, i, p, w))
    if missing:
        print("docs_names: %d stale name(s)" % len(missing))
        return 1
    print("docs_names: %d names in docs and header comments, all in the code"
          % len(named))
    return 0


if __name__ == "__main__":
    sys.exit(main())
