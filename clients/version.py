#!/usr/bin/env python3
"""The version of the thin clients, derived from the release tag.

    python3 clients/version.py              # prints "<python version> <maven version>"
    python3 clients/version.py --write      # stamps both packages with them
    python3 clients/version.py --tag v1.2.3 # as if HEAD were tagged v1.2.3

A tag vX.Y.Z on HEAD gives X.Y.Z to both packages (PyPI and Maven Central);
a pre-release tag vX.Y.Z-rc.N gives X.Y.ZrcN (PEP 440) and X.Y.Z-rc.N. An
untagged checkout gives 0.0.0.dev0 (a PEP 440 development release) and
0.0.0-SNAPSHOT (Maven's development version), which neither registry takes
as a release. --write stamps clients/python/src/shardseq/_version.py and the
project <version> of clients/java/pom.xml; release jobs run it before
building the packages. Standard library only, Python 3.9+.
"""

import argparse
import pathlib
import re
import subprocess
import sys
from typing import Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent
PY_VERSION_FILE = ROOT / "python" / "src" / "shardseq" / "_version.py"
POM = ROOT / "java" / "pom.xml"

DEV = ("0.0.0.dev0", "0.0.0-SNAPSHOT")
_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta|rc)\.(\d+))?$")
_PEP440_PRE = {"alpha": "a", "beta": "b", "rc": "rc"}


def versions(tag: Optional[str]) -> Tuple[str, str]:
    """(python, maven) versions for a release tag, or the development ones
    for None or a tag that is not a release tag."""
    m = _TAG.match(tag or "")
    if not m:
        return DEV
    base = ".".join(m.group(1, 2, 3))
    if m.group(4) is None:
        return base, base
    return f"{base}{_PEP440_PRE[m.group(4)]}{m.group(5)}", f"{base}-{m.group(4)}.{m.group(5)}"


def head_tag() -> Optional[str]:
    try:
        out = subprocess.run(["git", "describe", "--tags", "--exact-match", "--match", "v[0-9]*"],
                             cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def write(py: str, mvn: str) -> None:
    text = PY_VERSION_FILE.read_text()
    PY_VERSION_FILE.write_text(re.sub(r'__version__ = "[^"]*"', f'__version__ = "{py}"', text))
    pom = POM.read_text()
    # The project's own <version>: the first one after </parent> or, with
    # no parent, after <artifactId>shardseq-client</artifactId>.
    new, n = re.subn(r"(<artifactId>shardseq-client</artifactId>\s*<version>)[^<]*(</version>)",
                     rf"\g<1>{mvn}\g<2>", pom, count=1)
    if n != 1:
        sys.exit(f"{POM}: no <version> after <artifactId>shardseq-client</artifactId>")
    POM.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tag", help="the release tag (default: the tag on HEAD, if any)")
    ap.add_argument("--write", action="store_true", help="stamp the Python and Java packages")
    args = ap.parse_args()
    py, mvn = versions(args.tag if args.tag is not None else head_tag())
    if args.write:
        write(py, mvn)
    print(py, mvn)


if __name__ == "__main__":
    main()
