"""Tables of issue 20 made with the complete enumeration (needs the extra ``algebra``).

``recall``  On random model-M1 instances rounded to two decimals (as in issue 20), the
            fraction of real critical points, critical orbits and spurious minima that
            ``landscape audit`` finds with its default starts, against the certified
            complete list (the audit's own ``enumeration`` section).
``atlas``   Exact counts for the atlas cells small enough for the enumeration, on the
            very instances of the committed atlas (``theory/results/atlas``, seed 0),
            beside the atlas's search-based lower bounds.
``starts``  The homotopy route's start file for ``--T``, ``--d`` (k = 1): every solution of
            a generic complex instance, by monodromy with ``phc -p``, checked against
            msolve's degree per support size (``landscape/enumeration/starts``).
``sizes``   Route 2 alone (``routes=("phc",)``, completeness by counting certified complex
            solutions against the degree) on the model-M1 instance of ``--seed`` at ``--d``,
            ``--T`` (k = 1, rounded to two decimals): one row of
            ``landscape/results/enumeration_sizes.json`` (replaced if the same size, seed and
            route were recorded before) with paths, retries, counts, wall and CPU seconds and
            the load average; the Markdown table is rendered from the JSON.
``agreement`` Both routes on the (3, 3, 1) instances of the record: every certified real
            critical point of each, counts, degrees, times, versions
            (``landscape/results/enumeration_agreement.json``; re-proved by the fast test
            ``tests/test_enumeration_agreement.py`` without any solver).

Usage (from the repository root)::

    python tools/enumeration_tables.py recall [--instances N] [--out landscape/results]
    python tools/enumeration_tables.py atlas  [--out theory/results/atlas]
    python tools/enumeration_tables.py starts --T 3 --d 3 [--threads 2] [--blackbox]
    python tools/enumeration_tables.py agreement [--instances N] [--out landscape/results]
    python tools/enumeration_tables.py sizes --d 4 --T 3 --seed 0 [--threads 2]

Each writes ``<name>.json`` and ``<name>.md``; wall times are those of the machine that
ran it (the committed tables: a shared 2-core machine, so times are upper bounds).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RECALL_SIZES = ((2, 3, 1), (2, 4, 1), (3, 2, 1), (3, 3, 1))  # (d, T, k)
ATLAS_CELLS = ((2, 1, 2), (2, 1, 3), (3, 1, 2))  # (d, k, T), the atlas's order


def recall(instances: int, out: Path, sizes=RECALL_SIZES) -> dict:
    import landscape as ls

    rows = []
    for d, T, k in sizes:
        recs = []
        for i in range(instances):
            tasks = np.round(ls.random_instance(np.random.default_rng([20, d, T, k, i]), d, T, k).problem.tasks, 2)
            t0 = time.perf_counter()
            rep = ls.audit(tasks, k, seed=i, enumeration="on", plots=False)
            sec = rep.data["enumeration"]
            sec = {key: sec[key] for key in ("complete", "non_isolated", "real_critical_points", "orbits",
                                             "orbits_found_by_search", "points_found_by_search", "spurious_minima",
                                             "spurious_minima_found_by_search", "lowest_critical_value",
                                             "lowest_minimum_found_by_search", "counts_by_class", "seconds")}
            sec["audit_global_minimum_found"] = rep.data["summary"]["global_minimum_found"]
            sec["audit_spurious_candidates"] = rep.data["summary"]["spurious_candidates"]
            sec["instance"] = i
            sec["total_s"] = round(time.perf_counter() - t0, 2)
            recs.append(sec)
            print(f"({d},{T},{k}) #{i}: {sec['points_found_by_search']}/{sec['real_critical_points']} points, "
                  f"{sec['orbits_found_by_search']}/{sec['orbits']} orbits, complete={sec['complete']}, "
                  f"enumeration {sec['seconds']:.1f} s", flush=True)
        rows.append({"d": d, "T": T, "k": k, "instances": recs})
    data = {"what": "recall of `landscape audit` (default 100 starts) against the certified complete enumeration",
            "instances": "model M1 (landscape.random_instance, seed [20, d, T, k, i]) rounded to 2 decimals",
            "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "enumeration_recall.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "enumeration_recall.md").write_text(_recall_md(data))
    return data


def _recall_md(data) -> str:
    lines = ["# Recall of the default audit against the complete enumeration", "",
             f"{data['what']}; {data['instances']}. Made by `python tools/enumeration_tables.py recall`.",
             "For T >= 3, k = 1 a 'point' counts every sign copy; for T = 2 the critical sets are boost orbits "
             "and the counts are per orbit.", "",
             "| (d, T, k) | instances | complete | critical points found / total | orbits found / total "
             "| spurious minima found / total | lowest minimum found | audit said `global_minimum_found` "
             "| enumeration s (median, max) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        recs = r["instances"]
        n = len(recs)
        pts = sum(x["points_found_by_search"] for x in recs), sum(x["real_critical_points"] for x in recs)
        orb = sum(x["orbits_found_by_search"] for x in recs), sum(x["orbits"] for x in recs)
        spu = sum(x["spurious_minima_found_by_search"] for x in recs), sum(x["spurious_minima"] for x in recs)
        low = sum(bool(x["lowest_minimum_found_by_search"]) for x in recs)
        glob = sum(bool(x["audit_global_minimum_found"]) for x in recs)
        secs = [x["seconds"] for x in recs]
        lines.append(f"| ({r['d']}, {r['T']}, {r['k']}) | {n} | {sum(x['complete'] for x in recs)}/{n} "
                     f"| {pts[0]}/{pts[1]} ({pts[0] / max(pts[1], 1):.0%}) | {orb[0]}/{orb[1]} "
                     f"({orb[0] / max(orb[1], 1):.0%}) | {spu[0]}/{spu[1]} | {low}/{n} | {glob}/{n} "
                     f"| {np.median(secs):.1f}, {max(secs):.1f} |")
    return "\n".join(lines) + "\n"


def atlas_exact(out: Path, cells=ATLAS_CELLS, seed: int = 0, instances: int = 4) -> dict:
    from landscape import random_instance
    from landscape.enumeration import enumerate_critical_points
    from theory._atlas import instance_seed

    atlas_json = ROOT / "theory" / "results" / "atlas" / "atlas.json"
    searched = {}
    if atlas_json.is_file():
        for c in json.loads(atlas_json.read_text()).get("cells", []):
            searched[(c["d"], c["k"], c["T"])] = c
    rows = []
    for d, k, T in cells:
        recs = []
        for i in range(instances):
            inst = random_instance(np.random.default_rng(instance_seed(seed, d, k, T, i)), d, T, k)
            t0 = time.perf_counter()
            res = enumerate_critical_points(inst.problem.tasks, k, timeout=600)
            orbits = res.data["orbit_list"]
            X_star = inst.U_star @ np.swapaxes(inst.U_star, 1, 2)
            inv = (lambda X: X[0] - X[1]) if T == 2 else (lambda X: X)
            zero = [j for j, o in enumerate(orbits) if o.get("G_enclosure", [1, 1])[0] <= 0.0]
            second = [j for j in zero if not np.allclose(inv(res.points[j] @ np.swapaxes(res.points[j], 1, 2)),
                                                          inv(X_star), atol=1e-8)]
            recs.append({"instance": i, "complete": res.complete, "non_isolated": res.data["non_isolated"],
                         "orbits": res.data["orbits"], "real_critical_points": res.data["real_critical_points"],
                         "spurious_minima": res.data["counts_by_class"].get("spurious_local_minimum", 0),
                         "zero_loss_orbits": len(zero), "second_global_minimisers": len(second),
                         "strict_saddles": res.data["counts_by_class"].get("strict_saddle", 0),
                         "degenerate": res.data["counts_by_class"].get("degenerate", 0),
                         "seconds": round(time.perf_counter() - t0, 2)})
            print(f"atlas cell (d,k,T)=({d},{k},{T}) #{i}: {recs[-1]}", flush=True)
        s = searched.get((d, k, T), {}).get("instances", [])
        rows.append({"d": d, "k": k, "T": T, "instances": recs,
                     "search_lower_bounds": {
                         "spurious_classes": [r.get("spurious_classes") for r in s],
                         "second_minimisers": [r.get("second_minimisers_search", 0) + r.get("second_minimisers_lm", 0)
                                               for r in s]}})
    data = {"what": "exact counts for small atlas cells (complete enumeration) beside the atlas's search",
            "seed": seed, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "exact_cells.json").write_text(json.dumps(data, indent=1) + "\n")
    lines = ["# Exact atlas cells (complete enumeration)", "",
             "Same instances as the committed atlas (seed 0, `theory._atlas.instance_seed`); made by "
             "`python tools/enumeration_tables.py atlas`. 'complete' is the certificate of the enumeration; "
             "a non-complete row (T = 2 with exact model-M1 data: S1 - S2 is singular, so the critical cone "
             "u1 = u2 in ker(S1 - S2) lies off the boost slice) is a lower bound too. Exact counts are orbits (modulo signs; for T = 2 "
             "modulo the O(1,1) boosts, so 0 second global minimisers means the zero-loss continuum through U* is the "
             "only zero-loss set); the atlas's search columns count classes and LM end points with A != A*, which "
             "for T = 2 are points of that one continuum.", "",
             "| (d, k, T) | instance | complete | orbits | spurious minima (exact) | spurious (atlas search) "
             "| second global minimisers (exact) | second (atlas search) | strict saddles | degenerate | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lb = r["search_lower_bounds"]
        for j, x in enumerate(r["instances"]):
            sp = lb["spurious_classes"][j] if j < len(lb["spurious_classes"]) else "-"
            se = lb["second_minimisers"][j] if j < len(lb["second_minimisers"]) else "-"
            lines.append(f"| ({r['d']}, {r['k']}, {r['T']}) | {x['instance']} | {x['complete']} | {x['orbits']} "
                         f"| {x['spurious_minima']} | {sp} | {x['second_global_minimisers']} | {se} "
                         f"| {x['strict_saddles']} | {x['degenerate']} | {x['seconds']} |")
    (out / "exact_cells.md").write_text("\n".join(lines) + "\n")
    return data


AGREEMENT_SIZE = (3, 3, 1)  # (d, T, k)


def agreement_tasks(i: int) -> np.ndarray:
    """Instance ``i`` of the agreement record: model M1 from ``random_instance(seed i)``,
    rounded to two decimals (instance 0 is the issue's seed-0 instance)."""
    import landscape as ls

    d, T, k = AGREEMENT_SIZE
    return np.round(ls.random_instance(np.random.default_rng(i), d, T, k).problem.tasks, 2)


def agreement(instances: int, out: Path, threads: int = 1) -> dict:
    from landscape.enumeration._agreement import agreement_record, check_agreement

    recs = []
    for i in range(instances):
        d, T, k = AGREEMENT_SIZE
        rec = agreement_record(agreement_tasks(i), k, name=f"model M1, random_instance(seed {i}), "
                               f"(d, T, k) = {AGREEMENT_SIZE}, rounded to 2 decimals", threads=threads)
        bad = check_agreement(rec)
        rec["check_at_creation"] = bad or "ok"
        print(f"instance {i}: msolve {rec['msolve']['real_critical_points']} points in {rec['msolve']['seconds']} s, "
              f"phc {rec['phc']['real_certified']} points in {rec['phc']['seconds']} s "
              f"({rec['phc']['paths']} paths); check: {rec['check_at_creation']}", flush=True)
        recs.append(rec)
        _write_agreement(recs, out, threads)  # after each instance: a long run keeps what it has
    return recs


def _write_agreement(recs, out: Path, threads: int) -> dict:
    from landscape.runtime.atomic import atomic_write_text

    data = {"what": "the two routes of `landscape enumerate` on the same instances, every certified real critical "
                    "point of each (Krawczyk boxes); re-proved by tests/test_enumeration_agreement.py",
            "made_by": "python tools/enumeration_tables.py agreement", "threads": threads,
            "machine": "a shared 2-core machine (times are upper bounds)", "instances": recs}
    atomic_write_text(out / "enumeration_agreement.json", json.dumps(data, indent=0) + "\n")
    atomic_write_text(out / "enumeration_agreement.md", agreement_md(data))
    return data


def agreement_md(data) -> str:
    """The Markdown summary of an agreement record (numbers only from the record)."""
    lines = ["# Two routes, one list: the certified critical points at (d, T, k) = (3, 3, 1)", "",
             data["what"] + ". Made by `" + data["made_by"] + "` on " + data["machine"] + ".", "",
             "| instance | route 1 (msolve) points / orbits | route 1 s | route 2 (phc -p) points / orbits | route 2 s "
             "| paths (if every sign copy were tracked) | complex ends / start solutions / degree | classes | check |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in data["instances"]:
        m, p = r["msolve"], r["phc"]
        cls = ", ".join(f"{n} {c}" for c, n in m["counts_by_class"].items() if n)
        lines.append(f"| {r['name']} | {m['real_critical_points']} / {m['orbits']} | {m['seconds']} "
                     f"| {p['real_certified']} / {p['orbits_found']} | {p['seconds']} "
                     f"| {p['paths']} ({p['paths_if_every_sign_copy_tracked']}) "
                     f"| {p['finite_regular_distinct']} / {p['start_solutions']} / {p['u_system_degree']} | {cls} "
                     f"| {r['check_at_creation'] if isinstance(r['check_at_creation'], str) else 'FAILED'} |")
    v = data["instances"][0]["versions"] if data["instances"] else {}
    lines += ["", "Versions: " + ", ".join(f"{a} {b}" for a, b in v.items()) + ".", "",
              "Route 2 starts from the committed start file `landscape/enumeration/starts/T3_d3.json`, "
              f"which holds {p['start_solutions']} of the {p['generic_count']} complex solutions msolve's degree "
              "implies for a generic instance (the rest was not reached by monodromy); where the ends "
              "of two paths merge (a non-generic instance) there are fewer distinct complex ends than start "
              "solutions."]
    return "\n".join(lines) + "\n"


SIZES = ROOT / "landscape" / "results" / "enumeration_sizes.json"


def sizes_row(d: int, T: int, seed: int, threads: int = 1, instance: str = "m1") -> dict:
    """Run route 2 alone on the seed's model-M1 instance (two decimals; ``instance``
    ``"gaussian"``: i.i.d. standard normal tasks, two decimals, ``default_rng([7, seed])``)
    and describe it as a row of the sizes record."""
    import os
    import resource

    import landscape as ls
    from landscape.enumeration import enumerate_critical_points

    if instance == "m1":
        tasks = np.round(ls.random_instance(np.random.default_rng(seed), d, T, 1).problem.tasks, 2)
    else:
        tasks = np.round(np.random.default_rng([7, seed]).standard_normal((T, d, d)), 2)
    load0 = os.getloadavg()
    ru = lambda: sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)  # noqa: E731
                     for a in ("ru_utime", "ru_stime"))
    t0, c0 = time.perf_counter(), ru()
    r = enumerate_critical_points(tasks, 1, routes=("phc",), seed=0, timeout=1800, threads=threads)
    wall, cpu = time.perf_counter() - t0, ru() - c0
    ph = r.data["routes"]["phc"]
    classes = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in r.data["counts_by_class"].items() if n)
    verdict = ("complete (certified count = degree)" if r.complete else
               f"not complete: {ph['missing']} of the degree's complex solutions not certified"
               if ph.get("missing") is not None else f"not complete: {ph['reason']}")
    return {
        "size": [d, T, 1], "seed": seed, "route": "phc alone", "instance": instance,
        "what": f"route 2 alone (phc -p, threads {threads}, complex Krawczyk, count vs degree), "
                + (f"seed-{seed} instance" if instance == "m1" else f"Gaussian instance (seed {seed})"),
        "result": f"{r.data['real_critical_points']} real critical points in {r.data['orbits']} orbits ({classes}); "
                  f"{ph['certified_complex_solutions']} of {ph['u_system_degree']} complex solutions certified; {verdict}",
        "complete": r.complete,
        "real_critical_points": r.data["real_critical_points"], "orbits": r.data["orbits"],
        "counts_by_class": r.data["counts_by_class"],
        "certified_complex_solutions": ph["certified_complex_solutions"], "degree": ph["u_system_degree"],
        "paths": ph["paths"], "double_double_paths": sum(p["double_double_paths"] for p in ph["per_support"]),
        "projective_paths": sum(p.get("projective_paths", 0) for p in ph["per_support"]),
        "new_orbits_by_mechanism": ph.get("new_orbits_by_mechanism"),
        "max_tries": ph["max_tries"], "retried_supports": ph["retried_supports"],
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "load_average": [round(x, 2) for x in (load0[0], os.getloadavg()[0])],
    }


