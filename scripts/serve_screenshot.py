"""Screenshot of `zerograd serve`'s page for the README, and how long a prediction takes.

Starts `zerograd serve` (the default model) on a free port, draws a digit in Debian's headless Chromium
through Playwright, saves the page as a PNG (palette-quantised, to keep it small), then times ROUNDS
predictions of the drawn digit: the server's own time (its Server-Timing header) and the browser's
round trip (fetch to parsed JSON). Needs zerograd[serve], playwright and /usr/bin/chromium.

    python scripts/serve_screenshot.py docs/serve.png
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
import urllib.request

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# One stroke that reads as a 3, in the 280x280 canvas's coordinates.
THREE = [(80, 60), (120, 40), (175, 45), (200, 80), (185, 115), (140, 135), (190, 155), (205, 195), (180, 235),
         (125, 245), (80, 225)]
TIMED = """async (rounds) => {
    const image = document.getElementById('canvas').toDataURL('image/png');
    const out = [];
    for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        const r = await fetch('/api/predict', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                              body: JSON.stringify({image})});
        await r.json();
        const trip = performance.now() - t0;
        out.push([trip, Number(/dur=([\\d.]+)/.exec(r.headers.get('Server-Timing'))[1])]);
    }
    return out;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--rounds", type=int, default=50, help="timed predictions")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "zerograd", "serve", "--port", "0"], stdout=subprocess.PIPE,
                              text=True)
    try:
        lines = [server.stdout.readline() for _ in range(2)]
        while not lines[-1].startswith("open "):
            lines.append(server.stdout.readline())
        url = lines[-1].split()[1]
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "health", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 980, "height": 540})
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#model option').length > 0")
            box = page.locator("#canvas").bounding_box()
            page.mouse.move(box["x"] + THREE[0][0], box["y"] + THREE[0][1])
            page.mouse.down()
            for x, y in THREE[1:]:
                page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
            page.mouse.up()
            page.wait_for_function("document.querySelector('#prediction').textContent !== ''")
            time.sleep(0.3)  # let the bars finish their transition
            shot = Image.open(io.BytesIO(page.screenshot()))
            shot.convert("RGB").quantize(colors=64).save(args.out, optimize=True)
            print(f"read {page.text_content('#prediction')}; {page.text_content('#timing')}")
            times = page.evaluate(TIMED, args.rounds)
            browser.close()
        trips, servers = zip(*times)
        print(f"{args.rounds} predictions ({lines[0].strip()}): server median {statistics.median(servers):.1f} ms "
              f"(min {min(servers):.1f}, max {max(servers):.1f}); browser round trip median "
              f"{statistics.median(trips):.1f} ms (min {min(trips):.1f}, max {max(trips):.1f})")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
