"""Build the static site: one HTML page per notebook of the student edition, executed, with its widgets embedded.

usage: python tools/build_site.py [--quick] [--out build/site] [NOTEBOOK.ipynb ...]   (default: every notebook)

Each notebook goes through tools/make_student.py (no solution reaches a page), runs in a fresh kernel with nbclient
keeping the widgets' state (full mode, answered from the run cache, unless --quick or BNLIB_QUICK=1), and becomes
`<name>.html` through tools/site_template/, whose scripts all come from vendor/ (copied beside the pages): no page
loads anything from the network, and the site works from disk or any static host. Widgets whose front end the page
lacks (a module other than ipywidgets' and anywidget, and every widget that holds one) fall back to the picture
their output carries.
index.html lists the notebooks: the title is each notebook's first heading, the line the README's table gives it.
The students' docs pages (make_release.DOCS) come along as docs/<name>.html, so the notebooks' links to them work.
"""

import argparse
import html
import importlib.util
import os
import re
import shutil
import sys
import time
from pathlib import Path

import jinja2
import nbformat
from markupsafe import Markup
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bnlib.config import QUICK_ENV, env_flag  # noqa: E402
from bnlib.files import make_folder, write_atomic  # noqa: E402
from bnlib.widgets.backend import BACKEND_ENV, STATIC_ENV  # noqa: E402
from bnlib.widgets.live import LIVE_ENV  # noqa: E402


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student = _load_tool("make_student")
make_release = _load_tool("make_release")  # its DOCS: the pages for students, which the site shows too

NOTEBOOK_DIR = REPO / "notebooks"
VENDOR_DIR = REPO / "vendor"
TEMPLATE_DIR = REPO / "tools" / "site_template"
MARK = ".site"  # written into the site folder: the proof that this tool wrote a folder it may replace
STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
# The widget modules the page can draw: html-manager's own and anywidget (vendor/anywidget, a requirejs path).
PAGE_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output", "anywidget"}
NEEDS_KERNEL = "Run the notebook to use this."
README_ROW = re.compile(r"^\| `(?P<name>\d\d_\w+\.ipynb)` \| (?P<description>.+?) \|", re.MULTILINE)  # its 2nd column


def readme_descriptions(readme_text):
    """{notebook file name: its one-line description (markdown)} from the README's table of the notebooks."""
    return {match["name"]: match["description"] for match in README_ROW.finditer(readme_text)}


def notebook_title(notebook, name):
    """The text of the notebook's first markdown heading ("# 04 · Running statistics: ..."), without the "#"."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError(f"{name}: no '# ' heading in its markdown cells; a page needs a title")


def execute(notebook, quick, timeout=None):
    """Run `notebook` (changed in place) in a fresh python3 kernel started in notebooks/, keeping the widget state.

    The kernel gets this process's environment (BNLIB_CACHE_DIR, BNLIB_DATA_DIR pass through) with quick or full
    mode, live curves off (nobody watches them), BNLIB_STATIC=1 (the widgets embed what they need without a
    kernel) and the inline backend (figures as pictures: the page has no front end for ipympl's canvas).
    """
    env = os.environ | {QUICK_ENV: "1" if quick else "0", LIVE_ENV: "0", STATIC_ENV: "1", BACKEND_ENV: "inline"}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute(env=env)
    return notebook


def widget_modules(model):
    """The JavaScript modules a widget model's front end comes from (its model's and its view's)."""
    state = model.get("state", {})
    return {model.get("model_module"), state.get("_view_module")} - {None}


def models_without_front_end(state):
    """Ids of the models the page cannot draw: a module outside PAGE_MODULES, or a reference to such a model."""
    missing = {model_id for model_id, model in state.items() if widget_modules(model) - PAGE_MODULES}
    while True:  # a container of a missing model is missing too, and so on up
        references = {f"IPY_MODEL_{model_id}" for model_id in missing} | missing
        more = {model_id for model_id, model in state.items() if model_id not in missing
                and any(text in references for text in make_student.strings_in(model["state"]))}
        if not more:
            return missing
        missing |= more


def drop_widgets_without_front_end(notebook):
    """Remove the models the page cannot draw from the stored widget state (one would stop every widget of the
    page from loading); their outputs show their other forms (a picture where they carry one) and the line
    "Run the notebook to use this.". Returns the ids removed.
    """
    state = notebook.metadata.get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    missing = models_without_front_end(state)
    for model_id in missing:
        state.pop(model_id)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [kept for output in cell.outputs for kept in _without_view(output, missing)]
    return missing


def _without_view(output, missing):
    """[output], or [output without its widget view, a "run the notebook" note] when its widget is `missing`."""
    view = output.get("data", {}).get(VIEW_MIME)
    if view is None or view["model_id"] not in missing:
        return [output]
    del output.data[VIEW_MIME]
    paragraph = f'<p class="bnlib-needs-kernel">{NEEDS_KERNEL}</p>'
    note = nbformat.v4.new_output("display_data", data={"text/html": paragraph, "text/plain": NEEDS_KERNEL})
    return [output, note]


def render_page(notebook):
    """The notebook as one HTML page (tools/site_template: JupyterLab's look, scripts from vendor/)."""
    exporter = HTMLExporter(template_name=TEMPLATE_DIR.name, extra_template_basedirs=[str(TEMPLATE_DIR.parent)])
    body, _ = exporter.from_notebook_node(notebook)
    return body


def site_path(path):
    """Where the site shows a repository file: notebooks/<name>.ipynb at the top, docs/<name>.md as docs/<name>.html."""
    path = Path(path)
    return Path(path.name if path.parent.name == "notebooks" else path.parent / path.name).with_suffix(".html")


def relink(markdown, source):
    """`markdown` of the repository file `source` with each link to one of make_release.DOCS pointing at its page in
    the site, and each other link to a file of the repository reduced to its text (the site has no copy)."""
    def replace(match):
        text, target, fragment = match.group(1), match.group(2), match.group(3) or ""
        if "://" in target or target.startswith(("#", "mailto:")):
            return match.group(0)
        linked = (REPO / source).parent.joinpath(target).resolve()
        if not linked.is_file():
            return match.group(0)  # not a file: a code expression in brackets, or a link checked elsewhere
        if linked.relative_to(REPO).as_posix() not in make_release.DOCS:
            return text
        href = os.path.relpath(site_path(linked.relative_to(REPO)), site_path(source).parent)
        return f"[{text}]({Path(href).as_posix()}{fragment})"

    return make_release.MARKDOWN_LINK.sub(replace, markdown)


def render_doc(source):
    """A docs page (markdown) as HTML, its links made to work in the site."""
    markdown = relink((REPO / source).read_text(), source)
    title = next(line[2:] for line in markdown.splitlines() if line.startswith("# "))
    # nbconvert's heading ids keep case and punctuation ("Notebook-03's-workers"); links use GitHub's anchors
    body = re.sub(r'(id="|href="#)([^"]+)"', lambda match: match.group(1) + github_anchor(match.group(2)) + '"',
                  markdown2html_mistune(markdown))
    return _site_template("site_doc.html.j2").render(title=title, body=Markup(body))


def github_anchor(heading_id):
    """The anchor GitHub gives a heading ("Notebook 03's workers" -> "notebook-03s-workers"), from nbconvert's id."""
    return re.sub(r"[^\w-]", "", html.unescape(heading_id).lower())


def _site_template(name):
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True)
    return environment.get_template(name)


