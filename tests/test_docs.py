"""The documentation runs: every example in README.md and docs/*.md is a test.

What runs, per fenced block (its language is the word after the opening fence):

- ``python``: the page's blocks are executed in order in one fresh namespace
  per page (a later block may use what an earlier one defined), in a
  temporary folder.
- ``bash`` / ``console``: every line starting with ``aoichain`` (``$
  aoichain`` in a console block) runs as ``python -m aoichain ...`` with this
  tree's ``src`` on ``PYTHONPATH`` and must exit 0; the block's lines run in
  order in one temporary folder. A line ``cd DIR`` changes the folder for the
  lines after it. ``aoichain chains up`` runs until Ctrl-C: the test starts
  it, waits for its ``deployments.json``, runs the block's other lines, then
  sends SIGINT and expects a clean exit. Other lines (``make``, ``git``,
  ``export``, ``python ...``) are shown, not run.
- ``toml``: parsed; a block whose tables are all run-config tables
  (``[task]``, ``[market]``, ...) is loaded with ``load_run_config``.
- ``text``, ``mermaid``, ``json``: shown only.

Every temporary folder starts with a copy of ``examples/``, so commands and
code read as if run from the repository root.

An HTML comment on the line before a block marks it:
``<!-- docs-test: slow -->`` (skipped by ``make test-fast``),
``<!-- docs-test: anvil -->`` (needs the anvil binary), or
``<!-- docs-test: skip; why -->`` (not run; the reason is required). Command
blocks that run ``aoichain run``, ``compare`` or ``reproduce`` (end to end:
seconds each) are slow, and those that start anvil nodes need anvil, without
a mark. A python page is slow
(anvil) if any of its blocks is.

Relative links between the pages must resolve, headings included, and the
README must link every page of ``docs/``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "bash", "console", "toml", "text", "mermaid", "json"}
MARKS = {"slow", "anvil", "skip"}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARKER = re.compile(r"<!--\s*docs-test:\s*([a-z ]+?)\s*(?:;\s*(.*?))?\s*-->")
COMMAND_TIMEOUT_S = 600
RUN_CONFIG_TABLES = {"task", "market", "workers", "data", "privacy", "train", "chain", "faults"}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the block's first content line
    language: str
    code: str
    marks: frozenset[str]
    reason: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a markdown page, with the marks of the comment just before each."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language = opening.groups()
        before = next((x for x in reversed(lines[:i]) if x.strip()), "")
        marker = MARKER.search(before)
        marks = frozenset(marker.group(1).split()) if marker else frozenset()
        reason = (marker.group(2) or "") if marker else ""
        end = i + 1
        while end < len(lines) and not re.match(rf"^{indent}```\s*$", lines[end]):
            end += 1
        body = [x[len(indent) :] if x.startswith(indent) else x for x in lines[i + 1 : end]]
        found.append(Block(page, i + 2, language, "\n".join(body) + "\n", marks, reason))
        i = end + 1
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks_of(page)]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _marks(marks: set[str] | frozenset[str]) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, m) for m in sorted(marks & {"slow", "anvil"})]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder holding a copy of ``examples/``; the current directory meanwhile."""
    ignore = shutil.ignore_patterns("results", "__pycache__")
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=ignore)
    here, path = Path.cwd(), list(sys.path)
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)
        sys.path[:] = path


# -- the pages' form ---------------------------------------------------------------------


def test_every_block_names_a_known_language_and_valid_marks() -> None:
    for block in ALL_BLOCKS:
        assert block.language in LANGUAGES, f"{block.where}: fence language {block.language!r}"
        assert block.marks <= MARKS, f"{block.where}: unknown docs-test mark {block.marks}"
        if "skip" in block.marks:
            assert block.reason, f"{block.where}: say why with <!-- docs-test: skip; why -->"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_relative_links_resolve(page: Path) -> None:
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{_id(page)} links to {link}, which does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{_id(page)} links to {link}: no such heading"


def test_the_readme_links_every_page() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in _links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {_id(page)}"


# -- python ------------------------------------------------------------------------------

