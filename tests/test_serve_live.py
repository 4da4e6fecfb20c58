"""`zerograd serve` as a real process on 127.0.0.1: Ctrl-C, and the page in a real browser.

The browser is Debian's Chromium (/usr/bin/chromium, installed by .ci/run) driven by Playwright for
Python; Playwright's own browser download is not used. Outside CI a machine without Chromium skips
the browser test; in CI (CI=true) a missing Chromium fails it.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from _serve_models import COLOURS, encode, save_colour_model, solid
from PIL import Image
from playwright.sync_api import sync_playwright

from zerograd.datasets import load_mnist
from zerograd.models import MLP, save_model
from zerograd.serve import load_served_models

DIGITS = [str(d) for d in range(10)]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Server:
    """`zerograd serve ARGS --port 0` in a subprocess; `url` is the address it prints."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "zerograd", "serve", *args, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True)
        self.reader.start()
        self.stdout = ""
        deadline = time.monotonic() + 60
        while not self.stdout.endswith("(Ctrl-C stops)\n"):
            try:
                self.stdout += lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                _, err = self.stop()
                raise AssertionError(f"zerograd serve printed no address: {self.stdout!r} {err!r}") from None
        self.url = self.stdout.splitlines()[-1].split()[1]
        assert self.url.startswith("http://127.0.0.1:")
        while True:  # the address is printed once the port is bound; wait for the app to answer
            try:
                with urllib.request.urlopen(self.url + "health", timeout=5) as r:
                    assert json.load(r)["status"] == "ok"
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def stop(self, presses: int = 1) -> tuple[int, str]:
        """Ctrl-C (pressed `presses` times), then the exit code and stderr."""
        for i in range(presses):
            if self.proc.poll() is None:
                time.sleep(0.05 if i else 0)  # separate presses, not one signal delivered twice
                self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            err = self.proc.stderr.read()
            self.reader.join(timeout=5)  # it ends at the end of stdout
            self.proc.stdout.close()
            self.proc.stderr.close()
        return self.proc.returncode, err


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_cleanly(presses):
    if presses == 1:
        server = Server()  # no MODEL: the most accurate pretrained model
        [best] = load_served_models([])
        assert server.stdout.startswith(f"model {best.name} ")
    else:  # an impatient user; uvicorn ends at once on the second Ctrl-C
        server = Server("pretrained:book-ch3")
    start = time.monotonic()
    code, err = server.stop(presses)
    assert time.monotonic() - start < 10
    assert code in (0, 130) and "Traceback" not in err
    *notes, last = err.splitlines()
    assert last == "zerograd serve: stopped"
    assert all(line.startswith("zerograd serve: note: pretrained:") for line in notes)  # models left out


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def draw(page, points):
    """One stroke through `points`, in the coordinates of the 280x280 canvas."""
    box = page.locator("#canvas").bounding_box()

    def at(x, y):
        return box["x"] + x * box["width"] / 280, box["y"] + y * box["height"] / 280

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*at(x, y), steps=12)
    page.mouse.up()


def read_prediction(page) -> str:
    page.wait_for_function("document.querySelector('#prediction').textContent !== ''", timeout=15000)
    return page.text_content("#prediction")


def canvas_sums(page) -> list[int]:
    """Sum of the RGB values of #input and #saliency: zero when they are black."""
    return page.evaluate("""['input', 'saliency'].map((id) => {
        const c = document.getElementById(id);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
        return s; })""")


def open_page(browser, server: Server):
    """The page of `server` once its two models are listed, and the list its script errors are collected in."""
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url)
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    return page, errors


