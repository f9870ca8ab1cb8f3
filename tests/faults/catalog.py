# ruff: noqa: E501  (a data table: the messages are asserted verbatim)
"""Every fault the suite injects into a real run, with what the user must see.

Each :class:`Fault` is run by ``test_faults.py`` through the real CLI (in-process) on a tiny
GPT-2 saved on disk, and ``scripts/gen_faults_doc.py`` renders this list as docs/faults.md,
so the table cannot drift from what is tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONFIG = """\
model:
  id: {model}
  device: cpu
edit:
  name: quant_rtn
  bits: 8
guards:
  order: [invariants, fault]
output:
  dir: runs
  snapshot: {snapshot}
"""

#: A guard that passes; faults replace its methods or add hooks after it.
GUARD = """\
import os, signal, sys
import torch
from invarlock import hookimpl
from invarlock.core.api import Guard


class Fault(Guard):
    name = "fault"

    def __init__(self, threshold: float = 1.0):
        if threshold <= 0:
            raise ValueError("threshold must be positive")

    def prepare(self, model, adapter, calib, policy):
        return {"ready": True}

    def validate(self, model, adapter, context):
        return {"passed": True, "action": "continue", "message": "ok"}


@hookimpl
def invarlock_register_guards(register):
    register(Fault)
"""

#: A plugin adapter named ``broken`` whose ``load_model`` runs ``{load}``.
ADAPTER = """

from invarlock.core.api import ModelAdapter


class Broken(ModelAdapter):
    name = "broken"

    def load_model(self, model_id, device="auto", **kwargs):
        {load}

    def describe(self, model):
        return {{}}


@hookimpl
def invarlock_register_adapters(register):
    register(Broken)
"""


def guard(method: str, body: str) -> str:
    """The passing guard with ``method`` (prepare or validate) replaced by ``body``."""
    args = "model, adapter, calib, policy" if method == "prepare" else "model, adapter, context"
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{GUARD}\n\ndef _{method}(self, {args}):\n{lines}\n\nFault.{method} = _{method}\n"


def hook(name: str, args: str, body: str) -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"\n\n@hookimpl\ndef {name}({args}):\n{lines}\n"


PASS = '\nreturn {"passed": True, "action": "continue", "message": "ok"}'
NO_GRAD = "with torch.no_grad():\n    "
#: A second plugin (a local file one directory up) that records every hook it sees.
RECORDER = """\
from invarlock import hookimpl
import fault_probe


@hookimpl
def invarlock_configure():
    fault_probe.CALLED.append('invarlock_configure')


@hookimpl
def invarlock_run_start():
    fault_probe.CALLED.append('invarlock_run_start')


@hookimpl
def invarlock_model_loaded():
    fault_probe.CALLED.append('invarlock_model_loaded')


@hookimpl
def invarlock_edit_applied():
    fault_probe.CALLED.append('invarlock_edit_applied')


@hookimpl
def invarlock_guard_result():
    fault_probe.CALLED.append('invarlock_guard_result')


@hookimpl
def invarlock_report():
    fault_probe.CALLED.append('invarlock_report')


@hookimpl
def invarlock_run_finish():
    fault_probe.CALLED.append('invarlock_run_finish')
