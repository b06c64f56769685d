"""empirics._malloc: glibc's large blocks kept on the heap for the CPU engines.

The setting is process-wide, so its real effect is observed in child processes (minor page
faults of a reallocated 64 MiB tensor); the decisions are tested with a recording mallopt.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from empirics import _malloc

ROOT = Path(__file__).resolve().parents[1]
GLIBC = sys.platform.startswith("linux") and _malloc._mallopt() is not None


@pytest.fixture
def fresh(monkeypatch):
    """An untuned module state and a mallopt that records its calls (and answers ``answer``)."""
    calls = []

    def fake(param, value):
        calls.append((param, value))
        return fake.answer.get(param, 1)

    fake.answer = {}
    monkeypatch.setattr(_malloc, "_STATE", {})
    monkeypatch.setattr(_malloc, "_mallopt", lambda: fake)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv(_malloc.ENV, raising=False)
    return calls, fake


def test_constants_are_glibcs():
    # malloc.h: M_TRIM_THRESHOLD -1, M_MMAP_MAX -4; the kept top of the heap is 1 GiB
    assert (_malloc.M_TRIM_THRESHOLD, _malloc.M_MMAP_MAX, _malloc.TRIM_BYTES) == (-1, -4, 2 ** 30)
    assert _malloc.MODES == ("heap", "system") and _malloc.ENV == "LORAML_MALLOC"


def test_tune_sets_both_parameters_once(fresh):
    calls, _ = fresh
    st = _malloc.tune()
    assert st == {"mode": "heap", "mmap_max": 0, "trim_threshold": 2 ** 30}
    assert calls == [(-4, 0), (-1, 2 ** 30)]
    assert _malloc.tune() == st and len(calls) == 2  # once per process
    assert _malloc.state() == st
    st["mode"] = "changed"  # the caller's copy, not the module's state
    assert _malloc.state()["mode"] == "heap"


def test_untuned_state_says_so(fresh):
    assert _malloc.state() == {"mode": "system", "reason": "not tuned in this process"}


def test_system_mode_leaves_malloc_alone(fresh, monkeypatch):
    calls, _ = fresh
    monkeypatch.setenv(_malloc.ENV, "system")
    assert _malloc.tune() == {"mode": "system", "reason": "LORAML_MALLOC=system"}
    assert calls == []


@pytest.mark.parametrize("value", ["", "Heap", "mmap", "heap "])
def test_unknown_mode_is_refused_even_after_tuning(fresh, monkeypatch, value):
    _malloc.tune()
    monkeypatch.setenv(_malloc.ENV, value)
    with pytest.raises(ValueError, match="LORAML_MALLOC"):
        _malloc.tune()


def test_other_platforms_and_libraries_are_left_alone(fresh, monkeypatch):
    calls, _ = fresh
    monkeypatch.setattr(sys, "platform", "darwin")
    st = _malloc.tune()
    assert st["mode"] == "system" and "not Linux (darwin)" in st["reason"] and calls == []
    monkeypatch.setattr(_malloc, "_STATE", {})
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(_malloc, "_mallopt", lambda: None)
    assert _malloc.tune() == {"mode": "system", "reason": "not glibc: malloc left as it is"}


@pytest.mark.parametrize("refuse, names", [((-4,), "M_MMAP_MAX"), ((-1,), "M_TRIM_THRESHOLD"),
                                           ((-4, -1), "M_MMAP_MAX, M_TRIM_THRESHOLD")])
def test_a_refused_parameter_is_reported(fresh, refuse, names):
    calls, fake = fresh
    fake.answer = {p: 0 for p in refuse}
    st = _malloc.tune()
    assert st == {"mode": "system", "reason": f"glibc refused mallopt of {names}"}
    assert len(calls) == 2  # both asked, whichever failed


def test_mallopt_lookup_answers_none_without_glibc(monkeypatch):
    import ctypes

    def no_library(name):
        raise OSError("cannot load the process's symbols")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert _malloc._mallopt() is None

    class Musl:  # a C library with mallopt but not glibc's version query
        mallopt = object()

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Musl())
    assert _malloc._mallopt() is None


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_mallopt_lookup_declares_the_c_signature():
    import ctypes

    fn = _malloc._mallopt()
    assert fn.argtypes == (ctypes.c_int, ctypes.c_int) and fn.restype is ctypes.c_int


def test_provenance_records_the_state(fresh):
    from empirics._records import provenance

    assert provenance("cpu")["malloc"]["mode"] == "system"
    _malloc.tune()
    assert provenance("cpu")["malloc"] == {"mode": "heap", "mmap_max": 0, "trim_threshold": 2 ** 30}


_CHILD = r"""
import json, resource, sys
sys.path.insert(0, {root!r})
import torch
from empirics import _malloc
st = _malloc.tune() if sys.argv[1] == "tune" else _malloc.state()
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(16 * 2 ** 20)  # 64 MiB, then every page touched
    x.fill_(1.0)
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"state": st, "faults": faults}}))
"""


def _child(mode: str, env_mode: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != _malloc.ENV}
    if env_mode is not None:
        env[_malloc.ENV] = env_mode
    out = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT)), mode], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_tuned_process_reuses_large_blocks_without_page_faults():
    pages = 64 * 2 ** 20 // os.sysconf("SC_PAGE_SIZE")
    default, opted_out = _child("none"), _child("tune", "system")
    # the kernel may reclaim free heap pages under memory pressure (another job on the
    # machine): a tuned child gets up to three tries to show the reuse; glibc's default
    # never shows it, so the comparison stays sharp
    for _ in range(3):
        tuned = _child("tune")
        if sorted(tuned["faults"][-4:])[2] < pages // 20:
            break
    assert tuned["state"]["mode"] == "heap" and opted_out["state"]["mode"] == "system"
    # glibc's default: every reallocation is a fresh mmap, each page faulted in again
    assert min(default["faults"][1:]) > pages // 2
    assert min(opted_out["faults"][1:]) > pages // 2
    # tuned: the first touch faults the pages in; once the heap has settled (the next block
    # or two may land beside the first), reallocations reuse pages already there -- at least
    # three of the last four (about one full run in ten on a shared machine saw one of them
    # fault its 64 MiB in again, the kernel having reclaimed the free heap pages; glibc's
    # default faults every one of them in, above)
    assert tuned["faults"][0] > pages // 2 and sorted(tuned["faults"][-4:])[2] < pages // 20


@pytest.mark.parametrize("device, tuned", [("cpu", True), ("cpu:0", True), ("cuda", False), ("cuda:1", False),
                                           ("meta", False), ("cpuish", False)])
def test_tune_for_sets_malloc_on_a_cpu_only(fresh, device, tuned):
    calls, _ = fresh
    st = _malloc.tune_for(device)
    assert (st["mode"] == "heap") is tuned and (len(calls) == 2) is tuned


def test_tune_for_accepts_a_torch_device_and_refuses_a_bad_mode_on_any_device(fresh, monkeypatch):
    torch = pytest.importorskip("torch")
    assert _malloc.tune_for(torch.device("cpu"))["mode"] == "heap"
    monkeypatch.setenv(_malloc.ENV, "mmap")
    for device in ("cpu", "cuda", torch.device("meta")):
        with pytest.raises(ValueError, match="LORAML_MALLOC='mmap'"):
            _malloc.tune_for(device)
