"""One PEFT meta-learning trainer and the synthetic experiments (THEORY.md sections 1, 9).

Public surface (torch, peft and transformers are imported lazily, on first use of a
trainer name, so ``import empirics`` stays light):

* Trainer (:mod:`empirics._trainer`): :class:`Family`, :class:`TaskData`,
  :class:`AdapterSet`, :class:`PeftLoraSet`, :class:`HeadSet`, :class:`StageConfig`,
  :class:`StageResult`, :func:`retrain`, :func:`finetune`, :func:`task_adapter_name`,
  ``RETRAIN_METHODS``, ``FINETUNE_METHODS``.
* Linear model (THEORY.md 9.1, :mod:`empirics._linear`): :class:`LinearConfig`,
  :func:`run_linear_batched`, :func:`LinearFamily`.
* Shallow network (THEORY.md 9.2, :mod:`empirics._shallow`): :class:`ShallowConfig`,
  :func:`run_shallow_batched`, :func:`ShallowFamily`.
* Real data (:mod:`empirics.real`): :func:`run_vision` (Table 1), :func:`run_language`
  (Tables 2, 3).
* Records (:mod:`empirics._records`, :mod:`empirics._runs`): :func:`provenance`,
  :func:`write_json`, :class:`RunDir`, :func:`trial_record` (one seeded retrain +
  fine-tune trial of any family, written as a JSON record), :func:`linear_record`,
  :func:`shallow_record`.
"""
from __future__ import annotations

import importlib

from landscape.runtime.version import __version__

_EXPORTS = {
    "_trainer": ("Family", "TaskData", "AdapterSet", "PeftLoraSet", "HeadSet", "StageConfig", "StageResult",
                 "retrain", "finetune", "task_adapter_name", "RETRAIN_METHODS", "FINETUNE_METHODS",
                 "FINETUNE_ADAPTER"),
    "_linear": ("LinearConfig", "LinearOptions", "run_linear_batched", "LinearFamily", "draw_linear_problem",
                "LINEAR_PAPER_DEFAULTS"),
    "_shallow": ("ShallowConfig", "ShallowProblem", "draw_shallow_problem", "run_shallow_batched",
                 "ShallowFamily", "SHALLOW_PAPER_DEFAULTS", "central_range", "trial_streams", "draw_shallow_init"),
    "_records": ("provenance", "write_json", "read_json", "to_jsonable", "RunDir"),
    "_runs": ("trial_record", "linear_record", "shallow_record", "trial_seeds", "RecordMismatch", "existing_record"),
    "real._run": ("run_vision", "run_language"),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