PYTHON_PAGES = [p for p in PAGES if any(b.language == "python" for b in blocks_of(p))]


def _python_param(page: Path) -> object:
    marks = set().union(*(b.marks for b in blocks_of(page) if b.language == "python"))
    return pytest.param(page, marks=_marks(marks), id=_id(page))


@pytest.mark.parametrize("page", [_python_param(p) for p in PYTHON_PAGES])
def test_python_blocks_run(page: Path, workdir: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks_of(page):
        if block.language != "python" or "skip" in block.marks:
            continue
        # Padding keeps the page's line numbers in tracebacks.
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        exec(code, namespace)


# -- commands ----------------------------------------------------------------------------


def command_lines(block: Block) -> list[str]:
    """The lines of a shell block that the test runs: ``aoichain ...`` and ``cd DIR``."""
    kept = []
    for raw in block.code.splitlines():
        line = raw.strip()
        if block.language == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:].strip()
        if line.startswith(("aoichain ", "cd ")) or line == "aoichain":
            kept.append(line)
    return kept


def _command_marks(block: Block) -> set[str]:
    marks = set(block.marks)
    for line in command_lines(block):
        argv = shlex.split(line, comments=True)
        if argv[1:2] in (["run"], ["compare"], ["reproduce"]) and "--help" not in argv:
            marks.add("slow")
        if argv[1:3] == ["chains", "up"] or "anvil" in argv:
            marks.add("anvil")
    return marks


COMMAND_BLOCKS = [
    pytest.param(b, marks=_marks(_command_marks(b)), id=b.where)
    for b in ALL_BLOCKS
    if b.language in ("bash", "console") and "skip" not in b.marks and command_lines(b)
]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}


def _deployments_file(argv: list[str], cwd: Path) -> Path:
    out = argv[argv.index("--out") + 1] if "--out" in argv else "chains"
    return cwd / out / "deployments.json"


@pytest.mark.parametrize("block", COMMAND_BLOCKS)
def test_command_lines_exit_0(block: Block, workdir: Path) -> None:
    cwd = workdir
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for line in command_lines(block):
            argv = shlex.split(line, comments=True)
            assert not {"|", ">", "&&", ";", "&"} & set(argv), (
                f"{block.where}: keep documented commands plain (no pipes or redirections): {line}"
            )
            if argv[0] == "cd":
                cwd = cwd / argv[1]
                continue
            cmd = [sys.executable, "-m", "aoichain", *argv[1:]]
            if argv[1:3] == ["chains", "up"]:
                servers.append(_start_server(cmd, cwd, _deployments_file(argv, cwd), line))
                continue
            proc = subprocess.run(
                cmd,
                cwd=cwd,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
            failed = f"{block.where}: `{line}` exited {proc.returncode}\n{proc.stderr[-3000:]}"
            assert proc.returncode == 0, failed
    finally:
        for server in servers:
            _stop_server(server)
    for server in servers:
        assert server.returncode == 0, f"{block.where}: `chains up` exited {server.returncode}"


def _start_server(cmd: list[str], cwd: Path, ready: Path, line: str) -> subprocess.Popen[bytes]:
    """Start a command that runs until Ctrl-C; return once it has written ``ready``."""
    log = cwd / "server.log"
    with log.open("w") as err:
        server = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if server.poll() is not None:
            pytest.fail(f"`{line}` exited {server.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            _stop_server(server)
            pytest.fail(f"`{line}` wrote no {ready} within 120 s")
        time.sleep(0.2)
    return server


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user would; kill only if it does not stop."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- toml --------------------------------------------------------------------------------

TOML_BLOCKS = [
    pytest.param(b, marks=_marks(set(b.marks)), id=b.where)
    for b in ALL_BLOCKS
    if b.language == "toml" and "skip" not in b.marks
]


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_toml_blocks_parse_and_run_configs_load(block: Block, workdir: Path) -> None:
    values = tomllib.loads(block.code)
    if values and set(values) <= RUN_CONFIG_TABLES:
        from aoichain.workflow import load_run_config

        path = workdir / "run.toml"
        path.write_text(block.code)
        load_run_config(path)
