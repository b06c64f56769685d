r"""Kill rates of cosmic-ray runs from their JSON dumps (``cosmic-ray dump SESSION``).

``python tools/cr_summary.py DUMP.jsonl ... [--equivalent FILE]`` prints a markdown
table per module (mutants, sampled, killed, survived, judged equivalent, kill rate of the
non-equivalent sampled mutants) and every survivor with its diff.  ``--equivalent`` is a
text file of ``job_id  reason`` lines: survivors judged equivalent (or a free parameter,
a different valid choice of something the mathematics leaves open) by reading them; the
judgement is the reader's, this script only counts it.  Exit 2 with one line on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def load(paths):
    rows = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            if line.strip():
                item, result = json.loads(line)
                rows.append((item, result or {}))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tools/cr_summary.py", description=__doc__.splitlines()[0])
    p.add_argument("dumps", nargs="+", type=Path)
    p.add_argument("--equivalent", type=Path, default=None)
    a = p.parse_args(argv)
    missing = [str(x) for x in [*a.dumps, *([a.equivalent] if a.equivalent else [])] if not x.is_file()]
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
    survivors = []
    for item, res in load(a.dumps):
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
    print("| module | mutants | sampled | killed | equivalent | survived | kill rate (non-equivalent) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mod in sorted(stats):
        s = stats[mod]
        den = s["killed"] + s["survived"]
        rate = f"{s['killed']}/{den} = {100 * s['killed'] / den:.0f}%" if den else "-"
        print(f"| {mod} | {s['mutants']} | {s['sampled']} | {s['killed']} | {s['equivalent']} | {s['survived']} | {rate} |"
              + (f" ({s['pending']} drawn, not run)" if s["pending"] else "")
              + (f" ({s['other']} with an abnormal cosmic-ray outcome)" if s["other"] else ""))
    for mod, item, res in survivors:
        m = item["mutations"][0]
        tag = f"equivalent: {equiv[item['job_id']]}" if item["job_id"] in equiv else "SURVIVED"
        print(f"\n{mod}:{m['start_pos'][0]} {m['operator_name']} in {m.get('definition_name')} "
              f"[{item['job_id']}] {tag}")
        print("\n".join(ln for ln in (res.get("diff") or "").splitlines() if ln[:1] in "+-" and ln[:3] not in ("---", "+++")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
