#!/usr/bin/env python3
"""Every public entry point of weft is shown in a compiled sample.

Lists the names the public headers declare (include/weft, without detail/,
and greenback/include) with Universal Ctags: namespace-level classes,
functions, variables, enums and aliases, and the public member functions
of namespace-level classes. Each must appear as an identifier in the code
of some sample (the samples ctest builds and runs, given on the command
line, else samples/*.cpp; comments and string literals removed).
The check is by name: a member function shown on one class also counts
for a member of the same name on another class.

Usage: entry_points_test.py <source root> [ctags [sample.cpp ...]]
Prints the names no sample uses and exits 1 if there are any; exits 77
(skipped) when Universal Ctags is not installed.
"""
import glob
import json
import os
import re
import subprocess
import sys

# The protocols the language calls, not the user: coroutine promises and
# awaiters, iterators, Asio's customisation points.
PROTOCOL = {
    "await_ready", "await_suspend", "await_resume", "promise_type", "get_return_object",
    "initial_suspend", "final_suspend", "return_value", "return_void", "yield_value",
    "unhandled_exception", "await_transform", "begin", "end", "swap",
}


def public_names(root, ctags):
    headers = sorted(
        h for h in glob.glob(f"{root}/include/weft/**/*.hpp", recursive=True)
        + glob.glob(f"{root}/greenback/include/**/*.hpp", recursive=True)
        if "/detail/" not in h)
    out = subprocess.run(
        [ctags, "--output-format=json", "--language-force=C++", "--kinds-C++=+p-m-l-z-L-A-N-U-e",
         "--fields=+aKsSZ", "-o", "-"] + headers, check=True, capture_output=True, text=True).stdout
    tags = [t for t in map(json.loads, out.splitlines()) if t.get("_type") == "tag"]
    classes = {(f"{t['scope']}::" if t.get("scope") else "") + t["name"]
               for t in tags if t["kind"] in ("class", "struct", "union")}
    names = {}
    for t in tags:
        name, kind, scope = t["name"], t["kind"], t.get("scope", "")
        scope_kind = t.get("scopeKind", "namespace")
        parts = scope.split("::") if scope else []
        if kind in ("namespace", "macro") or "detail" in parts or name == "detail":
            continue
        if parts[:1] not in (["weft"], ["greenback"]) or "__anon" in scope:
            continue
        if t.get("access") in ("private", "protected") or name.startswith(("operator", "~", "_")):
            continue
        if name in PROTOCOL or (parts and parts[-1] == name):  # a constructor
            continue
        if scope_kind in ("class", "struct", "union"):
            outer = "::".join(parts[:-1])
            if outer in classes or kind == "typedef":  # nested types' members; member aliases
                continue
        elif scope_kind != "namespace":  # declared inside a function
            continue
        names.setdefault(name, set()).add(f"{os.path.relpath(t['path'], root)}: {scope}::{name}")
    return names


def code_words(path):
    text = open(path, encoding="utf-8").read()
    # Comments and string and character literals (raw strings are not used in the samples).
    text = re.sub(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', " ", text, flags=re.S)
    return set(re.findall(r"[A-Za-z_]\w*", text))


def main():
    root = sys.argv[1]
    ctags = sys.argv[2] if len(sys.argv) > 2 else "ctags"
    try:
        version = subprocess.run([ctags, "--version"], capture_output=True, text=True).stdout
    except OSError:
        version = ""
    if "Universal Ctags" not in version:
        print(f"SKIPPED: {ctags} is not Universal Ctags (Debian: apt-get install universal-ctags)")
        return 77
    names = public_names(root, ctags)
    used = set()
    for sample in sys.argv[3:] or glob.glob(f"{root}/samples/*.cpp"):
        used |= code_words(sample)
    missing = sorted(where for name, places in names.items() if name not in used for where in places)
    print(f"{len(names)} public names, {len(names) - len({m.rsplit('::', 1)[1] for m in missing})} shown in the samples")
    for where in missing:
        print(f"not in any sample: {where}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
