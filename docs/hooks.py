"""MkDocs build hooks (mkdocs.yml `hooks:`): what the site generates instead of copying by hand.

- The chapter notebooks: `notebooks/*.ipynb` become the pages `chapters/<name>.ipynb`, read from where they are
  (so they execute in `notebooks/`, as tests/test_notebooks.py runs them), in quick mode (ZEROGRAD_QUICK=1)
  on a kernel that is this interpreter.
- The API reference: one page per public module of zerograd (`reference/zerograd/nn/index.md` for the package,
  `reference/zerograd/nn/layers.md` for a module), each object documented once, on the shortest public module
  that exports it; the pages are added to the nav under the entry `reference/index.md`.
- The command guide: `<!-- zerograd-help: train -->` in a page becomes `zerograd train --help` as printed
  by the parser itself (`<!-- zerograd-help: -->` is `zerograd --help`).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import griffe
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REFERENCE = "reference"
HELP_MARKER = re.compile(r"<!--\s*zerograd-help:\s*([\w-]*)\s*-->")
HELP_COLUMNS = "100"  # argparse wraps to $COLUMNS: the same width whatever terminal builds the site


def on_config(config):
    # the notebooks' kernel inherits this environment: quick mode, one BLAS thread, and a kernel that is this
    # interpreter whatever other kernels are installed (as tests/test_notebooks.py sets them)
    os.environ["ZEROGRAD_QUICK"] = "1"
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    work = _work_dir()
    os.environ["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(
        filter(None, [str(work), *os.environ.get("JUPYTER_PATH", "").split(os.pathsep)])))
    # the executed pages are kept for this process only: the Korean build reuses the English build's, `mkdocs
    # serve` executes a notebook again when it changes, and no build reuses the pages of an earlier one
    config.plugins["mkdocs-jupyter"].config["cache_dir"] = str(work / "pages")
    _add_reference_nav(config)
    return config


def _work_dir() -> Path:
    """This process's folder for the kernel spec and the executed pages (removed at exit)."""
    if not os.environ.get("ZEROGRAD_DOCS_WORK"):  # mkdocs serve reloads this module on each rebuild
        from ipykernel.kernelspec import write_kernel_spec

        work = Path(tempfile.mkdtemp(prefix="zerograd-docs-"))
        atexit.register(shutil.rmtree, work, ignore_errors=True)
        write_kernel_spec(work / "kernels" / "python3")  # argv: [sys.executable, "-m", "ipykernel_launcher", ...]
        os.environ["ZEROGRAD_DOCS_WORK"] = str(work)
    return Path(os.environ["ZEROGRAD_DOCS_WORK"])


# ---------------------------------------------------------------------------------------------- generated pages


@event_priority(-200)  # after the i18n plugin (-100) has localised the docs folder's own files
def on_files(files, config):
    """Add the notebooks' and the reference's pages, localised as the i18n plugin localises every file.

    The i18n plugin rebuilds each file from the docs folder, so the pages are added after it, through it.
    """
    sources = {f"chapters/{path.name}": path for path in sorted(NOTEBOOKS.glob("*.ipynb"))}
    sources.update(_reference_pages())
    virtual = Files([File(uri, config.docs_dir, config.site_dir, config.use_directory_urls) for uri in sources])
    i18n = config.plugins["i18n"]
    prefix = "" if i18n.is_default_language_build else f"{i18n.current_language}/"
    localised = i18n.reconfigure_files(virtual, config)
    for file in localised:
        source = sources[file.src_uri]
        if isinstance(source, str):
            file.content_string = source
        else:  # a notebook, read and executed where it is (notebooks/), as tests/test_notebooks.py runs it
            file.abs_src_path = str(source)
    # mkdocs-jupyter makes pages of the notebooks (its own on_files ran before the i18n plugin's)
    for file in config.plugins["mkdocs-jupyter"].on_files(localised, config):
        if file.src_uri.endswith(".ipynb"):
            _localise_notebook_page(file, prefix, config)
        files.append(file)
    return files


def _localise_notebook_page(page_file, prefix: str, config) -> None:
    """mkdocs-jupyter places a notebook's page by its name alone: put it in the language's folder, and point
    the language switch at the other language's page, not at the .ipynb file."""
    def page_url(lang_prefix: str) -> str:
        return f"{lang_prefix}{Path(page_file.src_uri).with_suffix('')}/"

    page_file.abs_src_path = page_file.file.abs_src_path  # the wrapper computes its own from the docs folder
    page_file.dest_path = prefix + page_file.dest_path
    page_file.abs_dest_path = os.path.normpath(os.path.join(config.site_dir, page_file.dest_path))
    page_file.url = page_url(prefix)
    i18n = config.plugins["i18n"]
    for lang, alternate in page_file.alternates.items():
        alternate.url = page_url("" if lang == i18n.default_language else f"{lang}/")


# ---------------------------------------------------------------------------------------------- API reference


