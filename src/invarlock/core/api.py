"""The class-based plugin API: subclass :class:`Guard` or :class:`ModelAdapter`.

Classes registered through the ``invarlock.guards`` / ``invarlock.adapters`` entry-point
groups, or handed to the host by a ``invarlock_register_*`` hook, become pluggy plugins
through :mod:`invarlock.plugins.bindings`; there is no second dispatch path.

This module never imports torch: plugin listings import it to check classes.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypedDict, TypeVar

__all__ = [
    "GUARD_ACTIONS",
    "Guard",
    "GuardAction",
    "GuardResult",
    "LoadedModel",
    "ModelAdapter",
    "ModelDescription",
    "Register",
]

GuardAction = Literal["continue", "warn", "abort"]
GUARD_ACTIONS: tuple[str, ...] = ("continue", "warn", "abort")


class GuardResult(TypedDict, total=False):
    """What :meth:`Guard.validate` returns.

    Required: ``passed`` (bool), ``action`` (``"continue"``, ``"warn"`` or ``"abort"``) and
    ``message`` (str). Optional: ``metrics`` (a mapping) and ``warnings`` (a list).

    Attributes:
        passed: whether the check passed; ``False`` needs action ``warn`` or ``abort``.
        action: ``continue`` (keep), ``warn`` (keep, reported) or ``abort`` (roll back).
        message: one line for the summary table and ``decision.reasons``.
        metrics: numbers for ``report.json`` (JSON-safe copies are recorded).
        warnings: extra lines recorded with the outcome.
    """

    passed: bool
    action: GuardAction
    message: str
    metrics: dict[str, Any]
    warnings: list[Any]


class ModelDescription(TypedDict, total=False):
    """What :meth:`ModelAdapter.describe` returns; every key is optional."""

    model_type: str
    family: str
    model_class: str
    n_layer: int | None
    n_head: int | None
    hidden_size: int | None
    n_params: int
    dtype: str
    device: str
    tied_weights: list[list[str]]


class Guard(ABC):
    """A check that runs before (``prepare``) and after (``validate``) the edit.

    Subclasses set ``name`` (the key used in ``guards.order`` and for the guard's YAML
    block), take their YAML options as keyword arguments of ``__init__`` (every argument
    needs a default so the guard can be listed and constructed without a config), and
    implement :meth:`validate`.
    """

    #: Name used in configs, listings and ``-p no:NAME``.
    name: ClassVar[str] = ""
    #: Optional version shown in ``invarlock plugins``.
    version: ClassVar[str | None] = None
    #: Import names of packages this guard needs; missing ones are listed as ``⛔ needs``.
    requires: ClassVar[tuple[str, ...]] = ()

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> Mapping[str, Any]:
        """Capture what :meth:`validate` will compare against; called before the edit.

        Return a mapping; ``{"ready": False, "message": ...}`` stops the run before the edit.
        """
        return {"ready": True}

    @abstractmethod
    def validate(self, model: Any, adapter: Any, context: Mapping[str, Any]) -> Mapping[str, Any]:
        """Judge the edited model; return a :class:`GuardResult` mapping."""


class ModelAdapter(ABC):
    """Loads and describes one family or format of models.

    Subclasses set ``name`` and implement :meth:`load_model` and :meth:`describe`.
    :meth:`snapshot`/:meth:`restore` have working defaults; :meth:`can_load` lets the
    ``auto`` adapter pick this adapter for a model id.
    """

    name: ClassVar[str] = ""
    #: The library the adapter loads with, shown in the Backend column (e.g. "transformers").
    backend: ClassVar[str | None] = None
    version: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def load_model(self, model_id: str, device: str = "auto", **kwargs: Any) -> Any:
        """Load and return the model for ``model_id`` on ``device``."""

    @abstractmethod
    def describe(self, model: Any) -> Mapping[str, Any]:
        """Describe the model's structure for guards and reports (see ModelDescription)."""

    def can_load(self, model_id: str) -> bool:
        """Whether ``auto`` should load ``model_id`` with this adapter (default: never)."""
        return False

    def check(self, model_id: str, **options: Any) -> None:
        """Refuse, before anything loads, what :meth:`load_model` would refuse.

        Called by ``--dry-run`` and at the start of every run with the YAML ``model:``
        options; raise ``ConfigError`` (exit 2) or ``ModelLoadError`` (exit 4). Default:
        nothing to check.
        """
        return None

    def snapshot(self, model: Any) -> bytes:
        """Serialize the whole state dict to bytes (for retry loops in user code)."""
        import torch

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.getvalue()

    def restore(self, model: Any, snapshot: bytes) -> None:
        """Load a state dict produced by :meth:`snapshot` back into ``model``."""
        import torch

        state = torch.load(io.BytesIO(snapshot), map_location="cpu", weights_only=True)
        model.load_state_dict(state)


C = TypeVar("C", contravariant=True)


class Register(Protocol[C]):
    """The callback the ``invarlock_register_*`` hooks receive: ``register(cls, name=None)``.

    ``name`` defaults to ``cls.name``; the host checks the class (a ``Guard`` subclass for
    guards, ...) and refuses a name two plugins register.
    """

    def __call__(self, cls: type[C], name: str | None = None) -> None: ...


@dataclass
class LoadedModel:
    """What ``invarlock_load_model`` returns: the model and the adapter that loaded it.

    Attributes:
        model: the loaded model (a ``torch.nn.Module``), in eval mode on its device.
        adapter: the adapter instance that loaded it (guards receive this one).
        adapter_name: the adapter's registered name (``auto`` already resolved).
        model_id: ``model.id`` from the config.
        info: free-form facts from the adapter (e.g. the file it read).
    """

    model: Any
    adapter: ModelAdapter
    adapter_name: str
    model_id: str
    info: dict[str, Any] = field(default_factory=dict)
