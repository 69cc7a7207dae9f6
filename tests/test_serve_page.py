"""The page of `gpt2numba serve` in a real headless browser (Debian's chromium, driven by
Playwright): type a prompt, generate, see the streamed text in cyan and the prompt's tokens
coloured by rank (checked against GPT-2 in float64 NumPy). With GPT2NUMBA_UPDATE_SCREENSHOT=1
the screenshot replaces docs/serve.png, the README's picture."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from gpt2numba import GPT2
from gpt2numba.weights import load_tensors
from support import reference
from support.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RANK_CLASSES = {"top10", "top100", "top1000", "beyond"}


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: scripts/test.sh installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 960, "height": 560})
        outside = []
        page.on("request", lambda request: outside.append(request.url)
                if not request.url.startswith(server.url) else None)
        page.goto(server.url + "/")
        yield page
        browser.close()
        assert outside == [], f"the page asked for something elsewhere: {outside}"


def exact_ranks(checkpoint, model, ids):
    """Bounds of each token's rank (ids[1:]) among float64 GPT-2's predictions: 1 + the
    tokens more likely by a clear margin, and 1 + those not clearly less likely."""
    logits = reference.gpt2(np.asarray(ids), load_tensors(checkpoint, model.config), model.config)
    chosen = logits[np.arange(len(ids) - 1), ids[1:]][:, None]
    return (1 + (logits[:-1] > chosen + 1e-4).sum(1), 1 + (logits[:-1] > chosen - 1e-4).sum(1))


def test_the_page_streams_the_continuation_and_colours_the_prompt(page, serve_checkpoint,
                                                                 tmp_path):
    model = GPT2.from_pretrained(serve_checkpoint)
    human = "The quick brown fox jumps over the lazy dog, and then"
    prompt = human + model.generate(human, 12, temperature=0)   # its second half machine-written
    page.fill("#prompt", prompt)
    page.fill("#max_tokens", "24")
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('finished')",
                           timeout=60_000)
    continuation = page.locator("#continuation")
    assert continuation.inner_text() == model.generate(prompt, 24, temperature=0)
    assert continuation.evaluate("e => getComputedStyle(e).color") == "rgb(57, 197, 207)"  # cyan

    tokens = page.locator("#output .token")
    ids = model.tokenizer.encode(prompt)
    assert tokens.count() == len(ids)
    assert "".join(tokens.all_inner_texts()) == prompt
    classes = [set(c.split()) for c in tokens.evaluate_all("ts => ts.map(t => t.className)")]
    assert "first" in classes[0]
    assert all(len(c & RANK_CLASSES) == 1 for c in classes[1:])
    titles = tokens.evaluate_all("ts => ts.map(t => t.title)")
    ranks = [int(title.split("rank ")[1].split(",")[0]) for title in titles[1:]]
    low, high = exact_ranks(serve_checkpoint, model, ids)
    assert all(low <= ranks) and all(ranks <= high), (ranks, low, high)
    for rank, colour in zip(ranks, classes[1:]):
        expected = ("top10" if rank <= 10 else "top100" if rank <= 100
                    else "top1000" if rank <= 1000 else "beyond")
        assert expected in colour
    assert classes[-1] == {"token", "top10"}   # greedy text: each token the model's first choice
    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("GPT2NUMBA_UPDATE_SCREENSHOT"):   # the README's picture, when asked for
        shutil.copyfile(shot, REPO_ROOT / "docs" / "serve.png")


def test_the_page_shows_an_error_of_the_server(page):
    page.fill("#prompt", "Hello")
    page.fill("#top_p", "7")
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').className === 'error'",
                           timeout=60_000)
    assert "top_p" in page.inner_text("#status")