def test_page_reads_drawn_and_uploaded_digits(browser, tmp_path):
    linear = tmp_path / "linear.safetensors"  # a second model, for the selector
    save_model(MLP(784, (), 10, seed=3), linear, {"results": {"test_accuracy": 0.5}})
    [best] = load_served_models([])
    server = Server(f"pretrained:{best.name}", str(linear))
    try:
        page, errors = open_page(browser, server)
        options = page.locator("#model option").all_text_contents()
        assert options == [f"{best.name} (test accuracy {best.test_accuracy:.4f})",
                           f"{linear} (test accuracy 0.5000)"]
        assert page.text_content("#prediction") == ""

        draw(page, [(140, 40), (140, 240)])  # a vertical bar
        assert read_prediction(page) == "1"
        assert page.locator("#probabilities .row").count() == 10
        assert page.get_attribute("#probabilities .row.top", "data-digit") == "1"
        # the predicted class's bar is drawn as long as its probability (of the bar's track)
        page.wait_for_function("""() => {
            const row = document.querySelector('#probabilities .row.top');
            const p = parseFloat(row.querySelector('.value').textContent) / 100;
            const drawn = row.querySelector('.bar').getBoundingClientRect().width
                / row.querySelector('.track').getBoundingClientRect().width;
            return p > 0.3 && Math.abs(drawn - p) < 0.02; }""", timeout=5000)
        assert min(canvas_sums(page)) > 0  # the 28x28 input and the saliency map are drawn

        page.click("#clear")
        assert page.text_content("#prediction") == ""
        assert canvas_sums(page) == [0, 0]

        draw(page, [(60, 50), (220, 50), (120, 245)])  # a 7 in one stroke
        assert read_prediction(page) == "7"
        assert page.text_content("#timing").startswith(f"{best.name}: server ")

        page.select_option("#model", str(linear))  # another model reads the same drawing again
        page.wait_for_function(f"document.querySelector('#timing').textContent.startsWith({json.dumps(str(linear))})")
        page.select_option("#model", best.name)
        page.wait_for_function(f"document.querySelector('#timing').textContent.startsWith('{best.name}:')")
        assert page.text_content("#prediction") == "7"

        page.click("#clear")
        _, (x, t) = load_mnist(normalize=False, flatten=False)
        png = tmp_path / "mnist-test-1.png"
        Image.fromarray(x[1, 0]).save(png)
        page.set_input_files("#upload", str(png))
        assert read_prediction(page) == str(t[1]) == "2"
        assert errors == []
    finally:
        code, err = server.stop()
    assert code in (0, 130) and "Traceback" not in err



def test_page_reads_uploaded_colour_images(browser, tmp_path):
    """An image model gets an upload area instead of the drawing canvas, and answers with its class names."""
    colour = save_colour_model(tmp_path / "colour.safetensors")
    server = Server(str(colour), "pretrained:book-ch3")
    try:
        page, errors = open_page(browser, server)
        page.wait_for_function("document.querySelector('#title').textContent === 'Classify an image'")
        assert not page.is_visible("#canvas") and page.is_visible("#drop")  # a colour model gets no canvas
        assert page.locator("#probabilities .row .name").all_text_contents() == ["tomato", "leaf", "sky"]

        red = tmp_path / "red.png"
        red.write_bytes(encode(solid(COLOURS["tomato"])))
        page.set_input_files("#upload", str(red))
        assert read_prediction(page) == "tomato"
        assert page.get_attribute("#probabilities .row.top", "data-class") == "tomato"
        assert page.locator("#probabilities .row").first.get_attribute("data-class") == "tomato"  # sorted
        assert page.is_visible("#preview") and not page.is_visible("#canvas")
        assert min(canvas_sums(page)) > 0  # the 32x32 input and the saliency map are drawn
        assert page.text_content("#input-caption") == "what the model saw (32×32, colour)"

        # dropped on the upload area: a JPEG, this time
        jpeg = base64.b64encode(encode(solid(COLOURS["sky"]), "JPEG")).decode()
        dropped = page.evaluate_handle("""async (b64) => {
            const blob = await (await fetch(`data:image/jpeg;base64,${b64}`)).blob();
            const transfer = new DataTransfer();
            transfer.items.add(new File([blob], 'sky.jpg', { type: 'image/jpeg' }));
            return transfer; }""", jpeg)
        page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        page.wait_for_function("document.querySelector('#prediction').textContent === 'sky'", timeout=15000)

        page.select_option("#model", "book-ch3")  # a digit model: the canvas again, reading the same upload
        page.wait_for_function("document.querySelector('#title').textContent === 'Draw a digit'")
        assert page.is_visible("#canvas") and not page.is_visible("#drop")
        assert page.locator("#probabilities .row .name").all_text_contents() == DIGITS  # 0-9 in order
        # one blue square is no digit: the digit model's message is shown, and no answer
        page.wait_for_function("document.querySelector('#error').textContent !== ''", timeout=15000)
        assert page.text_content("#error").startswith("no digit found in the uploaded image: the image is blank")
        assert page.text_content("#prediction") == ""

        page.select_option("#model", str(colour))
        page.wait_for_function("document.querySelector('#prediction').textContent === 'sky'", timeout=15000)
        assert not page.is_visible("#canvas")
        # the one error the browser logged is the digit model's 400 above: no script error
        assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    finally:
        code, err = server.stop()
    assert code in (0, 130) and "Traceback" not in err
