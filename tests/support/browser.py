"""Debian's chromium, as the browser tests drive it through playwright."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
