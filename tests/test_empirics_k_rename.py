"""The LoRA rank of the empirics configurations is spelled ``k`` like the rest of the toolkit;
the old spelling ``rank`` still works and warns (as ``landscape.audit(rank=...)`` does)."""
import dataclasses
import json
import warnings

import pytest

pytest.importorskip("torch")

from empirics._stage import StageConfig  # noqa: E402
from empirics.real._config import LANGUAGE_PAPER, RunConfig  # noqa: E402
from empirics.real._run import _config_from_unit, run_vision, unit_config  # noqa: E402


@pytest.mark.parametrize("cls,base", [(StageConfig, {"method": "lora", "epochs": 1, "lr": 0.1}),
                                      (RunConfig, {})])
def test_rank_keyword_warns_and_equals_k(cls, base):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = cls(**base, k=3)
    with pytest.warns(DeprecationWarning, match=rf"{cls.__name__}\(rank=...\) is deprecated, use k="):
        old = cls(**base, rank=3)
    assert old == new and old.k == 3
    with pytest.warns(DeprecationWarning, match=rf"{cls.__name__}.rank is deprecated, use .k"):
        assert new.rank == 3
    with pytest.raises(TypeError, match="only k="):
        cls(**base, k=2, rank=3)
    assert "k" in {f.name for f in dataclasses.fields(cls)}
    assert "rank" not in {f.name for f in dataclasses.fields(cls)}


def test_k_is_validated_under_its_new_name():
    with pytest.raises(ValueError, match="rank k must be >= 1"):
        StageConfig(method="lora", epochs=1, lr=0.1, k=0)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="rank k must be >= 1"):
        StageConfig(method="lora", epochs=1, lr=0.1, rank=0)


def test_paper_language_rank_is_k_and_units_keep_their_stored_key():
    assert LANGUAGE_PAPER.k == 8
    unit = unit_config(LANGUAGE_PAPER, "sr", 0)
    # a unit stored before the rename (its run dict says "rank") still matches on resume
    assert unit["run"]["rank"] == 8 and "k" not in unit["run"]
    back = _config_from_unit(json.loads(json.dumps(unit["run"])))
    assert back.k == 8
    assert unit_config(dataclasses.replace(LANGUAGE_PAPER, k=4), "sr", 0)["run"]["rank"] == 4


def test_run_vision_takes_the_old_keyword(monkeypatch):
    seen = {}
    monkeypatch.setattr("empirics.real._run.run", lambda cfg, out, **kw: seen.setdefault("cfg", cfg))
    with pytest.warns(DeprecationWarning, match=r"run_vision\(rank=...\) is deprecated, use k="):
        run_vision("unused", rank=2)
    assert seen["cfg"].k == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seen.clear()
        run_vision("unused", k=5)
    assert seen["cfg"].k == 5


@pytest.mark.parametrize("cls,base", [(StageConfig, {"method": "lora", "epochs": 1, "lr": 0.1}),
                                      (RunConfig, {})])
def test_the_rank_warning_points_at_the_callers_line(cls, base):
    """stacklevel 2: the DeprecationWarning of ``.rank`` names the line that read it."""
    import sys

    cfg = cls(**base, k=3)
    with pytest.warns(DeprecationWarning) as seen:
        line = sys._getframe().f_lineno + 1
        cfg.rank
    assert seen[0].filename == __file__ and seen[0].lineno == line


@pytest.mark.parametrize("cls", [StageConfig, RunConfig])
def test_the_renaming_constructor_keeps_the_dataclass_constructor_s_identity(cls):
    """The wrapper that takes ``rank=`` keeps the dataclass __init__'s name, docstring and
    signature (its fields, ``k`` among them) through functools.wraps."""
    import inspect

    init = cls.__init__
    assert init.__name__ == "__init__" and init.__wrapped__ is not None
    assert init.__qualname__ == init.__wrapped__.__qualname__
    params = inspect.signature(cls).parameters
    assert "k" in params and "rank" not in params
