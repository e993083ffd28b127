"""Fixtures shared by the browser tests."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import CHROMIUM_ARGS
from tests.requirements import require_chromium


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium, closed however the test ends (fails under CI=true if absent)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
