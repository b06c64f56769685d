"""Large CPU tensors without a page fault per page: glibc's ``malloc`` kept on its heap.

glibc serves every block above its mmap threshold (adaptive, at most 32 MiB on 64-bit
Linux) with a fresh ``mmap`` and returns it with ``munmap`` when freed, so each of the
vision engines' large activations -- allocated and freed every step -- is zero-filled
by the kernel page by page on first touch. ``benchmarks/bench_malloc.py`` measures both
(``benchmarks/records/malloc.json``: width 64, five seeds, LoRA-ML, the batched epoch at
0.90x and the sequential at 0.93x the CPU time of glibc's default, 18 instead of 124,186
minor page faults); ``LORAML_MALLOC=system`` keeps the default.

:func:`tune` asks glibc (``mallopt``) to serve every block from its heap
(``M_MMAP_MAX = 0``) and to keep up to :data:`TRIM_BYTES` of freed memory at the top of
the heap instead of returning it (``M_TRIM_THRESHOLD``). Freed memory is then reused by
the next allocation of the step; the price is a resident size that does not shrink after
a peak (1.05x the peak resident memory in the same record). The
setting is process-wide and arithmetic is unchanged (torch aligns its CPU tensors itself),
so results are the same bit for bit. Elsewhere than Linux with glibc nothing is changed and
:func:`state` says why.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["ENV", "MODES", "M_MMAP_MAX", "M_TRIM_THRESHOLD", "TRIM_BYTES", "tune", "tune_for", "state"]

#: Environment variable choosing the mode: ``heap`` (default) or ``system`` (leave malloc as it is).
ENV = "LORAML_MALLOC"
MODES = ("heap", "system")
#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Freed memory at the top of the heap kept for reuse before glibc trims it (1 GiB).
TRIM_BYTES = 1 << 30

_STATE: dict = {}


def _mallopt():
    """glibc's ``mallopt`` of this process, or ``None`` (another C library or none)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl and others have a different malloc
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return fn


def tune() -> dict:
    """Keep glibc's large blocks on the heap (see the module's text), once per process.

    Returns :func:`state`. ``LORAML_MALLOC=system`` leaves malloc as it is; any other
    value than :data:`MODES` is refused (``ValueError``), whatever happened before.
    """
    mode = _mode()
    if _STATE:
        return state()
    if mode == "system":
        _STATE.update(mode="system", reason=f"{ENV}=system")
    elif not sys.platform.startswith("linux"):
        _STATE.update(mode="system", reason=f"not Linux ({sys.platform}): malloc left as it is")
    elif (mallopt := _mallopt()) is None:
        _STATE.update(mode="system", reason="not glibc: malloc left as it is")
    else:
        refused = [name for name, param, value in (("M_MMAP_MAX", M_MMAP_MAX, 0),
                                                   ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, TRIM_BYTES))
                   if mallopt(param, value) != 1]
        if refused:  # (glibc accepts both; a partial setting is reported, not hidden)
            _STATE.update(mode="system", reason=f"glibc refused mallopt of {', '.join(refused)}")
        else:
            _STATE.update(mode="heap", mmap_max=0, trim_threshold=TRIM_BYTES)
    return state()


def tune_for(device) -> dict:
    """:func:`tune` when ``device`` (a string or ``torch.device``) is a CPU; otherwise only
    the environment variable is validated and :func:`state` returned. The one device test
    of the engines, the runner and the command line."""
    if str(device).split(":")[0] == "cpu":
        return tune()
    _mode()
    return state()


def _mode() -> str:
    """``LORAML_MALLOC`` (default ``heap``); a value outside :data:`MODES` is a ``ValueError``."""
    mode = os.environ.get(ENV, "heap")
    if mode not in MODES:
        raise ValueError(f"{ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def state() -> dict:
    """How this process's malloc is set: ``{"mode": "heap", ...}`` after a successful
    :func:`tune`, otherwise ``{"mode": "system", "reason": ...}``."""
    return dict(_STATE) if _STATE else {"mode": "system", "reason": "not tuned in this process"}
