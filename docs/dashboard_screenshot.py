"""Screenshot a running service's live dashboard in headless Chromium (docs/img/dashboard.png).

    python docs/dashboard_screenshot.py --url http://127.0.0.1:8765 --key change-me-please \
        --out docs/img/dashboard.png

Needs Debian's chromium (/usr/bin/chromium) and the `playwright` package (the dev extra);
it never downloads a browser. The page is opened with the admin key in its URL fragment
(read by the page, never sent to the server) and captured after its first refresh.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service")
    parser.add_argument("--key", required=True, help="the service's --api-key")
    parser.add_argument("--out", default="docs/img/dashboard.png", help="PNG to write")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="browser binary")
    parser.add_argument("--width", type=int, default=1280, help="viewport width (px)")
    args = parser.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 800})
        page.goto(f"{args.url.rstrip('/')}/dashboard#key={args.key}")
        # a selector, not a JS predicate: the page's CSP forbids eval
        page.wait_for_selector("body[data-refreshes]", timeout=30_000)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
