"""Rebuild the bundled Austen corpus (``src/invarlock/data/austen/``) from Debian's janeaustenr.

The novels are public domain. Debian's ``r-cran-janeaustenr`` keeps them in an R lazy-load
database: ``Rdata.rdx`` is a compressed serialized index naming each object's offset and length
in ``Rdata.rdb``, where every object is a 4-byte big-endian length followed by zlib data that
holds an R serialized character vector (one element per line of the Project Gutenberg text).
The ``rdata`` package parses R serialization; it is a dev-time tool, not a runtime dependency.

Run (Debian/Ubuntu, as root or with sudo for apt)::

    apt-get install -y r-cran-janeaustenr
    pip install rdata
    python scripts/extract_austen.py            # writes the .txt.gz files and NOTICE

The output is deterministic (gzip with mtime 0), so a rerun reproduces the checksums in NOTICE.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
import zlib
from pathlib import Path

import rdata

DEBIAN_PACKAGE = "r-cran-janeaustenr"
R_LIBRARY = Path("/usr/lib/R/site-library/janeaustenr")
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "invarlock" / "data" / "austen"

#: R object name in janeaustenr → corpus name in invarlock, with the novel's title and year.
NOVELS: dict[str, tuple[str, str]] = {
    "persuasion": ("persuasion", "Persuasion (1818)"),
    "northangerabbey": ("northanger_abbey", "Northanger Abbey (1818)"),
}


def read_index(rdx: Path) -> dict[str, tuple[int, int]]:
    """Object name → (offset, length) in ``Rdata.rdb``, from the compressed index."""
    index = rdata.conversion.convert(rdata.parser.parse_file(rdx, extension=".rds"))
    if int(index.get("compressed", [1])[0]) not in (1, True):
        raise SystemExit(f"{rdx}: only zlib-compressed lazy-load databases are handled")
    return {name: (int(pos[0]), int(pos[1])) for name, pos in index["variables"].items()}


def read_object(rdb: Path, offset: int, length: int) -> list[str]:
    """The character vector stored at ``offset`` in ``Rdata.rdb``."""
    with rdb.open("rb") as handle:
        handle.seek(offset)
        blob = handle.read(length)
    expected = int.from_bytes(blob[:4], "big")
    raw = zlib.decompress(blob[4:])
    if len(raw) != expected:
        raise SystemExit(f"{rdb}@{offset}: {len(raw)} bytes unpacked, header says {expected}")
    lines = rdata.conversion.convert(rdata.parser.parse_data(raw, extension=".rds"))
    return [str(line) for line in lines]


def novel_text(lines: list[str]) -> str:
    """The lines joined as they are, without leading/trailing blank lines, ending in a newline."""
    return "\n".join(lines).strip("\n") + "\n"


def package_versions() -> tuple[str, str]:
    """(Debian package version, upstream R package version)."""
    debian = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", DEBIAN_PACKAGE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    upstream = next(
        line.split(":", 1)[1].strip()
        for line in (R_LIBRARY / "DESCRIPTION").read_text(encoding="utf-8").splitlines()
        if line.startswith("Version:")
    )
    return debian, upstream


def notice(debian: str, upstream: str, files: list[tuple[str, str, int, int, str]]) -> str:
    """The NOTICE text: provenance, licence status, extraction, checksums."""
    rows = "\n".join(
        f"  {name:<22} {title:<26} {chars:>7} chars  {size:>7} bytes  sha256 {digest}"
        for name, title, chars, size, digest in files
    )
    return f"""Bundled corpus: novels by Jane Austen (1775-1817)

Status: public domain. Both novels were first published in December 1817 (title pages dated
1818). The digital editions are Project Gutenberg's, as packaged (the novels' lines only, no
Project Gutenberg header or licence text) by the R package janeaustenr by Julia Silge, whose
own code is under the MIT licence; the texts themselves carry no copyright.

Source: Debian package {DEBIAN_PACKAGE} {debian} (upstream janeaustenr {upstream}),
file {R_LIBRARY}/data/Rdata.rdb (an R lazy-load database).

Extraction: scripts/extract_austen.py in the invarlock repository reads the R lazy-load index
(Rdata.rdx) and each object (4-byte length + zlib data, R serialization parsed with the PyPI
package rdata), joins the character vector's elements with newlines, trims leading and
trailing blank lines, and writes UTF-8 text gzipped with mtime 0 (deterministic output).

Files (characters of text, bytes of .txt.gz, sha256 of .txt.gz):
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args()
    data = R_LIBRARY / "data"
    index = read_index(data / "Rdata.rdx")
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for r_name, (name, title) in NOVELS.items():
        text = novel_text(read_object(data / "Rdata.rdb", *index[r_name]))
        packed = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
        (args.out / f"{name}.txt.gz").write_bytes(packed)
        digest = hashlib.sha256(packed).hexdigest()
        written.append((name, title, len(text), len(packed), digest))
        print(f"{name}: {len(text)} chars, {len(packed)} bytes gzipped, sha256 {digest}")
    (args.out / "NOTICE").write_text(notice(*package_versions(), written), encoding="utf-8")


if __name__ == "__main__":
    main()
