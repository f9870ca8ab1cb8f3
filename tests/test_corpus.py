"""The bundled Austen corpus: real text, both names, a clear error, checksums that match NOTICE."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import pytest

from invarlock.core.errors import EXIT_MODEL, DataError
from invarlock.data.corpus import CORPUS_NAMES, corpus_text


def test_names() -> None:
    assert {"persuasion", "northanger_abbey"} <= set(CORPUS_NAMES)


def test_persuasion_is_the_novel() -> None:
    text = corpus_text("persuasion")
    assert text.startswith("Persuasion\n")
    assert "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who," in text
    assert text.count("Anne") > 400
    assert len(text) > 400_000


def test_northanger_abbey_is_the_novel() -> None:
    text = corpus_text("northanger_abbey")
    assert "No one who had ever seen Catherine Morland in her infancy" in text
    assert len(text) > 400_000


def test_every_name_loads_distinct_text() -> None:
    texts = [corpus_text(name) for name in CORPUS_NAMES]
    assert all(isinstance(t, str) and t.endswith("\n") for t in texts)
    assert len(set(texts)) == len(texts)


def test_unknown_name_is_a_data_error_naming_the_choices() -> None:
    with pytest.raises(DataError, match=r"unknown bundled corpus 'emma'.*persuasion") as info:
        corpus_text("emma")
    assert info.value.exit_code == EXIT_MODEL


def test_notice_lists_each_file_with_its_sha256() -> None:
    folder = resources.files("invarlock.data").joinpath("austen")
    notice = folder.joinpath("NOTICE").read_text(encoding="utf-8")
    assert "public domain" in notice and "r-cran-janeaustenr" in notice
    for name in CORPUS_NAMES:
        digest = hashlib.sha256(folder.joinpath(f"{name}.txt.gz").read_bytes()).hexdigest()
        assert re.search(rf"^\s+{name}\s.*sha256 {digest}$", notice, re.MULTILINE)
