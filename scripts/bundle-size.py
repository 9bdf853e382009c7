#!/usr/bin/env python3
"""Prints the size of every file the browser downloads from the built site (raw, gzip -9,
brotli q11), so a bundle that grows shows up: `make bundle-size` runs it after a release
build. Brotli comes from PyPI's `brotli` package, installed for the user when missing."""

import gzip
import importlib
import os
import subprocess
import sys


def brotli_module():
    try:
        return importlib.import_module("brotli")
    except ModuleNotFoundError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--user", "brotli"],
            check=True,
        )
        importlib.invalidate_caches()
        import site

        sys.path.append(site.getusersitepackages())
        return importlib.import_module("brotli")


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else "target/site/pkg"
    if not os.path.isdir(root):
        print(f"{root}: no such directory (run `cargo leptos build --release` first)", file=sys.stderr)
        return 1
    brotli = brotli_module()
    rows = []
    for directory, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(directory, name)
            data = open(path, "rb").read()
            rows.append(
                (
                    os.path.relpath(path, root),
                    len(data),
                    len(gzip.compress(data, 9)),
                    len(brotli.compress(data, quality=11)),
                )
            )
    rows.sort(key=lambda row: -row[1])
    print(f"{'file':40} {'raw':>12} {'gzip':>12} {'brotli':>12}")
    for name, raw, gz, br in rows:
        print(f"{name:40} {raw:>12,} {gz:>12,} {br:>12,}")
    total = [sum(row[i] for row in rows) for i in (1, 2, 3)]
    print(f"{'total':40} {total[0]:>12,} {total[1]:>12,} {total[2]:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
