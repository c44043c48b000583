"""The docs point at things that exist: files, anchors, modules, make targets, CLI options.

README.md and docs/*.md name many paths (``ckpt_gui/core/values/lease.py``), dotted
names (``ckpt_gui.core.values.stats.compute_stats``) and links; code moves, and a
manual that names a module which no longer exists misleads every newcomer. Each
check below reads the Markdown as text (fenced code blocks are skipped for links and
headings, but not for paths or make targets) and the code as source (``ast``), so
nothing is imported but the CLI's argument parser.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 300

# Pages other engineers are writing in parallel; a link to one is fine while it does
# not exist yet. Once it exists, links to it (and their anchors) are checked as usual.
NOT_YET_MERGED = frozenset(
    f"docs/{name}.md"
    for name in (
        "shell",
        "development",
        "pickles",
        "gguf",
        "lora",
        "quantization",
        "memory",
        "distributed",
        "robustness",
    )
)

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
BACKTICKS = re.compile(r"`([^`\n]+)`")
# Paths named relative to the repository, and paths inside the package named from
# its rooms (``core/values/lease.py``, ``qt/export/controller.py``).
REPO_DIRS = ("ckpt_gui", "tests", "benchmarks", "scripts", "packaging", "resources", "docs", ".ci")
PACKAGE_ROOMS = ("core", "qt", "commands")
_ROOTS = "|".join(re.escape(d) for d in (*REPO_DIRS, *PACKAGE_ROOMS))
PATH_TOKEN = re.compile(rf"(?<![\w./~-])((?:{_ROOTS})/[\w./*{{}}<>$-]*)")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
DOTTED = re.compile(r"(?<![\w.])ckpt_gui(?:\.[A-Za-z_]\w*)+")
MAKE = re.compile(r"(?<![\w-])make\s+([a-z][\w-]*)")


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def outside_fences(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line that is not inside a fenced code block."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in outside_fences(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(text: str) -> Iterator[tuple[int, str]]:
    for number, line in outside_fences(text):
        # Inline code is not a link: `[x](y)` in backticks is an example.
        plain = BACKTICKS.sub("", line)
        for match in INLINE_LINK.finditer(plain):
            yield number, match.group(1)
        reference = REFERENCE_LINK.match(plain)
        if reference:
            yield number, reference.group(1)


def link_problems(doc: Path, text: str, repo: Path = REPO) -> list[str]:
    problems = []
    for number, target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        where = f"{doc.relative_to(repo)}:{number}: link {target!r}"
        if not path_part:
            if anchor not in anchors(text):
                problems.append(f"{where}: no heading with this anchor here")
            continue
        resolved = (doc.parent / path_part).resolve()
        try:
            relative = resolved.relative_to(repo).as_posix()
        except ValueError:
            problems.append(f"{where}: points outside the repository")
            continue
        if not resolved.exists():
            if relative not in NOT_YET_MERGED:
                problems.append(f"{where}: no such file")
            continue
        if (
            anchor
            and resolved.suffix == ".md"
            and anchor not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{where}: {relative} has no heading with this anchor")
    return problems


def path_problems(doc: Path, text: str, repo: Path = REPO) -> list[str]:
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        line = LINK_TARGET.sub("]", line)  # link targets are checked as links
        for match in PATH_TOKEN.finditer(line):
            token = match.group(1).rstrip(".,;:")
            if any(c in token for c in "*{<$"):  # a pattern or a placeholder, not a path
                continue
            room = token.split("/", 1)[0]
            relative = f"ckpt_gui/{token}" if room in PACKAGE_ROOMS else token
            if relative in NOT_YET_MERGED or (repo / relative).exists():
                continue
            problems.append(f"{doc.relative_to(repo)}:{number}: {token!r} does not exist")
    return problems


@cache
def module_source(dotted: str, repo: Path = REPO) -> ast.Module | None:
    base = repo.joinpath(*dotted.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return ast.parse(candidate.read_text(encoding="utf-8"))
    return None


def defined_names(body: Iterable[ast.stmt]) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, ast.If | ast.Try):  # guarded definitions count too
            names.update(defined_names(node.body))
            for handler in getattr(node, "handlers", []):
                names.update(defined_names(handler.body))
            names.update(defined_names(node.orelse))
    return names


def class_members(node: ast.ClassDef) -> set[str]:
    members = set(defined_names(node.body))
    for inner in ast.walk(node):  # attributes set on self in any method
        if (
            isinstance(inner, ast.Attribute)
            and isinstance(inner.value, ast.Name)
            and inner.value.id == "self"
        ):
            members.add(inner.attr)
    return members


def dotted_problem(dotted: str, repo: Path = REPO) -> str | None:
    """Why ``ckpt_gui.x.y[.attr...]`` names nothing, or None when it names something."""
    parts = dotted.split(".")
    for split in range(len(parts), 1, -1):
        module = module_source(".".join(parts[:split]), repo)
        if module is None:
            continue
        rest = parts[split:]
        if not rest:
            return None
        scope: dict[str, ast.AST] | set[str] = defined_names(module.body)
        for position, name in enumerate(rest):
            if name not in scope:
                owner = ".".join(parts[: split + position])
                return f"{owner} defines no {name!r}"
            node = scope[name] if isinstance(scope, dict) else None
            if not isinstance(node, ast.ClassDef):
                return None  # a function's or a value's attributes are not followed
            scope = class_members(node)
        return None
    return "no such module"


def dotted_problems(doc: Path, text: str, repo: Path = REPO) -> list[str]:
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in DOTTED.finditer(line):
            why = dotted_problem(match.group(0), repo)
            if why:
                problems.append(f"{doc.relative_to(repo)}:{number}: {match.group(0)}: {why}")
    return problems


def make_targets(repo: Path = REPO) -> set[str]:
    makefile = (repo / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w-]*)\s*:(?!=)", makefile, re.MULTILINE))


def make_problems(doc: Path, text: str, repo: Path = REPO) -> list[str]:
    targets = make_targets(repo)
    prose = dict(outside_fences(text))
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        # In prose only inline code counts; in a code block, a line that runs make.
        code_line = number not in prose and re.match(r"^\s*(\w+=\S+\s+)*make\s", line)
        spans = BACKTICKS.findall(line) if number in prose else [line] if code_line else []
        for span in spans:
            for target in MAKE.findall(span):
                if target not in targets:
                    problems.append(f"{doc.relative_to(repo)}:{number}: no make target {target!r}")
    return problems


def cli_options() -> dict[str, set[str]]:
    """Every verb (``export convert``...) with its long options, from the real parsers."""
    from ckpt_gui.cli import build_gui_parser, build_parser

    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, verb: str) -> None:
        options = found.setdefault(verb, set())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{verb} {name}".strip())
            options.update(o for o in action.option_strings if o.startswith("--") and o != "--help")

    walk(build_parser(), "")
    found.pop("", None)
    found["(app)"] = {
        o
        for a in build_gui_parser()._actions
        for o in a.option_strings
        if o.startswith("--") and o != "--help"
    }
    return found


# --- the checks on the real docs ------------------------------------------------


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_paths_and_names_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    problems = [
        *link_problems(doc, text),
        *path_problems(doc, text),
        *dotted_problems(doc, text),
        *make_problems(doc, text),
    ]
    assert not problems, "\n".join(problems)


def test_readme_stays_short() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the manual goes in docs/"


def test_readme_quick_start_is_the_makefile() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    assert {"run", "test"} <= make_targets()


def test_every_cli_verb_and_option_is_documented() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "docs").glob("*.md"))
    missing = []
    for verb, options in cli_options().items():
        if verb != "(app)" and f"ckpt-gui {verb}" not in docs:
            missing.append(f"verb `ckpt-gui {verb}`")
        missing += [f"{verb}: {option}" for option in sorted(options) if option not in docs]
    assert not missing, "undocumented in docs/: " + ", ".join(missing)


def test_architecture_page_names_every_room() -> None:
    """A new subpackage of core/ or qt/ gets its paragraph in docs/architecture.md."""
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        f"{layer}/{room.name}/"
        for layer in ("core", "qt")
        for room in sorted((REPO / "ckpt_gui" / layer).iterdir())
        if (room / "__init__.py").is_file() and f"**`{room.name}/`**" not in page
    ]
    assert not missing, f"docs/architecture.md has no paragraph for {missing}"


# --- the checker itself finds what it should -------------------------------------


def test_checker_catches_broken_links_paths_and_names(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "ckpt_gui" / "core").mkdir(parents=True)
    (tmp_path / "ckpt_gui" / "__init__.py").write_text("")
    (tmp_path / "ckpt_gui" / "core" / "__init__.py").write_text("")
    (tmp_path / "ckpt_gui" / "core" / "jobs.py").write_text(
        "class Progress:\n    def __init__(self):\n        self.done = 0\n\ndef run(): ...\n"
    )
    (tmp_path / "Makefile").write_text("run: x\n\techo\nSTAMP := y\n")
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Second part\n")
    doc = tmp_path / "README.md"
    text = "\n".join(
        [
            "# Title",
            "[ok](docs/a.md) [ok](docs/a.md#second-part) [ok](#title) [web](https://x.org/y)",
            "[gone](docs/missing.md) [bad anchor](docs/a.md#third) [bad](#nowhere)",
            "[later](docs/shell.md)",
            "```",
            "[in a fence](docs/fenced.md)",
            "```",
            "`ckpt_gui/core/jobs.py` `core/jobs.py` `ckpt_gui/core/old.py` `qt/gone.py` `core/{a,b}.py`",
            "ckpt_gui.core.jobs.Progress.done ckpt_gui.core.jobs.run ckpt_gui.core.jobs.Gone",
            "ckpt_gui.core.missing ckpt_gui.core.jobs.Progress.nothing",
            "`make run` `make bench`",
            "make sure prose is not a command",
            "```sh",
            "SKIP_INSTALL=1 make run",
            "make bench  # in a code block",
            "```",
        ]
    )
    problems = "\n".join(
        [
            *link_problems(doc, text, tmp_path),
            *path_problems(doc, text, tmp_path),
            *dotted_problems(doc, text, tmp_path),
            *make_problems(doc, text, tmp_path),
        ]
    )
    for expected in (
        "'docs/missing.md': no such file",
        "'docs/a.md#third': docs/a.md has no heading",
        "'#nowhere': no heading",
        "'ckpt_gui/core/old.py' does not exist",
        "'qt/gone.py' does not exist",
        "ckpt_gui.core.jobs.Gone: ckpt_gui.core.jobs defines no 'Gone'",
        "ckpt_gui.core.missing: ckpt_gui.core defines no 'missing'",
        "ckpt_gui.core.jobs.Progress.nothing: ckpt_gui.core.jobs.Progress defines no 'nothing'",
        "README.md:11: no make target 'bench'",
        "README.md:15: no make target 'bench'",
    ):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
    assert len(problems.splitlines()) == 10, problems  # and nothing that exists is reported


def test_slugs_follow_github() -> None:
    assert slug("Will this checkpoint load? (`ckpt-gui check`)") == (
        "will-this-checkpoint-load-ckpt-gui-check"
    )
    assert slug("Speed: shipped templates and the description cache") == (
        "speed-shipped-templates-and-the-description-cache"
    )
    assert anchors("# Speed\n## Speed\n```\n# not a heading\n```\n") == {"speed", "speed-1"}
