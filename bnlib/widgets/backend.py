"""Choose matplotlib's notebook backend: ipympl's live widget canvas where it can run, else the inline one.

Notebooks call `use_widget_backend()` instead of a bare `%matplotlib widget`, which stops the notebook where
ipympl is missing (Colab, some VS Code set-ups). `BNLIB_BACKEND=inline` forces the inline backend, because
ipympl can be importable where the frontend cannot show its widgets. `BNLIB_STATIC=1` (the site build sets it)
says the notebook runs for a static page: the widgets embed what they need to work there without a kernel.
"""

import matplotlib

from bnlib.config import env_flag, env_value

BACKEND_ENV = "BNLIB_BACKEND"
STATIC_ENV = "BNLIB_STATIC"
WIDGET_BACKEND = "module://ipympl.backend_nbagg"  # what `%matplotlib widget` selects
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # what `%matplotlib inline` selects


def ipympl_active():
    """True when matplotlib draws through ipympl (`%matplotlib widget`), whose canvas is a live widget."""
    backend = matplotlib.get_backend().lower()
    return backend in {"widget", "ipympl"} or "ipympl" in backend


def inline_forced():
    """True when `BNLIB_BACKEND=inline` asks for static figures (the frontend cannot show live widgets)."""
    return env_value(BACKEND_ENV) == "inline"


def static_page():
    """True when `BNLIB_STATIC` is 1/true/yes: the widgets are made for a page that no kernel will serve."""
    return env_flag(STATIC_ENV)


def browser_figures_enabled():
    """True where the explorer may draw in the browser (bnlib.widgets.browser_display): anywidget imports and
    `BNLIB_BACKEND` is not "inline", or the widgets are made for a static page (which shows no other display)."""
    if inline_forced() and not static_page():
        return False
    try:
        import anywidget  # noqa: F401  (only whether it imports matters)
    except ImportError:
        return False
    return True


def _ipython_shell():
    """The running IPython shell, or None outside IPython (a plain script or a test)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _switch(magic_argument, backend):
    """Select the backend as the `%matplotlib` magic does inside IPython, with `matplotlib.use` outside it."""
    shell = _ipython_shell()
    if shell is not None:
        shell.run_line_magic("matplotlib", magic_argument)
    else:
        matplotlib.use(backend)


def use_widget_backend(verbose=True):
    """Turn on ipympl's widget backend and return "widget"; else the inline backend and return "inline".

    Inline is used when `BNLIB_BACKEND=inline` or ipympl cannot be imported; `verbose` prints one line then.
    """
    forced = inline_forced()
    reason = f"{BACKEND_ENV}=inline" if forced else None
    if not forced:
        try:
            import ipympl  # noqa: F401  (only whether it imports matters)

            _switch("widget", WIDGET_BACKEND)
            return "widget"
        except ImportError as error:
            reason = f"ipympl is not available ({error})"
    _switch("inline", INLINE_BACKEND)
    if verbose:
        print(f"Static matplotlib figures (inline backend): {reason}; the widgets still work.")
    return "inline"