def render_index(pages, mode):
    """index.html: the table of `pages` ([{"file", "title", "description"}]) and how the pages were made."""
    template = _site_template("site_index.html.j2")
    rows = [page | {"description": Markup(markdown2html_mistune(page["description"]))}
            for page in pages]
    return template.render(pages=rows, mode=mode, built=time.strftime("%Y-%m-%d"))


def check_notebooks(names, descriptions):
    """The notebook paths for `names` (None: every notebook); ValueError for an unknown one or one the README's
    table leaves out (the index needs its line)."""
    known = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
    names = known if not names else [Path(name).name for name in names]
    for name in names:
        if name not in known:
            raise ValueError(f"notebook must be one of {known}, got {name!r}")
        if name not in descriptions:
            raise ValueError(f"{name} has no row in README.md's notebooks table; add one (the index shows it)")
    return [NOTEBOOK_DIR / name for name in names]


def fresh_site_folder(out):
    """An empty build folder beside `out` (the site replaces `out` only when complete); refuses to replace a
    folder that this tool did not write."""
    if out.exists() and any(out.iterdir()) and not (out / MARK).is_file():
        raise FileExistsError(f"{out} holds files that build_site did not write; choose another --out")
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    return make_folder(partial)


def build_site(out, names=None, quick=False, timeout=None, verbose=False):
    """Write the site to `out`: a page per notebook (all of them, or `names`), index.html and vendor/.

    Returns {page file name: its size in bytes}, index.html included.
    """
    out = Path(out).resolve()
    descriptions = readme_descriptions((REPO / "README.md").read_text())
    paths = check_notebooks(names, descriptions)
    partial = fresh_site_folder(out)
    shutil.copytree(VENDOR_DIR, partial / "vendor", ignore=shutil.ignore_patterns("README.md"))
    pages = []
    for path in paths:
        started = time.monotonic()
        notebook = make_student.student_notebook(nbformat.read(path, as_version=4), path.name)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = relink(cell.source, path.relative_to(REPO))
        execute(notebook, quick, timeout)
        drop_widgets_without_front_end(notebook)
        page = path.with_suffix(".html").name
        write_atomic(partial / page, render_page(notebook).encode())
        pages.append({"file": page, "title": notebook_title(notebook, path.name),
                      "description": descriptions[path.name]})
        if verbose:
            print(f"{page}: {(partial / page).stat().st_size / 1e6:.1f} MB in {time.monotonic() - started:.0f} s")
    for doc in make_release.DOCS:
        make_folder((partial / site_path(doc)).parent)
        write_atomic(partial / site_path(doc), render_doc(doc).encode())
    write_atomic(partial / "index.html", render_index(pages, "quick" if quick else "full").encode())
    write_atomic(partial / MARK, b"written by tools/build_site.py\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return {page["file"]: (out / page["file"]).stat().st_size for page in pages} | {
        "index.html": (out / "index.html").stat().st_size}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook file names (default: every notebook)")
    parser.add_argument("--out", default=str(REPO / "build" / "site"), help="the site folder (default build/site)")
    parser.add_argument("--quick", action="store_true", default=env_flag(QUICK_ENV),
                        help="run in quick mode (default: BNLIB_QUICK, else full mode)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    sizes = build_site(args.out, args.notebooks, quick=args.quick, verbose=True)
    print(f"{args.out}: {len(sizes) - 1} pages, {sum(sizes.values()) / 1e6:.1f} MB of HTML "
          f"in {time.monotonic() - started:.0f} s ({'quick' if args.quick else 'full'} mode)")


if __name__ == "__main__":
    main()
