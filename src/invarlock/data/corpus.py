"""The bundled corpus: public-domain novels by Jane Austen, shipped gzipped in the package.

``persuasion`` is the default evaluation text and ``northanger_abbey`` the default calibration
text; provenance, licence and checksums are in ``invarlock/data/austen/NOTICE`` and
``scripts/extract_austen.py`` rebuilds the files. Reading needs no network and no extra package.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from invarlock.core.errors import DataError

#: Names accepted by :func:`corpus_text`, one per shipped ``<name>.txt.gz``.
CORPUS_NAMES: tuple[str, ...] = ("persuasion", "northanger_abbey")

_PACKAGE = "invarlock.data"
_FOLDER = "austen"


@lru_cache(maxsize=len(CORPUS_NAMES))
def corpus_text(name: str) -> str:
    """The full text of the bundled novel ``name`` (paragraphs separated by blank lines).

    Raises :class:`DataError` for a name not in :data:`CORPUS_NAMES` or a damaged file.
    """
    if name not in CORPUS_NAMES:
        raise DataError(f"unknown bundled corpus {name!r}; available: {', '.join(CORPUS_NAMES)}")
    resource = resources.files(_PACKAGE).joinpath(_FOLDER, f"{name}.txt.gz")
    try:
        return gzip.decompress(resource.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"bundled corpus {name!r} could not be read: {exc}") from exc
