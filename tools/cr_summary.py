r"""Kill rates of cosmic-ray runs from their JSON dumps (``cosmic-ray dump SESSION``).

``python tools/cr_summary.py DUMP.jsonl ... [--equivalent FILE]`` prints a markdown
table per module (mutants, sampled, killed, survived, judged equivalent, kill rate of the
non-equivalent sampled mutants) and every survivor with its diff.  ``--equivalent`` is a
text file of ``job_id  reason`` lines: survivors judged equivalent (or a free parameter,
a different valid choice of something the mathematics leaves open) by reading them; the
judgement is the reader's, this script only counts it.  A dump may be a committed record
(``tools/cr_record.py``): its first line then holds the session's totals, the skipped
mutants being left out.  ``--rerun DUMP ...``: dumps of later sessions that ran survivors
again after tests were added (``CR_ONLY``, the module having changed since); each run
mutant of a re-run replaces the survivor whose changed lines (the diff's - and + lines,
indentation aside) are the same, and the count of such replacements is printed.  ``--first DUMP ...``: the
sessions' dumps before any survivor was re-run (``NAME.run1.jsonl`` of ``CR_RERUN``); a
last column then gives the first pass's kill rate of the non-equivalent mutants (the
suite as the session found it), "-" for modules without one.  Exit 2 with one line on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def load(paths, totals=None):
    rows = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if isinstance(rec, dict):  # a committed record's header: the session's totals
                    if totals is not None:
                        totals[rec["module_path"]] += rec["skipped"]
                    continue
                item, result = rec
                rows.append((item, result or {}))
    return rows


def changed_lines(res) -> tuple:
    """The diff's removed and added lines, each as its sign and its code without the
    indentation (a survivor re-run after its line moved into a helper function still matches)."""
    return tuple(ln[0] + ln[1:].strip() for ln in (res.get("diff") or "").splitlines()
                 if ln[:1] in "+-" and ln[:3] not in ("---", "+++"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tools/cr_summary.py", description=__doc__.splitlines()[0])
    p.add_argument("dumps", nargs="+", type=Path)
    p.add_argument("--equivalent", type=Path, default=None)
    p.add_argument("--rerun", nargs="+", type=Path, default=[])
    p.add_argument("--first", nargs="+", type=Path, default=[])
    a = p.parse_args(argv)
    missing = [str(x) for x in [*a.dumps, *a.rerun, *a.first, *([a.equivalent] if a.equivalent else [])] if not x.is_file()]
    if missing:
        sys.stderr.write(f"tools/cr_summary.py: error: no such file: {', '.join(missing)}\n")
        return 2
    equiv = {}
    if a.equivalent:
        for line in a.equivalent.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                job, _, why = line.strip().partition(" ")
                equiv[job] = why.strip()
    stats = defaultdict(lambda: defaultdict(int))
    skipped = defaultdict(int)
    rows = load(a.dumps, skipped)
    for mod, n in skipped.items():
        stats[mod]["mutants"] += n
    later = {}
    for item, res in load(a.rerun):
        if res and res.get("worker_outcome") != "skipped":
            later[(item["mutations"][0]["module_path"], changed_lines(res))] = res
    for i, (item, res) in enumerate(rows):
        key = (item["mutations"][0]["module_path"], changed_lines(res))
        if res.get("test_outcome") == "survived" and key in later:
            rows[i] = (item, later.pop(key))
            stats[key[0]]["rerun"] += 1
    if later:
        sys.stderr.write(f"tools/cr_summary.py: error: {len(later)} re-run mutants match no survivor\n")
        return 2
    first = defaultdict(lambda: [0, 0])
    for item, res in load(a.first):
        if res and res.get("worker_outcome") == "normal" and item["job_id"] not in equiv:
            f = first[item["mutations"][0]["module_path"]]
            f[0] += res.get("test_outcome") != "survived"
            f[1] += 1
    survivors = []
    for item, res in rows:
        mod = item["mutations"][0]["module_path"]
        s = stats[mod]
        s["mutants"] += 1
        if res.get("worker_outcome") == "skipped":
            continue
        if not res:  # drawn but not run (a run stopped early): reported, not counted
            s["pending"] += 1
            continue
        s["sampled"] += 1
        if res.get("worker_outcome") != "normal":
            s["other"] += 1  # abnormal worker outcome (exception in cosmic-ray itself)
        elif res.get("test_outcome") == "survived":
            if item["job_id"] in equiv:
                s["equivalent"] += 1
            else:
                s["survived"] += 1
            survivors.append((mod, item, res))
        else:
            s["killed"] += 1  # 'killed' or 'incompetent' (the mutant does not even import)
    print("| module | mutants | sampled | killed | equivalent | survived | kill rate (non-equivalent) |"
          + (" first pass |" if a.first else ""))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if a.first else ""))
    for mod in sorted(stats):
        s = stats[mod]
        den = s["killed"] + s["survived"]
        rate = f"{s['killed']}/{den} = {100 * s['killed'] / den:.0f}%" if den else "-"
        f = first.get(mod)
        col = (f" {f[0]}/{f[1]} = {100 * f[0] / f[1]:.0f}% |" if f and f[1] else " - |") if a.first else ""
        print(f"| {mod} | {s['mutants']} | {s['sampled']} | {s['killed']} | {s['equivalent']} | {s['survived']} | {rate} |{col}"
              + (f" ({s['pending']} drawn, not run)" if s["pending"] else "")
              + (f" ({s['rerun']} survivors re-run after new tests)" if s["rerun"] else "")
              + (f" ({s['other']} with an abnormal cosmic-ray outcome)" if s["other"] else ""))
    for mod, item, res in survivors:
        m = item["mutations"][0]
        why = equiv.get(item["job_id"])
        # a reason names its kind ("equivalent: ...", "free parameter: ..."); older ones did not
        tag = "SURVIVED" if why is None else why if why.startswith(("equivalent", "free parameter")) \
            else f"equivalent: {why}"
        print(f"\n{mod}:{m['start_pos'][0]} {m['operator_name']} in {m.get('definition_name')} "
              f"[{item['job_id']}] {tag}")
        print("\n".join(ln for ln in (res.get("diff") or "").splitlines() if ln[:1] in "+-" and ln[:3] not in ("---", "+++")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
