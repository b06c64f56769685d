"""Output where people wait (issue 19, section 3): progress bars that turn themselves off
outside a terminal, and the theory table that wraps instead of cutting."""
import re
from pathlib import Path

import pytest

import theory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    return theory.run(["Thm 3.1", "Prop 2", "App F.2"], seed=0, scale="quick")


def _cells(text: str) -> list[tuple[str, str]]:
    """(predicted, measured) of each row, read back by column position from the table."""
    lines = text.splitlines()
    head = lines[0]
    p0, m0, v0 = head.index("predicted"), head.index("measured"), head.index("verdict")
    rows = []
    for ln in lines[2:-2]:
        if ln[:p0].strip():  # a new row starts with its statement id
            rows.append(["", ""])
        rows[-1][0] += ln[p0:m0]
        rows[-1][1] += ln[m0:v0]
    return [("".join(a.split()), "".join(b.split())) for a, b in rows]


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_theory_table_wraps_to_the_width_and_cuts_nothing(report, columns):
    text = report.table(columns=columns)
    lines = text.splitlines()
    # no line of the table is wider than the header, which fits the terminal when it can
    assert max(len(ln) for ln in lines[:-1]) == len(lines[0])
    assert len(lines[0]) <= max(columns, 9 + 2 + 20 + 2 + 20 + 2 + 7 + 2 + 6)
    # every cell reads back whole (whitespace aside): nothing cut, no "~"
    expected = [("".join(str(r.predicted).split()), "".join(str(r.measured).split())) for r in report.results]
    assert _cells(text) == expected


def test_theory_table_narrow_columns_need_more_lines(report):
    narrow, wide = report.table(columns=60), report.table(columns=200)
    assert len(narrow.splitlines()) > len(wide.splitlines())


def test_verbose_cases_are_not_cut(report):
    text = report.table(columns=80, verbose=True)
    flat = " ".join(text.split())
    for r in report.results:
        for c in r.cases:
            assert " ".join(c.label.split()) in flat


def test_every_progress_bar_turns_itself_off_outside_a_terminal():
    """Every ``tqdm(...)`` call in the packages passes ``disable=None`` (off when the
    stream is not a terminal) or an explicit switch."""
    calls = []
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in ("tests", ".venv", "build") or ".venv" in path.parts:
            continue
        text = path.read_text()
        for m in re.finditer(r"\btqdm\(", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            calls.append((path.relative_to(ROOT), text[m.start():i]))
    assert calls
    missing = [f"{p}: {c}" for p, c in calls if "disable=None" not in c]
    assert not missing, missing


def test_pool_workers_know_their_bar_line():
    """Each worker of a local pool draws its epoch bar on its own line (1, 2, ...); the main
    process has none, so its bars keep the default position."""
    from empirics._shallow import worker_position
    from landscape.runtime.executor import LocalExecutor, Unit, run_units

    assert worker_position() is None
    units = [Unit(f"w{i}", worker_position, {}) for i in range(4)]
    lines = run_units(units, executor=LocalExecutor(workers=2))
    # positive and one per worker process (1 and 2 in a command's only pool; a long-lived
    # process that made pools before counts on from there)
    assert all(isinstance(x, int) and x >= 1 for x in lines) and len(set(lines)) <= 2
    assert run_units(units, executor=LocalExecutor(workers=1)) == [None] * 4
