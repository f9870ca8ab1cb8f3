"""invarlock's pytest plugin: fixtures for testing guards, adapters and hook plugins.

Installed with invarlock and registered through the ``pytest11`` entry point, so any test
suite gets these fixtures without a ``conftest.py``. Importing this module imports neither
torch nor transformers; a fixture imports them when a test first asks for a model.

Fixtures:

* ``tiny_models`` (session): :class:`~invarlock.testing.model_cache.TinyModelCache`, tiny
  GPT-2/LLaMA models with a real tokenizer, built once per machine and loaded once per session.
* ``tiny_model_dir`` (session): the saved tiny GPT-2 directory.
* ``tiny_model``: a fresh tiny GPT-2 (a copy: edit it freely). ``tiny_tokenizer``: its tokenizer.
* ``invarlock_plugins``: :class:`~invarlock.testing.isolated.IsolatedPlugins`, an isolated
  plugin manager (built-ins only) into which the test registers guard/adapter classes and
  hook-style modules.
* ``run_guard``: :func:`~invarlock.testing.guard_run.run_guard` bound to the test's plugins
  and a fresh tiny model: prepare → edit → validate as a run calls them.
* ``invarlock_project``: a factory ``invarlock_project(config=None, plugins=None, files=None)``
  returning a :class:`~invarlock.testing.project.Project`, whose ``run()``/``plugins()``
  call the real CLI in-process and return outcomes with assertion helpers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from invarlock.testing.guard_run import GuardRun
    from invarlock.testing.isolated import IsolatedPlugins
    from invarlock.testing.model_cache import TinyModelCache
    from invarlock.testing.project import Project


@pytest.fixture(scope="session")
def tiny_models() -> TinyModelCache:
    """Tiny models by family (``"gpt2"``, ``"llama"``): ``.directory()``, ``.model()``,
    ``.tokenizer()``; on disk in ``$INVARLOCK_CACHE_DIR/testing``, in memory per session."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from invarlock.testing.model_cache import TinyModelCache

    return TinyModelCache()


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_models: TinyModelCache) -> Path:
    """The tiny GPT-2 saved with its tokenizer (``config.json``, ``model.safetensors``...)."""
    return tiny_models.directory("gpt2")


@pytest.fixture
def tiny_model(tiny_models: TinyModelCache) -> Any:
    """A fresh copy of the tiny GPT-2 (eval mode, float32, CPU)."""
    return tiny_models.model("gpt2")


@pytest.fixture
def tiny_tokenizer(tiny_models: TinyModelCache) -> Any:
    """The tiny GPT-2's real byte-level BPE tokenizer."""
    return tiny_models.tokenizer("gpt2")


@pytest.fixture
def invarlock_plugins() -> IsolatedPlugins:
    """An isolated plugin manager for this test: built-ins plus what the test registers."""
    from invarlock.testing.isolated import IsolatedPlugins

    return IsolatedPlugins()


@pytest.fixture
def run_guard(
    invarlock_plugins: IsolatedPlugins, tiny_models: TinyModelCache
) -> Callable[..., GuardRun]:
    """``run_guard(GuardClassOrName, options=..., edit=..., edit_params=..., after_edit=...,
    model=..., family="gpt2")``: prepare → edit → validate through the host's hooks."""
    from invarlock.testing.guard_run import run_guard as _run_guard

    def run(guard: type | str, *, model: Any = None, family: str = "gpt2", **kwargs: Any) -> Any:
        if model is None:
            model = tiny_models.model(family)
        return _run_guard(guard, plugins=invarlock_plugins, model=model, **kwargs)

    return run


@pytest.fixture
def invarlock_project(tmp_path: Path, tiny_models: TinyModelCache) -> Callable[..., Project]:
    """``invarlock_project(config=None, plugins=None, files=None, family="gpt2")``: a project
    directory with ``config.yaml`` (a config without ``model`` runs the tiny model on CPU),
    a local ``invarlock_plugins.py`` and any ``files`` ({relative path: text})."""
    from invarlock.testing.project import Project

    count = 0

    def make(
        config: str | Mapping[str, Any] | None = None,
        plugins: str | None = None,
        files: Mapping[str, str] | None = None,
        family: str = "gpt2",
    ) -> Project:
        nonlocal count
        count += 1
        needs_model = config is not None
        project = Project(
            tmp_path / f"project{count}",
            model_dir=tiny_models.directory(family) if needs_model else None,
        )
        if config is not None:
            project.write_config(config)
        if plugins is not None:
            project.write_plugins(plugins)
        for relative, text in (files or {}).items():
            project.write(relative, text)
        return project

    return make
