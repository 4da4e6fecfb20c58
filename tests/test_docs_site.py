"""The documentation site (mkdocs.yml) in a real browser: home, a chapter's figures, the API page, Korean, search.

The site is the folder ZEROGRAD_SITE names (.ci/run builds it once with `mkdocs build --strict` and runs this
file with it); without it, the test builds the site itself into a temporary folder (a minute: the notebooks
run), except in CI, where the suite's own run leaves it to .ci/run's. It is served on 127.0.0.1 and opened in
Debian's Chromium driven by Playwright, as tests/test_serve_live.py does for the web page.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mkdocs.exceptions import PluginError
from test_serve_live import browser  # noqa: F401  (the fixture: Debian's Chromium, headless)

from zerograd.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [] if os.environ.get("ZEROGRAD_SITE") else [pytest.mark.slow]  # building runs the notebooks


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("ZEROGRAD_SITE"):
        folder = Path(os.environ["ZEROGRAD_SITE"]).resolve()
        assert (folder / "index.html").is_file(), f"ZEROGRAD_SITE={folder} holds no built site"
        return folder
    if os.environ.get("CI") == "true":
        pytest.skip(".ci/run builds the site once and runs this file with ZEROGRAD_SITE=site")
    folder = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
                           cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def url(site: Path):
    """The site served over HTTP on 127.0.0.1 (its search runs in a web worker, which file:// does not allow)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def page(browser, url):  # noqa: F811  (the fixture imported above)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    assert errors == []  # no script of the site failed
    page.close()


def title(page) -> str:
    """The page's heading, without its permalink sign."""
    return page.locator("article h1").first.inner_text().removesuffix("¶").strip()


def rendered(image) -> bool:
    """The image was fetched and decoded (a broken one has naturalWidth 0)."""
    return image.evaluate("img => img.complete && img.naturalWidth > 0")


def test_home_page(page, url):
    page.goto(url)
    assert page.title().startswith("zerograd")
    assert title(page) == "zerograd"
    tabs = page.locator(".md-tabs__link").all_inner_texts()
    assert tabs == ["Home", "Getting started", "Chapters", "Library", "Guides", "API reference"]
    screenshot = page.locator("article img[src$='serve.png']")
    assert rendered(screenshot)
    page.get_by_role("link", name="Getting started").first.click()
    assert page.url == url + "getting-started/"
    assert title(page) == "Getting started"


def test_a_chapter_page_shows_the_notebook_as_executed(page, url):
    page.goto(url + "chapters/ch03_neural_networks/")
    assert title(page).startswith("Chapter 3")
    # the outputs of the build's run: the book's weights at 0.9352, and the figures matplotlib drew
    assert "Accuracy: 0.9352" in page.locator("article").inner_text()
    figures = page.locator("article img[src^='data:image/png']").all()
    assert len(figures) >= 3 and all(rendered(figure) for figure in figures)
    assert page.locator("article").get_by_text("Traceback").count() == 0


def test_the_api_page_of_conv2d(page, url):
    page.goto(url + "reference/zerograd/nn/#zerograd.nn.Conv2d")
    heading = page.locator("[id='zerograd.nn.Conv2d']")
    assert heading.is_visible()
    entry = page.locator(".doc-class", has=heading)
    signature = entry.locator(".doc-signature").first.inner_text()
    for parameter in ("in_channels: int", "out_channels: int", "kernel_size: int | tuple[int, int]", "stride",
                      "padding", "bias: bool = True"):
        assert parameter in signature
    assert "2-D convolution (the book's Convolution): (N, in_channels, H, W) -> (N, out_channels, OH, OW)." in (
        entry.inner_text())


def _hooks():
    """docs/hooks.py, the site's build hooks, as a module."""
    spec = importlib.util.spec_from_file_location("zerograd_docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_the_command_guide_shows_each_commands_help_as_the_parser_prints_it(page, url):
    page.goto(url + "guides/cli/")
    blocks = [text.strip() for text in page.locator("article pre code").all_inner_texts()]
    hooks = _hooks()
    for command in ["", *COMMANDS]:
        shown = f"$ zerograd {command + ' ' if command else ''}--help\n{hooks.command_help(command).rstrip()}"
        assert shown in blocks, f"the --help of {command or 'zerograd'} is missing from the command guide"
    assert "zerograd-help" not in page.content()  # every marker replaced


def test_a_help_marker_naming_no_command_fails_the_build():
    with pytest.raises(PluginError, match="zerograd has no command 'trian'; its commands are train, evaluate"):
        _hooks().command_help("trian")


def test_the_language_switch_goes_to_the_korean_page_and_back(page, url):
    page.goto(url + "getting-started/")
    page.locator(".md-header__option .md-select").hover()
    page.locator("a[hreflang='ko']").click()
    page.wait_for_url(url + "ko/getting-started/")
    assert page.locator("html").get_attribute("lang") == "ko"
    assert title(page) == "시작하기"
    assert "첫 모델¶" in page.locator("article h2").all_inner_texts()
    assert page.locator(".md-tabs__link").all_inner_texts()[:3] == ["홈", "시작하기", "장별 노트북"]
    page.locator(".md-header__option .md-select").hover()
    page.locator("a[hreflang='en']").click()
    page.wait_for_url(url + "getting-started/")
    assert title(page) == "Getting started"


def test_searching_conv2d_finds_its_api_page(page, url):
    page.goto(url)
    search = page.locator("input.md-search__input")
    search.click()
    search.fill("Conv2d")
    results = page.locator(".md-search-result__item a")
    results.first.wait_for()
    hrefs = [link.get_attribute("href") for link in results.all()]  # with ?h=conv2d: highlight the word there
    [target] = [h for h in hrefs if urlsplit(h)[2:] == ("/reference/zerograd/nn/", "h=conv2d", "zerograd.nn.Conv2d")]
    page.locator(f".md-search-result__item a[href='{target}']").click()
    page.wait_for_url(target)
    assert page.locator("[id='zerograd.nn.Conv2d']").is_visible()
