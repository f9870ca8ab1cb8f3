"""Every fenced shell, Python, YAML, TOML and JSON block in README.md and docs/ runs as written.

Each document gets a fresh project directory holding the repository's ``configs/``, the
example package ``my_invarlock_plugin/`` and the tiny GPT-2 at ``models/tiny-gpt2`` (what the
README's quickstart builds). Its blocks run top to bottom, so later blocks see earlier ones:

* a block whose first line is a comment naming a file (``# src/my_plugin/my_guard.py``,
  ``# config.yaml``) is written to that path in the project;
* ``bash``/``sh``/``shell``/``console``: run with ``bash -e -o pipefail`` in the project;
* ``python``: run with the project directory as the working directory;
* ``yaml``: parsed; a mapping of config sections is validated as a run config (a fragment
  without ``model`` is validated together with one);
* ``toml``/``json``: parsed.

A block that cannot run as written is preceded by ``<!-- docs-test: skip: REASON -->``.
``pip install`` lines really install into this environment; the package is uninstalled
when the document is done.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<reason>.+?)\s*-->")
FILE_HEADER = re.compile(r"^#\s*(?P<path>[\w./-]+\.(?:py|yaml|yml|toml|txt|cfg))\s*$")
SHELL = {"bash", "sh", "shell", "console"}
RUNNABLE = SHELL | {"python", "yaml", "yml", "toml", "json"}
BIN = Path(sys.executable).parent
EXAMPLE_DISTRIBUTIONS = ("my-invarlock-plugin", "invarlock-max-shift")

pytestmark = pytest.mark.slow


@dataclass
class Block:
    document: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def blocks_of(document: Path) -> list[Block]:
    from markdown_it import MarkdownIt

    source = document.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for token in MarkdownIt("commonmark").parse(source):
        if token.type != "fence" or token.map is None:
            continue
        start = token.map[0]
        before = [line for line in lines[:start] if line.strip()]
        skip = SKIP.search(before[-1]) if before else None
        language = (token.info.split() or [""])[0].lower()
        found.append(Block(document, start + 1, language, token.content, skip and skip["reason"]))
    return found


ALL_BLOCKS = [b for d in DOCUMENTS for b in blocks_of(d)]


def clean_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVARLOCK_") and k != "COLUMNS"}
    env.update(
        OMP_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_OFFLINE="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    if "INVARLOCK_CACHE_DIR" in os.environ:
        env["INVARLOCK_CACHE_DIR"] = os.environ["INVARLOCK_CACHE_DIR"]
    return env


def make_project(root: Path, tiny_model_dir: Path) -> Path:
    project = root / "project"
    project.mkdir()
    shutil.copytree(REPO / "configs", project / "configs")
    shutil.copytree(
        REPO / "contrib" / "my_invarlock_plugin",
        project / "my_invarlock_plugin",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    (project / "models").mkdir()
    shutil.copytree(tiny_model_dir, project / "models" / "tiny-gpt2")
    (project / ".git").mkdir()  # a project root: local plugin files above it are ignored
    return project


def run_block(block: Block, project: Path) -> None:
    text = block.text
    first = text.splitlines()[0] if text.strip() else ""
    header = FILE_HEADER.match(first)
    if header:
        target = project / header["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    env = clean_env(project)
    if block.language in SHELL:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", text],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, (
            f"{block.id}: exit {result.returncode}\n{text}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    elif block.language == "python":
        result = subprocess.run(
            [sys.executable, "-c", text],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, f"{block.id}:\n{text}\n{result.stdout}\n{result.stderr}"
    elif block.language in ("yaml", "yml"):
        check_yaml(block)
    elif block.language == "toml":
        tomllib.loads(text)
    elif block.language == "json":
        json.loads(text)


def check_yaml(block: Block) -> None:
    from invarlock.runner.config import TOP_LEVEL_KEYS, parse_config

    data = yaml.safe_load(block.text)
    if not isinstance(data, dict) or not set(data) <= set(TOP_LEVEL_KEYS):
        return  # YAML, but not a run config: parsing it is the check
    text = block.text if "model" in data else block.text + "\nmodel: {id: models/tiny-gpt2}\n"
    parse_config(text)


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2_dir: Path) -> Iterator[dict]:
    """One project per document, made on first use; example packages uninstalled at the end."""
    made: dict[Path, Path] = {}

    def project_for(document: Path) -> Path:
        if document not in made:
            made[document] = make_project(tmp_path_factory.mktemp(document.stem), tiny_gpt2_dir)
        return made[document]

    try:
        yield project_for
    finally:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-q", "-y", *EXAMPLE_DISTRIBUTIONS],
            capture_output=True,
        )


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_block_runs_as_written(block: Block, projects) -> None:
    if block.skip:
        pytest.skip(f"docs-test: {block.skip}")
    if block.language not in RUNNABLE:
        pytest.skip(f"{block.language or 'plain'} block: not code")
    run_block(block, projects(block.document))


def test_every_block_is_runnable_or_plain_text_and_skips_say_why() -> None:
    """A block in an unknown language would be silently left out: name it, or use ``text``."""
    for block in ALL_BLOCKS:
        assert block.language in RUNNABLE | {"text"}, f"{block.id}: language {block.language!r}"
        assert block.skip is None or len(block.skip) > 10, f"{block.id}: say why it is skipped"
