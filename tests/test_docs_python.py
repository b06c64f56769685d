"""docs/python.md ("Using loraml from Python"): every ``python`` block runs, in order, in
one namespace, in an empty temporary folder (the page says so), so its examples cannot
drift from the code."""
import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "python.md"


def python_blocks(text: str) -> list[str]:
    """The fenced ```python blocks of a Markdown text, in order."""
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


def test_the_block_parser_finds_blocks_and_only_python_ones():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


def test_docs_python_examples_run(tmp_path, monkeypatch):
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    out = io.StringIO()
    for i, block in enumerate(blocks):
        code = compile(block, f"{PAGE.name} block {i + 1}", "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)  # an assert in the page that fails fails here
    printed = out.getvalue()
    # what the page says a print shows, it shows
    assert "Size(d=10, T=3, k=2)" in printed and "PlantedInstance(d=8, T=3, k=2)" in printed
    assert "AuditReport(d=6, T=3, k=1:" in printed and "CheckResult('Thm 3.1': PASS" in printed
    assert "Report(2/2 passed, scale='quick', seed=0" in printed


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    assert namespace["spec"].lambda_min_quotient == namespace["ls"].reduced_spectrum(
        namespace["P"], namespace["U"]).lambda_min_quotient
