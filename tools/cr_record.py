r"""A committed record of a sampled cosmic-ray session, from its JSON dump.

``python tools/cr_record.py DUMP.jsonl OUT.jsonl`` writes a header line (a JSON object: the
module, the number of mutants of the session and how many were skipped, i.e. left out of
the sample) and then every mutant that was drawn, with its diff, outcome and test output.
The skipped mutants are left out for size, and so are the drawn ones cosmic-ray could not build
(its operator raised while mutating the tree; counted as ``not_built`` in the header);
``tools/cr_summary.py`` reads the header, so the
per-module table is reproducible from the committed record alone.  Exit 2 with one line
on bad input.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not Path(argv[0]).is_file():
        sys.stderr.write("tools/cr_record.py: error: usage: tools/cr_record.py DUMP.jsonl OUT.jsonl (an existing dump)\n")
        return 2
    rows = [json.loads(ln) for ln in Path(argv[0]).read_text().splitlines() if ln.strip()]
    mods = {item["mutations"][0]["module_path"] for item, _ in rows}
    if len(mods) != 1:
        sys.stderr.write(f"tools/cr_record.py: error: {argv[0]} holds {len(mods)} modules, expected one\n")
        return 2
    kept = [r for r in rows if (r[1] or {}).get("worker_outcome") != "skipped"]
    # a mutant cosmic-ray could not build (its operator raised while mutating the tree) was
    # never run: it is left out like a skipped one, and counted apart in the header
    built = [r for r in kept if (r[1] or {}).get("worker_outcome") != "exception"]
    head = {"module_path": mods.pop(), "mutants": len(rows), "skipped": len(rows) - len(built)}
    if len(built) < len(kept):
        head["not_built"] = len(kept) - len(built)
    kept = built
    Path(argv[1]).write_text("".join(json.dumps(r) + "\n" for r in [head, *kept]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
