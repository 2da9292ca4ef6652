"""Headless-browser tests of the web UI: playwright-python driving Debian's system Chromium."""