"""


@dataclass
class Fault:
    id: str
    kind: str  # the class of fault, as in the issue
    what: str  # the fault, in words
    sees: str  # a part of what the user sees (stdout + stderr), asserted
    code: int
    plugin: str | None = None  # the project's invarlock_plugins.py
    config: str = CONFIG
    config_bytes: bytes | None = None
    args: tuple[str, ...] = ()
    snapshot: str = "memory"
    model: str = "restored"  # restored | edited | changed | unloaded
    changed: tuple[str, ...] = ()  # with model="changed": exactly these differ from load
    run_dir: bool = True  # whether a run directory must exist afterwards
    recorder: bool = False  # add the RECORDER plugin; every hook must reach it
    report: dict[str, object] = field(default_factory=dict)  # report.json keys to match
    setup: str | None = None  # a setup step of test_faults._prepare
    traceback: bool = False  # the plugin's own traceback is shown (a guard that crashed)


LN = "transformer.ln_f.weight"
QKV = "transformer.h.0.attn.c_attn.weight"
WTE = "transformer.wte.weight"

FAULTS: list[Fault] = [
    # ---------------------------------------------------------------- whole-model integrity
    Fault(
        "validate-changes-norm",
        "integrity",
        "a guard changes a norm weight (outside the edit) in validate and passes",
        f"model tensors changed during guard 'fault' validate (plugin local:sub/invarlock_plugins.py): {LN}",
        3,
        guard("validate", f"{NO_GRAD}model.transformer.ln_f.weight.mul_(2)" + PASS),
        report={"status": "error", "integrity.verified": True},
    ),
    Fault(
        "validate-nan-in-edited",
        "integrity",
        "a guard writes a NaN into an edited tensor in validate, passes, export is on",
        f"model tensors changed during guard 'fault' validate (plugin local:sub/invarlock_plugins.py): {QKV}",
        3,
        guard(
            "validate",
            f"{NO_GRAD}model.transformer.h[0].attn.c_attn.weight[0, 0] = float('nan')" + PASS,
        ),
        config=CONFIG + "  export: true\n",
        report={"export": None, "integrity.verified": True},
    ),
    Fault(
        "prepare-changes-bias",
        "integrity",
        "a guard changes a bias in prepare (before the edit)",
        "model tensors changed during guard 'fault' prepare (plugin local:sub/invarlock_plugins.py): transformer.h.1.mlp.c_fc.bias",
        3,
        guard(
            "prepare",
            f"{NO_GRAD}model.transformer.h[1].mlp.c_fc.bias.add_(1)\nreturn {{'ready': True}}",
        ),
        report={"decision.model_restored": True},
    ),
    Fault(
        "guard-result-hook-changes",
        "integrity",
        "an invarlock_guard_result hook changes the position embedding",
        "model tensors changed during invarlock_guard_result (plugin local:sub/invarlock_plugins.py): transformer.wpe.weight",
        3,
        GUARD
        + hook(
            "invarlock_guard_result",
            "run",
            "import fault_probe\n"
            + NO_GRAD
            + "fault_probe.MODELS[0].transformer.wpe.weight.zero_()",
        ),
    ),
    Fault(
        "edit-applied-hook-changes",
        "integrity",
        "an invarlock_edit_applied hook changes a tensor outside the edit",
        f"model tensors changed during invarlock_edit_applied (plugin local:sub/invarlock_plugins.py): {LN}",
        3,
        GUARD
        + hook(
            "invarlock_edit_applied",
            "run",
            "import fault_probe\n"
            + NO_GRAD
            + "fault_probe.MODELS[0].transformer.ln_f.weight.zero_()",
        ),
    ),
    Fault(
        "model-loaded-hook-changes",
        "integrity",
        "an invarlock_model_loaded hook changes a tensor before any snapshot exists",
        f"Model NOT restored: 1 tensor(s) still differ from load: {LN}",
        4,
        GUARD
        + hook(
            "invarlock_model_loaded",
            "loaded",
            NO_GRAD + "loaded.model.transformer.ln_f.weight.zero_()",
        ),
        model="changed",
        changed=(LN,),
        report={"integrity.verified": False, "integrity.unrestorable": [LN]},
    ),
    Fault(
        "validate-changes-uncopied",
        "integrity",
        "a guard changes the token embedding, which the snapshot did not copy (too large)",
        f"Model NOT restored: 1 tensor(s) still differ from load: {WTE}",
        4,
        guard("validate", f"{NO_GRAD}model.transformer.wte.weight[0].zero_()" + PASS),
        model="changed",
        changed=(WTE,),
        setup="no_extra_copies",
        report={"integrity.unrestorable": [WTE], "decision.model_restored": False},
    ),
    Fault(
        "abort-verified",
        "integrity",
        "a guard's verdict is abort (the ordinary rollback)",
        "tensors verified against their load hash",
        1,
        guard("validate", "return {'passed': False, 'action': 'abort', 'message': 'too risky'}"),
        report={"status": "rolled_back", "integrity.verified": True},
    ),
    # ---------------------------------------------------------------- the decision always happens
    Fault(
        "validate-sys-exit-0",
        "contained",
        "a guard calls sys.exit(0) in validate",
        "guard 'fault' validate() called sys.exit SystemExit: 0",
        3,
        guard("validate", "sys.exit(0)"),
        report={"status": "rolled_back"},
        traceback=True,
    ),
    Fault(
        "prepare-sys-exit-1",
        "contained",
        "a guard calls sys.exit(1) in prepare",
        "guard 'fault' prepare() called sys.exit SystemExit: 1",
        3,
        guard("prepare", "sys.exit(1)"),
        report={"decision.edit_applied": False},
        traceback=True,
    ),
    Fault(
        "validate-raises",
        "contained",
        "a guard raises ValueError in validate (a bug, not a verdict)",
        "guard 'fault' validate() raised ValueError: boom",
        3,
        guard("validate", "raise ValueError('boom')"),
        traceback=True,
    ),
    Fault(
        "validate-malformed",
        "contained",
        "a guard returns passed=False with action=continue",
        "guard 'fault' validate()",
        3,
        guard("validate", "return {'passed': False, 'action': 'continue', 'message': 'x'}"),
    ),
    Fault(
        "validate-keyboard-interrupt",
        "contained",
        "KeyboardInterrupt raised inside validate",
        "Decision: ⏹  interrupted",
        130,
        guard("validate", "raise KeyboardInterrupt"),
        report={"status": "interrupted", "decision.model_restored": True},
        recorder=True,
    ),
    Fault(
        "validate-sigterm-disk",
        "contained",
        "SIGTERM arrives during validate, disk snapshot",
        "terminated (SIGTERM)",
        143,
        guard("validate", "os.kill(os.getpid(), signal.SIGTERM)" + PASS),
        snapshot="disk",
        recorder=True,
        report={"status": "interrupted", "decision.model_restored": True},
    ),
    Fault(
        "prepare-sigterm-disk",
        "contained",
        "SIGTERM arrives during prepare, disk snapshot",
        "terminated (SIGTERM)",
        143,
        guard("prepare", "os.kill(os.getpid(), signal.SIGTERM)\nreturn {'ready': True}"),
        snapshot="disk",
        recorder=True,
        report={"status": "interrupted"},
    ),
    Fault(
        "validate-sigint",
        "contained",
        "SIGINT (Ctrl-C) arrives during validate",
        "interrupted by the user",
        130,
        guard("validate", "os.kill(os.getpid(), signal.SIGINT)" + PASS),
        recorder=True,
        report={"status": "interrupted"},
    ),
    Fault(
        "run-start-sys-exit",
        "contained",
        "an invarlock_run_start hook calls sys.exit(1)",
        "hook invarlock_run_start raised SystemExit: 1",
        3,
        GUARD + hook("invarlock_run_start", "", "sys.exit(1)"),
        model="unloaded",
        recorder=True,
    ),
    Fault(
        "recursive-guard-result",
        "contained",
        "a guard returns metrics that contain themselves",
        "guard 'fault' validate()",
        3,
        guard(
            "validate",
            "m = {}\nm['self'] = m\nreturn {'passed': True, 'action': 'continue', 'message': 'ok', 'metrics': m}",
        ),
        traceback=True,
    ),
    # ---------------------------------------------------------------- every hook implementation runs
    *[
        Fault(
            f"hook-{name.removeprefix('invarlock_').replace('_', '-')}-raises",
            "hooks",
            f"one plugin's {name} raises; another plugin implements it too",
            f"plugin 'local:sub/invarlock_plugins.py' hook {name} raised RuntimeError: {name} broke",
            code,
            GUARD,
            recorder=True,
            model=model,
            setup=f"hook:{name}:{args}",
            report=report,
        )
        for name, args, code, model, report in (
            ("invarlock_configure", "config", 3, "unloaded", {"status": "error"}),
            ("invarlock_run_start", "run", 3, "unloaded", {"status": "error"}),
            ("invarlock_model_loaded", "loaded", 3, "restored", {"status": "error"}),
            ("invarlock_edit_applied", "result", 3, "restored", {"status": "error"}),
            ("invarlock_guard_result", "outcome", 3, "restored", {"status": "error"}),
            ("invarlock_report", "report", 0, "edited", {"status": "kept"}),
            ("invarlock_run_finish", "status", 0, "edited", {"status": "kept"}),
        )
    ],
    Fault(
        "configure-rejects-config",
        "hooks",
        "an invarlock_configure hook rejects the config with ConfigError (on purpose)",
        "Error: my_section.size must be positive",
        2,
        GUARD
        + hook(
            "invarlock_configure",
            "config",
            "from invarlock.core.errors import ConfigError\n"
            "raise ConfigError('my_section.size must be positive')",
        ),
        model="unloaded",
        recorder=True,
    ),
    Fault(
        "report-hook-sigint",
        "hooks",
        "Ctrl-C arrives while an invarlock_report hook runs (after the decision)",
        "warning: plugin '(interrupted)' hook invarlock_report raised KeyboardInterrupt",
        0,
        GUARD + hook("invarlock_report", "", "os.kill(os.getpid(), signal.SIGINT)"),
        model="edited",
        recorder=True,
        report={"status": "kept"},
    ),
    Fault(
        "register-guards-raises",
        "hooks",
        "invarlock_register_guards raises in the plugin that provides a needed guard",
        "guard 'fault' is not registered, and plugin(s) that may provide it failed to load: "
        "local:sub/invarlock_plugins.py",
        3,
        GUARD.replace("    register(Fault)", "    raise RuntimeError('no')"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "adapter-load-raises",
        "hooks",
        "a plugin adapter's load_model raises RuntimeError",
        "cannot load model",
        4,
        GUARD + ADAPTER.format(load="raise RuntimeError('disk on fire')"),
        args=("--set", "model.adapter=broken"),
        model="unloaded",
        recorder=True,
    ),
    Fault(
        "adapter-load-sys-exit",
        "contained",
        "a plugin adapter's load_model calls sys.exit(0)",
        "plugin code called sys.exit(0) during the run",
        3,
        GUARD + ADAPTER.format(load="sys.exit(0)"),
        args=("--set", "model.adapter=broken"),
        model="unloaded",
        recorder=True,
    ),
    # ---------------------------------------------------------------- config loader
    Fault(
        "config-not-utf8",
        "config",
        "the config holds a Latin-1 byte on line 3",
        "config.yaml:3: not UTF-8 (byte 0xe9",
        2,
        config_bytes=b"model:\n  id: x\n  adapter: caf\xe9\n",
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "config-recursive-alias",
        "config",
        "a recursive YAML alias",
        "config.yaml:1: invalid YAML: a recursive alias",
        2,
        config_bytes=b"model: &m {id: *m}\n",
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "config-billion-laughs",
        "config",
        "an alias 'billion laughs' (9 levels of 9 aliases)",
        "invalid YAML: aliases expand the config beyond",
        2,
        config_bytes=(
            "a: &a [x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
        ).encode(),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "config-deep-nesting",
        "config",
        "a list nested 5000 levels deep",
        "invalid YAML: nested too deeply",
        2,
        config_bytes=b"model: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "config-bad-date",
        "config",
        "a value that looks like an impossible date (2024-02-30)",
        "invalid YAML value: day is out of range for month",
        2,
        config_bytes=b"model: {id: x}\nedit: {when: 2024-02-30}\n",
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "config-list-key",
        "config",
        "a mapping key that is a list",
        "invalid YAML: found unhashable key",
        2,
        config_bytes=b"model: {id: x}\n? [a]\n: b\n",
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "set-bad-value",
        "config",
        "--set gives an invalid value",
        "--set 'output.snapshot=banana': output.snapshot: must be one of auto, memory, disk",
        2,
        GUARD,
        args=("--set", "output.snapshot=banana"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "set-bad-yaml",
        "config",
        "--set gives a value that is not YAML",
        "--set 'edit.bits=[4': value at column 3: invalid YAML",
        2,
        GUARD,
        args=("--set", "edit.bits=[4"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "set-recursive-alias",
        "config",
        "--set gives a recursive alias",
        "--set 'edit.bits=&a [*a]'",
        2,
        GUARD,
        args=("--set", "edit.bits=&a [*a]"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "empty-guard-order",
        "config",
        "guards.order is empty",
        "guards.order: is empty: nothing would check the edit",
        2,
        GUARD,
        args=("--set", "guards.order=[]"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "empty-guard-order-allowed",
        "config",
        "guards.order is empty and guards.allow_empty: true",
        "Decision: ✅ kept",
        0,
        GUARD,
        args=("--set", "guards.order=[]", "--set", "guards.allow_empty=true"),
        model="edited",
        report={"warnings": ["guards.order is empty (guards.allow_empty): nothing checked"]},
    ),
    # ---------------------------------------------------------------- dry-run parity
    Fault(
        "dry-run-guard-option",
        "dry-run",
        "--dry-run with a guard option its constructor rejects",
        "guard 'fault' rejected its options: threshold must be positive",
        2,
        GUARD,
        args=("--dry-run", "--set", "guards.fault.threshold=-1"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "run-guard-option",
        "dry-run",
        "the same config without --dry-run",
        "guard 'fault' rejected its options: threshold must be positive",
        2,
        GUARD,
        args=("--set", "guards.fault.threshold=-1"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "dry-run-output-is-a-file",
        "dry-run",
        "--dry-run where output.dir is a file",
        "cannot create run directory",
        2,
        GUARD,
        args=("--dry-run", "--set", "output.dir=taken"),
        model="unloaded",
        run_dir=False,
        setup="output_file",
    ),
    # ---------------------------------------------------------------- plugins and model
    Fault(
        "broken-plugin-needed-guard",
        "plugin",
        "the plugin file providing a needed guard fails to import",
        "guard 'fault' is not registered, and plugin(s) that may provide it failed to load: "
        "local:sub/invarlock_plugins.py",
        3,
        "x = 1 / 0\n" + GUARD,
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "local-file-world-writable",
        "local files",
        "the local plugin file is writable by others",
        "refused, not imported: writable by other users",
        3,
        GUARD,
        model="unloaded",
        run_dir=False,
        setup="chmod_666",
    ),
    Fault(
        "local-dir-world-writable",
        "local files",
        "the local plugin file sits in a world-writable directory",
        "refused, not imported: its directory",
        3,
        GUARD,
        model="unloaded",
        run_dir=False,
        setup="chmod_dir_777",
    ),
    Fault(
        "model-missing",
        "model",
        "model.id names a directory that does not exist",
        "Error: model path not found: ./nowhere",
        4,
        GUARD,
        args=("--set", "model.id=./nowhere"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "dry-run-model-missing",
        "dry-run",
        "--dry-run where model.id names no directory",
        "Error: model path not found: ./nowhere",
        4,
        GUARD,
        args=("--dry-run", "--set", "model.id=./nowhere"),
        model="unloaded",
        run_dir=False,
    ),
    Fault(
        "model-unsafe-pickle",
        "model",
        "the checkpoint is a pickle that would run code",
        "the checkpoint is a pickle holding more than tensors (posix.system); it was not unpickled",
        4,
        GUARD,
        model="unloaded",
        setup="unsafe_pickle",
    ),
    Fault(
        "report-mode-umask",
        "files",
        "umask 027: report.json must be 0640, not 0600",
        "Decision: ✅ kept",
        0,
        GUARD,
        model="edited",
        setup="umask_027",
    ),
]