def _public_modules() -> list[griffe.Module]:
    """zerograd and every module under it that has no `_` in its path, loaded statically (nothing imported)."""
    package = griffe.load("zerograd", search_paths=[str(ROOT)], resolve_aliases=True,
                          resolve_external=False)
    found, todo = [], [package]
    while todo:
        module = todo.pop()
        found.append(module)
        todo.extend(m for name, m in module.members.items()  # its own submodules, not the modules it imports
                    if not name.startswith("_") and not m.is_alias and m.is_module)
    return sorted(found, key=lambda m: m.path)


def _public_names(module: griffe.Module) -> list[str]:
    """Its `__all__`, or else the public names it defines (not modules: they have their own pages)."""
    if module.exports is not None:
        names = [str(name) for name in module.exports]
    else:
        names = [name for name, member in module.members.items()
                 if not name.startswith("_") and not member.is_alias]
    return [name for name in names if name in module.members and not module.members[name].is_module]


def _canonical(member) -> str:
    try:
        return member.final_target.path if member.is_alias else member.path
    except griffe.AliasResolutionError:
        return member.path


def _owners(modules: list[griffe.Module]) -> dict[str, str]:
    """canonical path -> the public path that documents it: the shortest module exporting it (its home on a tie)."""
    owners: dict[str, tuple] = {}
    for module in modules:
        for name in _public_names(module):
            canonical = _canonical(module.members[name])
            rank = (module.path.count("."), not canonical.startswith(module.path + "."), module.path)
            if canonical not in owners or rank < owners[canonical][0]:
                owners[canonical] = (rank, f"{module.path}.{name}")
    return {canonical: path for canonical, (_, path) in owners.items()}


def _reference_page(module: griffe.Module, owners: dict[str, str]) -> str:
    own, elsewhere = [], []
    for name in _public_names(module):
        documented = owners[_canonical(module.members[name])]
        (own if documented == f"{module.path}.{name}" else elsewhere).append((name, documented))
    members = "[" + ", ".join(name for name, _ in own) + "]" if own else "false"
    lines = [f"::: {module.path}", "    options:", f"      members: {members}", ""]  # its heading is the page's
    if elsewhere:
        lines += ["## Also exported here", "", "Documented on the module that is shortest to import them from:", ""]
        lines += [f"- `{name}`: [`{documented}`][{documented}]" for name, documented in elsewhere]
        lines.append("")
    return "\n".join(lines)


def _reference_index(modules: list[griffe.Module]) -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings, one page per public module. Each class, function and constant is",
             "documented once, on the shortest module that exports it (`zerograd.nn.Conv2d`, not",
             "`zerograd.nn.layers.Conv2d`); the other modules that export it link there.", "",
             "| module | what it is |", "| --- | --- |"]
    for module in modules:
        summary = module.docstring.value.strip().splitlines()[0] if module.docstring else ""
        link = _page_uri(module).removeprefix(f"{REFERENCE}/")
        lines.append(f"| [`{module.path}`]({link}) | {summary.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


_MODULES: list[griffe.Module] | None = None


def _modules() -> list[griffe.Module]:
    global _MODULES
    if _MODULES is None:
        _MODULES = _public_modules()
    return _MODULES


def _page_uri(module: griffe.Module) -> str:
    """reference/zerograd/nn/index.md for a package, reference/zerograd/nn/layers.md for a module: no dots in
    the names, which the i18n plugin would read as a language (zerograd.nn.md: Norwegian Nynorsk)."""
    path = "/".join(module.path.split("."))
    return f"{REFERENCE}/{path}/index.md" if module.is_package else f"{REFERENCE}/{path}.md"


def _reference_pages() -> dict[str, str]:
    """src_uri -> Markdown of the reference's pages: the index, then one page per public module."""
    modules = _modules()
    owners = _owners(modules)
    pages = {f"{REFERENCE}/index.md": _reference_index(modules)}
    pages.update({_page_uri(m): _reference_page(m, owners) for m in modules})
    return pages


def _add_reference_nav(config) -> None:
    """The nav entry `reference/index.md` becomes the reference section: the index, then each module's page."""
    pages = [f"{REFERENCE}/index.md"] + [{m.path: _page_uri(m)} for m in _modules()]
    for i, item in enumerate(config.nav or []):
        if isinstance(item, dict):
            (title, value), = item.items()
            if value == f"{REFERENCE}/index.md":
                config.nav[i] = {title: pages}


# ---------------------------------------------------------------------------------------------- command help


def command_help(command: str) -> str:
    """`zerograd COMMAND --help` (`zerograd --help` for ""), as the parser prints it, 100 columns wide."""
    from zerograd.cli import COMMANDS, build_parser

    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parser = build_parser()
        if command:
            if command not in COMMANDS:
                raise PluginError(f"<!-- zerograd-help: {command} -->: zerograd has no command {command!r}; "
                                  f"its commands are {', '.join(COMMANDS)}")
            [sub] = [a for a in parser._actions if a.dest == "command"]
            parser = sub.choices[command]
        return parser.format_help()
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def on_page_markdown(markdown, page, config, files):
    def block(match: re.Match) -> str:
        command = match.group(1)
        return f"```text\n$ zerograd {command + ' ' if command else ''}--help\n{command_help(command).rstrip()}\n```"

    return HELP_MARKER.sub(block, markdown)