def sizes_md(data) -> str:
    lines = ["# Sizes beyond (3, 3, 1) (issue 20, item 4)", "", data["what"] + "; " + data["machine"] + ".", "",
             "| (d, T, k) | what | result | wall s | CPU s | load |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        load = "-" if "load_average" not in r else "-".join(f"{x:g}" for x in r["load_average"])
        lines.append(f"| {tuple(r['size'])} | {r['what']} | {r['result']} | {r['wall_s']} | "
                     f"{'-' if r.get('cpu_s') is None else r['cpu_s']} | {load} |")
    lines += ["", "`load` is the 1-minute load average at the start and the end of a row's run (the rows "
              "without it ran at load 8-10). Route 2 alone is complete only when the number of certified, "
              "pairwise disjoint complex solutions equals msolve's degree of the instance's U-system "
              "(`landscape/enumeration/_complete.py`)."]
    return "\n".join(lines) + "\n"


def write_sizes_row(row: dict, path: Path = SIZES) -> dict:
    from landscape.runtime.atomic import atomic_write_text

    data = json.loads(path.read_text())
    same = lambda r: (r.get("size") == row["size"] and r.get("seed") == row["seed"]  # noqa: E731
                      and r.get("route") == row["route"] and r.get("instance") == row["instance"])
    data["rows"] = [r for r in data["rows"] if not same(r)] + [row]
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    atomic_write_text(path.with_suffix(".md"), sizes_md(data))
    return data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("table", choices=("recall", "atlas", "starts", "agreement", "sizes"))
    p.add_argument("--seed", type=int, default=0, help="sizes: seed of the model-M1 instance")
    p.add_argument("--instance", choices=("m1", "gaussian"), default="m1",
                   help="sizes: model M1 (default) or i.i.d. Gaussian tasks, both rounded to two decimals")
    p.add_argument("--instances", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--T", type=int, default=3)
    p.add_argument("--d", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=float, default=None,
                   help="starts: seconds of monodromy per support before it stops adding loops (then --allow-short)")
    p.add_argument("--allow-short", action="store_true",
                   help="starts: write a start file whose count is below the degree (recorded as such)")
    p.add_argument("--blackbox", action="store_true",
                   help="starts: complete a support that monodromy leaves short with phc -b on the same instance")
    args = p.parse_args(argv)
    from landscape.enumeration import algebra_available

    if not algebra_available("msolve"):
        print("error: msolve not installed (pip install '.[algebra]')", file=sys.stderr)
        return 2
    if args.table in ("starts", "agreement", "sizes") and not algebra_available("phc"):
        print("error: phc not installed (apt-get install phcpack)", file=sys.stderr)
        return 2
    if args.table == "recall":
        recall(args.instances or 5, Path(args.out or ROOT / "landscape" / "results"))
    elif args.table == "starts":
        from landscape.enumeration._param import build_starts

        from landscape.enumeration._param import STARTS, start_file
        from landscape.runtime.atomic import atomic_write_text

        data = build_starts(args.T, args.d, threads=args.threads, blackbox=args.blackbox,
                            allow_short=args.allow_short, budget_s=args.budget, log=lambda m: print(m, flush=True))
        STARTS.mkdir(exist_ok=True)
        atomic_write_text(start_file(args.T, args.d), json.dumps(data) + "\n")
        print(f"(T, d) = ({args.T}, {args.d}): {data['degree_u_system']} complex solutions, orbits by support size "
              f"{data['orbits_by_support_size']}, {data['seconds']} s")
    elif args.table == "sizes":
        row = write_sizes_row(sizes_row(args.d, args.T, args.seed, threads=args.threads,
                                        instance=args.instance))["rows"][-1]
        print(json.dumps(row, indent=1))
    elif args.table == "agreement":
        agreement(args.instances or 1, Path(args.out or ROOT / "landscape" / "results"), threads=args.threads)
    else:
        atlas_exact(Path(args.out or ROOT / "theory" / "results" / "atlas"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
