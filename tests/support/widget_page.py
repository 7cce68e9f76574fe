"""One anywidget rendered by its own JS in headless Chromium, on a stand-in for the widget model, with no kernel.

The stand-in holds the widget's state as the kernel would send it (bytes as DataViews) and fires `change:<name>`
events on `set`, as a widget manager's model does; `save_changes` sends nothing, as on a static page. Tests read
the DOM back and set traits as a front-end link (jslink) would.
"""

import base64
import json
from contextlib import contextmanager

from ipywidgets.widgets.widget import _remove_buffers

from tests.support.lab_server import chromium_browser

STAND_IN_MODEL = """
async ([source, state, paths, buffers]) => {
  for (const [index, path] of paths.entries()) {  // put the bytes back where they were, as DataViews
    const bytes = Uint8Array.from(atob(buffers[index]), (c) => c.charCodeAt(0));
    let place = state;
    for (const key of path.slice(0, -1)) place = place[key];
    place[path[path.length - 1]] = new DataView(bytes.buffer);
  }
  const handlers = {};
  window.model = {
    get: (name) => state[name],
    set: (name, value) => { state[name] = value; (handlers[`change:${name}`] || []).forEach((f) => f()); },
    on: (events, f) => events.split(" ").forEach((e) => (handlers[e] = handlers[e] || []).push(f)),
    off: () => {}, save_changes: () => {}, send: () => {},
  };
  const module = await import(`data:text/javascript;base64,${source}`);
  window.el = document.createElement("div");
  document.body.appendChild(window.el);
  await module.default.render({ model: window.model, el: window.el });
}
"""


class WidgetPage:
    """The rendered widget: `text`/`attribute` of an element, `set` a trait, `click`, `canvas_pixels`, `evaluate`."""

    def __init__(self, page):
        self.page = page

    def evaluate(self, expression, argument=None):
        return self.page.evaluate(expression, argument)

    def set(self, name, value):
        self.page.evaluate("([name, value]) => window.model.set(name, value)", [name, value])

    def text(self, selector):
        return self.page.locator(selector).text_content()

    def attribute(self, selector, name):
        return self.page.locator(selector).get_attribute(name)

    def click(self, selector):
        self.page.locator(selector).click()

    def canvas_pixels(self, selector):
        """The canvas as a PNG data URL, once something has been drawn on it."""
        self.page.wait_for_function(f"document.querySelector({selector!r}).width > 0", timeout=10_000)
        return self.page.evaluate(f"document.querySelector({selector!r}).toDataURL()")


@contextmanager
def widget_page(widget):
    """A WidgetPage showing `widget` (an anywidget) rendered from its current state; skips without Chromium."""
    state, paths, buffers = _remove_buffers(widget.get_state())
    source = base64.b64encode(state.pop("_esm").encode()).decode()
    encoded = [base64.b64encode(bytes(buffer)).decode() for buffer in buffers]
    state = json.loads(json.dumps(state))  # plain JSON, as the page receives it
    with chromium_browser() as browser:
        page = browser.new_page()
        page.evaluate(STAND_IN_MODEL, [source, state, paths, encoded])
        yield WidgetPage(page)
