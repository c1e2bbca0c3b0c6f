"""The README's dashboard screenshots, from the demo data as `make run` shows it:

    .venv/bin/python -m tests.dashboard.readme_screenshots [OUT_DIR]   # default docs/img

starts `rapport run --demo-shop` in a temporary data directory on free ports (its own dev server,
worker and API, the demo shop and its journey runs seeded), signs in to the dashboard in headless
Chromium (Debian's, through Playwright) and saves the onboarding journey, the loyalty page and
the contact of the latest onboarding run. Then stops the stack it started."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from store import Store
from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.stack.helpers import ROOT, free_port

TOKEN = "readme-screenshots-admin-token"
READY_SECONDS = 600  # the first start seeds 2,000 contacts and their runs


def start_stack(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    api = free_port()
    command = [
        str(ROOT / ".venv" / "bin" / "rapport"),
        "run",
        "--demo-shop",
        "--data-dir", str(data_dir),
        "--api-port", str(api),
        "--temporal-port", str(free_port()),
        "--ui-port", str(free_port()),
    ]  # fmt: skip
    env = {
        **os.environ,
        "RAPPORT_ADMIN_TOKEN": TOKEN,
        "RAPPORT_PUBLIC_URL": f"http://127.0.0.1:{api}",
    }
    log = (data_dir / "run.log").open("wb")
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )
    url = f"http://127.0.0.1:{api}"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"rapport run stopped: see {data_dir / 'run.log'}")
        try:
            if httpx.get(f"{url}/dashboard/login", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"rapport run was not up after {READY_SECONDS} s: see {data_dir / 'run.log'}")


def stop_stack(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)  # its own session: rapport run and what it started
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


async def screenshots(url: str, contact: str, out: Path) -> None:
    assert CHROMIUM is not None, "no chromium installed (apt-get install chromium)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport=VIEWPORT)).new_page()  # type: ignore[arg-type]
        await page.goto(f"{url}/dashboard")
        await page.get_by_label("Admin token").fill(TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        for path, name in (
            ("/dashboard/journeys/onboarding", "dashboard-journey.png"),
            ("/dashboard/loyalty", "dashboard-loyalty.png"),
            (f"/dashboard/contacts/{contact}", "dashboard-contact.png"),
        ):
            await page.goto(f"{url}{path}")
            # The whole page in one viewport: a full-page capture leaves the sandboxed email
            # frame (another process) blank; a moment for it to paint at the new size.
            height = await page.evaluate("document.documentElement.scrollHeight")
            await page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            if await page.locator("iframe.email").count():
                await page.frame_locator("iframe.email").first.locator("h1").wait_for()
            await page.wait_for_timeout(1000)
            await page.screenshot(path=out / name)
            await page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
            print(out / name)
        await browser.close()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "img").resolve()
    with tempfile.TemporaryDirectory(prefix="rapport-screenshots-") as temporary:
        data_dir = Path(temporary)
        process, url = start_stack(data_dir)
        try:
            store = Store.open(f"sqlite:///{data_dir / 'rapport.db'}")
            latest = store.list_runs("onboarding", limit=1)
            store.close()
            assert latest, "the demo seed made no onboarding run"
            asyncio.run(screenshots(url, latest[0].contact_id, out))
        finally:
            stop_stack(process)


if __name__ == "__main__":
    main()
