r"""A committed record of a sampled cosmic-ray session, from its JSON dump.

``python tools/cr_record.py DUMP.jsonl OUT.jsonl`` writes a header line (a JSON object: the
module, the number of mutants of the session and how many were skipped, i.e. left out of
the sample) and then every mutant that was drawn, with its diff, outcome and test output.
The skipped mutants are left out for size, and so are the drawn ones cosmic-ray could not build
(its operator raised while mutating the tree; counted as ``not_built`` in the header);
``tools/cr_summary.py`` reads the header, so the
per-module table is reproducible from the committed record alone.  Exit 2 with one line
on bad input.

A second sample of a module whose source has not changed since its record was written (the
first session gone, so ``CR_EXTEND`` cannot add to it) joins that record:

* ``--merge RECORD``: OUT holds RECORD's mutants and the new session's, one entry per mutant
  (operator, occurrence, position); one drawn by both takes the new session's outcome (a
  survivor of RECORD run again after tests were added);
* ``--new-against RECORD``: OUT holds only the new session's mutants that RECORD does not
  (the first pass of the added mutants, ``NAME-sK.first.jsonl``);
* ``--survivors-of RECORD``: OUT holds only the dump's mutants whose changed lines
  (indentation aside) are those of a survivor of RECORD -- the re-run record of a ``CR_ONLY``
  session, which runs every mutant its operator makes at a named position.

``--merge`` and ``--new-against`` refuse (exit 2) when the two sessions do not have the same
number of mutants or when a mutant drawn by both has a different diff: the module changed, and
positions no longer name the same mutants.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools, also when loaded from a file path
from cr_summary import changed_lines  # noqa: E402


def _mutant(row) -> tuple:
    m = row[0]["mutations"][0]
    return m["operator_name"], m["occurrence"], tuple(m["start_pos"]), tuple(m["end_pos"])


def _changed(row) -> tuple:
    """A mutant's removed and added lines, indentation aside: tools/cr_summary.py's matching
    of a re-run to its survivor, which --survivors-of must reproduce exactly."""
    return changed_lines(row[1] or {})


def _drawn(path: Path, what: str):
    """(module, number of mutants, the drawn and built rows, how many were not built) of a
    dump or a committed record (whose header gives the session's totals)."""
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    head = rows[0] if rows and isinstance(rows[0], dict) else None
    rows = rows[1:] if head else rows
    mods = {item["mutations"][0]["module_path"] for item, _ in rows} | ({head["module_path"]} if head else set())
    if len(mods) != 1:
        raise ValueError(f"{path} holds {len(mods)} modules, expected one {what}")
    kept = [r for r in rows if (r[1] or {}).get("worker_outcome") != "skipped"]
    # a mutant cosmic-ray could not build (its operator raised while mutating the tree) was
    # never run: it is left out like a skipped one, and counted apart in the header
    built = [r for r in kept if (r[1] or {}).get("worker_outcome") != "exception"]
    total = head["mutants"] if head else len(rows)
    not_built = (head.get("not_built", 0) if head else 0) + len(kept) - len(built)
    return mods.pop(), total, built, not_built


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    mode, against = None, None
    for flag in ("--merge", "--new-against", "--survivors-of"):
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv) or mode:
                argv = []
                break
            mode, against = flag, Path(argv[i + 1])
            del argv[i:i + 2]
    if len(argv) != 2 or not Path(argv[0]).is_file() or (against is not None and not against.is_file()):
        sys.stderr.write("tools/cr_record.py: error: usage: tools/cr_record.py DUMP.jsonl OUT.jsonl "
                         "[--merge RECORD | --new-against RECORD | --survivors-of RECORD] (an existing dump and record)\n")
        return 2
    try:
        module, total, rows, not_built = _drawn(Path(argv[0]), "in the dump")
        if mode == "--survivors-of":
            old_module, _, old_rows, _ = _drawn(against, "in the record")
            if old_module != module:
                raise ValueError(f"{against} is a record of {old_module}, the dump one of {module}")
            survivors = {_changed(r) for r in old_rows if (r[1] or {}).get("test_outcome") == "survived"}
            rows = [r for r in rows if _changed(r) in survivors]
        elif against is not None:
            old_module, old_total, old_rows, old_not_built = _drawn(against, "in the record")
            if (old_module, old_total) != (module, total):
                raise ValueError(f"{against} is a record of {old_module} with {old_total} mutants, the dump "
                                 f"one of {module} with {total}: not the same source")
            old = {_mutant(r): r for r in old_rows}
            for r in rows:
                prev = old.get(_mutant(r))
                if prev is not None and (prev[1] or {}).get("diff") != (r[1] or {}).get("diff"):
                    raise ValueError(f"{_mutant(r)[0]} at {list(_mutant(r)[2])} has another diff in {against}: "
                                     "the module changed since that record")
            if mode == "--merge":
                new = {_mutant(r) for r in rows}
                rows = [r for r in old_rows if _mutant(r) not in new] + rows
                not_built += old_not_built
            else:
                rows = [r for r in rows if _mutant(r) not in old]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        sys.stderr.write(f"tools/cr_record.py: error: {e}\n")
        return 2
    head = {"module_path": module, "mutants": total, "skipped": total - len(rows)}
    if not_built:
        head["not_built"] = not_built
    Path(argv[1]).write_text("".join(json.dumps(r) + "\n" for r in [head, *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
