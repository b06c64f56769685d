r"""Keep a uniform random sample of a cosmic-ray session's pending mutants.

``python tools/cr_sample.py SESSION.sqlite N [--seed S]`` marks every pending work item
except ``N`` drawn uniformly at random (``random.Random(S)``, sorted job ids) as
``skipped``, with the reason in its output, so that ``cosmic-ray exec`` runs the sample
only and the session records what was left out.  ``cr-report`` then counts the skipped
items apart from the killed and surviving ones.  ``--reopen-survivors`` instead deletes
the results of the surviving mutants, so that the next ``cosmic-ray exec`` runs them
again (after tests were added); ``--extend N`` puts N more of the mutants left out by
the sample back (``random.Random(S + 1)``), so a sample grows without re-running what it
already ran.  ``--only OP@ROW:COL ...`` keeps exactly the pending mutants named by their
operator and start position (after the module changed, a survivor of an earlier session is
found again by where it is, since cosmic-ray numbers mutants by occurrence; every mutant the
operator makes there is kept, and ``tools/cr_record.py --survivors-of`` keeps those that re-run
a survivor).  Exit 2 with
one line on bad input.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tools/cr_sample.py", description=__doc__.splitlines()[0])
    p.add_argument("session", type=Path)
    p.add_argument("n", type=int, nargs="?", default=0)
    p.add_argument("--reopen-survivors", action="store_true")
    p.add_argument("--extend", type=int, default=0, metavar="N")
    p.add_argument("--except", dest="except_file", type=Path, default=None,
                   help="with --reopen-survivors: job ids (first word of each line) not to reopen")
    p.add_argument("--only", nargs="+", default=None, metavar="OP@ROW:COL",
                   help="keep exactly these mutants (operator name and start position)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if (a.n < 1 and not a.reopen_survivors and a.extend < 1 and not a.only) or not a.session.is_file():
        sys.stderr.write(f"tools/cr_sample.py: error: need an existing session and N >= 1, got {a.session} {a.n}\n")
        return 2
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(a.session), WorkDB.Mode.open) as db:
        if a.reopen_survivors:
            from cosmic_ray.work_db import WorkResultStorage

            keep = set()
            if a.except_file is not None and a.except_file.is_file():
                keep = {ln.split()[0] for ln in a.except_file.read_text().splitlines() if ln.strip() and ln[0] != "#"}
            ids = [job for job, r in db.results
                   if r.test_outcome is not None and r.test_outcome.value == "survived" and job not in keep]
            with db._session_maker.begin() as session:
                session.query(WorkResultStorage).filter(WorkResultStorage.job_id.in_(ids)).delete()
            print(f"{a.session}: {len(ids)} survivors reopened")
            return 0
        if a.extend:
            from cosmic_ray.work_db import WorkResultStorage

            left = sorted(job for job, r in db.results
                          if r.worker_outcome == WorkerOutcome.SKIPPED and (r.output or "").startswith("not in the sample"))
            more = random.Random(a.seed + 1).sample(left, min(a.extend, len(left)))
            with db._session_maker.begin() as session:
                session.query(WorkResultStorage).filter(WorkResultStorage.job_id.in_(more)).delete()
            print(f"{a.session}: {len(more)} more mutants put back into the sample")
            return 0
        items = list(db.pending_work_items)
        pending = sorted(item.job_id for item in items)
        if a.only:
            # every mutant the operator makes at that position (a number replaced by n - 1 and
            # by n + 1 are two mutants at one place): tools/cr_record.py --survivors-of keeps the
            # ones that re-run a survivor
            where: dict = {}
            for item in items:
                for m in item.mutations:
                    where.setdefault(f"{m.operator_name}@{m.start_pos[0]}:{m.start_pos[1]}", set()).add(item.job_id)
            missing = [w for w in a.only if w not in where]
            if missing:
                sys.stderr.write(f"tools/cr_sample.py: error: no pending mutant {missing[0]} in {a.session}\n")
                return 2
            keep = set().union(*(where[w] for w in a.only))
            why = f"not in the re-run ({len(keep)} named mutants of {len(pending)})"
        else:
            keep = set(random.Random(a.seed).sample(pending, min(a.n, len(pending))))
            why = f"not in the sample ({len(keep)} of {len(pending)} mutants, seed {a.seed})"
        skip = [j for j in pending if j not in keep]
        if skip:
            db.set_multiple_results(skip, WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED))
    print(f"{a.session}: {len(keep)} of {len(pending)} mutants kept " + ("(named)" if a.only else f"(seed {a.seed})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
