"""Screenshots of each page, kept as test artefacts, and checks that its layout holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
#: the widths every page is checked at: a desktop and a phone
WIDTHS = (1280, 390)

#: elements that stick out of the viewport without a scrolling box around them
_OVERFLOWING = """
() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === "auto" || x === "scroll" || x === "hidden") return true;
    }
    return false;
  };
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if ((r.right > width + 1 || r.left < -1) && !clipped(el)) {
      found.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className} ` +
                 `(${Math.round(r.left)}..${Math.round(r.right)} of ${width})`);
    }
  }
  return {
    found: found.slice(0, 10),
    scrollbar: document.documentElement.scrollWidth > width,
  };
}
"""


def check_page(page: Any, name: str) -> None:
    """Screenshot the page at every width; fail on a horizontal scrollbar, an element
    overflowing the viewport, or a missing main landmark."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            result = page.evaluate(_OVERFLOWING)
            assert not result["scrollbar"], f"{name} at {width}px: a horizontal scrollbar"
            assert not result["found"], f"{name} at {width}px overflows: {result['found']}"
            assert page.locator("main").is_visible(), f"{name}: no main landmark"
            assert page.locator("h1").first.is_visible(), f"{name}: no heading"
            if "login" not in name:
                assert page.locator("nav[aria-label=main]").is_visible(), f"{name}: no nav"
    finally:
        page.set_viewport_size(size)
