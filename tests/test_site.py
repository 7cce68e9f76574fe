"""`make site` (tools/build_site.py): pages of the student edition with the widgets' state, loading nothing online.

The unit tests use small notebooks; the tests marked slow build notebooks 04 and 08 in quick mode (once per
session, tests/support/site.py) and read the pages back: every script, style and picture they load is a file of
the site, the widget state is embedded, no solution is in a page, the index lists the notebooks.
"""

import hashlib
import html
import json
import re
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path

import ipywidgets as widgets
import nbformat
import pytest
from ipywidgets.embed import dependency_state, embed_data
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.support.site import SITE_NOTEBOOKS, quick_site
from tests.support.tools import load_tool

build_site = load_tool("build_site")
make_student = load_tool("make_student")
REPO = Path(__file__).resolve().parent.parent
VENDOR = REPO / "vendor"
LOADING_ATTRIBUTES = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src"),
                      ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data")}


class LoadedUrls(HTMLParser):
    """Every URL a page loads by itself (script/img/iframe src, link href, ...), `links` the <a href> ones."""

    def __init__(self, text):
        super().__init__()
        self.loaded, self.links = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if (tag, name) in LOADING_ATTRIBUTES and value is not None:
                self.loaded.append(value)
            elif (tag, name) == ("a", "href") and value is not None:
                self.links.append(value)


def is_online(url):
    return re.match(r"^(https?:)?//", url.strip(), re.IGNORECASE) is not None


def page_text(page_html):
    """The page as a reader sees it (tags removed, entities decoded), code cells included."""
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


def slider_notebook():
    """A notebook whose one output shows an IntSlider, with the widget state that nbclient would store."""
    slider = widgets.IntSlider(value=3, description="steps")
    data = embed_data(views=[slider], state=dependency_state(slider))  # not every widget of the test session
    notebook = new_notebook(cells=[new_markdown_cell("# 99 · A slider"), new_code_cell("slider")])
    notebook.cells[1].outputs = [new_output("execute_result", execution_count=1, data={
        build_site.VIEW_MIME: data["view_specs"][0], "text/plain": "IntSlider(value=3)"})]
    notebook.metadata.widgets = {build_site.STATE_MIME: data["manager_state"]}
    return notebook, slider.model_id


# ---- unit tests: no notebook is executed ----


def test_every_notebook_has_a_line_in_the_readme_table():
    descriptions = build_site.readme_descriptions((REPO / "README.md").read_text())
    assert sorted(descriptions) == sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb"))
    assert descriptions["04_running_statistics.ipynb"].startswith("`train()` vs `eval()`")


def test_the_title_is_the_first_heading():
    notebook = new_notebook(cells=[new_code_cell("x = 1"), new_markdown_cell("Intro\n# 04 · Running statistics\n")])
    assert build_site.notebook_title(notebook, "04.ipynb") == "04 · Running statistics"
    with pytest.raises(ValueError, match="04.ipynb: no '# ' heading"):
        build_site.notebook_title(new_notebook(cells=[new_markdown_cell("## only a subheading")]), "04.ipynb")


def test_unknown_or_undescribed_notebooks_are_refused():
    descriptions = {"04_running_statistics.ipynb": "x"}
    assert build_site.check_notebooks(["notebooks/04_running_statistics.ipynb"], descriptions) == [
        REPO / "notebooks" / "04_running_statistics.ipynb"]
    with pytest.raises(ValueError, match=r"notebook must be one of \[.*'04_running_statistics.ipynb'.*\], got 'x"):
        build_site.check_notebooks(["x.ipynb"], descriptions)
    with pytest.raises(ValueError, match="05_inference.ipynb has no row in README.md's notebooks table"):
        build_site.check_notebooks(["05_inference.ipynb"], descriptions)


def test_a_folder_the_build_did_not_write_is_not_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="build_site did not write"):
        build_site.fresh_site_folder(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_widgets_without_a_front_end_on_the_page_fall_back_to_their_picture():
    """An ipympl canvas, the box that holds it and an Output showing it go; the slider and layouts stay."""
    def model(module, name, **state):
        return {"model_module": module, "model_name": name, "model_module_version": "*",
                "state": {"_view_module": module, **state}}

    state = {
        "layout": model("@jupyter-widgets/base", "LayoutModel"),
        "slider": model("@jupyter-widgets/controls", "IntSliderModel", layout="IPY_MODEL_layout"),
        "canvas": model("jupyter-matplotlib", "MPLCanvasModel", layout="IPY_MODEL_layout"),
        "box": model("@jupyter-widgets/controls", "VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_canvas"]),
        "output": model("@jupyter-widgets/output", "OutputModel", outputs=[
            {"output_type": "display_data", "data": {build_site.VIEW_MIME: {"model_id": "canvas"}}}]),
        "explorer": model("anywidget", "AnyModel"),
    }
    notebook = new_notebook(cells=[new_code_cell("box"), new_code_cell("slider")])
    notebook.cells[0].outputs = [new_output("display_data", data={
        build_site.VIEW_MIME: {"model_id": "box", "version_major": 2, "version_minor": 0},
        "image/png": "iVBORw0K", "text/plain": "VBox()"})]
    notebook.cells[1].outputs = [new_output("display_data", data={build_site.VIEW_MIME: {"model_id": "slider"}})]
    notebook.metadata.widgets = {build_site.STATE_MIME: {"state": state, "version_major": 2, "version_minor": 0}}

    assert build_site.drop_widgets_without_front_end(notebook) == {"canvas", "box", "output"}
    assert sorted(notebook.metadata.widgets[build_site.STATE_MIME]["state"]) == ["explorer", "layout", "slider"]
    picture, note = notebook.cells[0].outputs
    assert sorted(picture.data) == ["image/png", "text/plain"]
    assert note.data["text/plain"] == build_site.NEEDS_KERNEL
    assert notebook.cells[1].outputs[0].data == {build_site.VIEW_MIME: {"model_id": "slider"}}


def test_a_page_loads_its_scripts_from_vendor_only(tmp_path):
    notebook, model_id = slider_notebook()
    page = build_site.render_page(notebook)
    loaded = LoadedUrls(page).loaded
    assert loaded == ["vendor/requirejs/require.js", "vendor/html-manager/embed-amd.js",
                      "vendor/mathjax/tex-svg-full.js"]
    assert all((REPO / url).is_file() for url in loaded)  # vendor/ is what the build copies beside the pages
    assert '"anywidget": "vendor/anywidget/index"' in page
    assert (VENDOR / "anywidget" / "index.js").is_file()
    state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S)
    assert model_id in json.loads(state.group(1))["state"]
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page), "a page refers to an online resource"


def test_links_to_the_students_docs_point_into_the_site_and_other_repository_links_become_text():
    markdown = ("[how](../docs/how-these-notebooks-run.md#the-run-cache), [cache](../docs/run-cache.md), "
                "[paper](https://arxiv.org/abs/1502.03167), [f](test_images)")
    assert build_site.relink(markdown, "notebooks/04_running_statistics.ipynb") == (
        "[how](docs/how-these-notebooks-run.html#the-run-cache), cache, "
        "[paper](https://arxiv.org/abs/1502.03167), [f](test_images)")
    assert build_site.relink("[back](how-these-notebooks-run.md), [r](../README.md)", "docs/teaching.md") == (
        "[back](how-these-notebooks-run.html), r")
    assert build_site.github_anchor("Notebook-03&#39;s-workers") == "notebook-03s-workers"


def test_the_index_lists_each_page_with_its_title_and_description():
    pages = [{"file": "04_running_statistics.html", "title": "04 · Running <statistics>",
              "description": "`train()` vs `eval()`, the momentum explorer"}]
    index = build_site.render_index(pages, "quick")
    assert '<a href="04_running_statistics.html">04 · Running &lt;statistics&gt;</a>' in index
    assert "<code>train()</code> vs <code>eval()</code>, the momentum explorer" in index
    assert "quick mode" in index and LoadedUrls(index).loaded == []


def vendor_table():
    """{vendored file: its sha256} from vendor/README.md's table."""
    rows = re.findall(r"^\| `([\w./-]+)` \|.*\| `([0-9a-f]{64})` \|$", (VENDOR / "README.md").read_text(), re.M)
    return dict(rows)


def test_vendored_files_are_the_ones_the_readme_names():
    table = vendor_table()
    vendored = sorted(path.relative_to(VENDOR).as_posix() for path in VENDOR.rglob("*.*")
                      if path.suffix in {".js", ".woff2"})
    assert sorted(table) == vendored
    for name, digest in table.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
        assert (VENDOR / name).parent.joinpath("LICENSE").is_file(), f"{name} has no LICENSE beside it"


def test_vendored_anywidget_is_the_installed_packages_front_end():
    import anywidget

    vendored = re.search(r"anywidget (\d+\.\d+\.\d+)", (VENDOR / "README.md").read_text()).group(1)
    if version("anywidget") != vendored:
        pytest.skip(f"anywidget {version('anywidget')} is installed, vendor/ holds {vendored}'s front end")
    installed = Path(anywidget.__file__).parent / "nbextension" / "index.js"
    assert installed.read_bytes() == (VENDOR / "anywidget" / "index.js").read_bytes()


# ---- the site of notebooks 04 and 08, built in quick mode ----


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return quick_site(tmp_path_factory.getbasetemp())


@pytest.mark.slow
def test_the_site_has_a_page_per_notebook_and_an_index(site):
    out, sizes = site
    pages = [Path(name).with_suffix(".html").name for name in SITE_NOTEBOOKS]
    assert sorted(sizes) == sorted([*pages, "index.html"])
    index = (out / "index.html").read_text()
    assert LoadedUrls(index).links == pages
    for name in SITE_NOTEBOOKS:
        title = build_site.notebook_title(nbformat.read(REPO / "notebooks" / name, as_version=4), name)
        assert html.escape(title, quote=False) in index
    for name, size in sizes.items():
        assert (out / name).stat().st_size == size < 20e6, f"{name}: {size / 1e6:.1f} MB"


@pytest.mark.slow
@pytest.mark.parametrize("name", [*(Path(name).with_suffix(".html").name for name in SITE_NOTEBOOKS), "index.html"])
def test_a_page_loads_nothing_online_and_every_file_it_loads_is_in_the_site(site, name):
    out, _ = site
    page = (out / name).read_text()
    loaded = LoadedUrls(page).loaded
    assert [url for url in loaded if is_online(url)] == []
    for url in loaded:
        if not url.startswith("data:"):
            assert (out / url.split("#")[0]).is_file(), f"{name} loads {url}, which the site lacks"
    assert not re.search(r"(@import|url\()\s*[\"']?(https?:)?//", page), "a style loads an online resource"


@pytest.mark.slow
@pytest.mark.parametrize("name", [*(Path(name).with_suffix(".html").name for name in SITE_NOTEBOOKS), "index.html",
                                  "docs/how-these-notebooks-run.html"])
def test_every_link_to_the_site_finds_its_page_and_anchor(site, name):
    out, _ = site
    page = out / name
    local = [link for link in LoadedUrls(page.read_text()).links if not is_online(link) and "://" not in link]
    assert local
    for link in local:
        target, _, anchor = link.partition("#")
        target = page.parent / target if target else page
        assert target.is_file(), f"{name} links to {link}, which the site lacks"
        if anchor:
            assert re.search(f'id="{re.escape(anchor)}"', target.read_text()), f"{name}: no anchor for {link}"


@pytest.mark.slow
def test_the_explorer_page_embeds_its_widgets_and_its_figures(site):
    out, _ = site
    page = (out / "04_running_statistics.html").read_text()
    state = json.loads(re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>',
                                 page, re.S).group(1))["state"]
    modules = {module for model in state.values() for module in build_site.widget_modules(model)}
    assert modules <= build_site.PAGE_MODULES and "anywidget" in modules
    views = re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">\s*(\{.*?\})\s*</script>', page)
    assert views and all(json.loads(view)["model_id"] in state for view in views)
    pictures = [url for url in LoadedUrls(page).loaded if url.startswith("data:image/png;base64,")]
    assert pictures, "no figure inline"


@pytest.mark.slow
def test_no_solution_reaches_a_page(site):
    """Notebook 04's solution lines are not in its page; the stub that replaces them is (so code text is seen)."""
    out, _ = site
    instructor = nbformat.read(REPO / "notebooks" / "04_running_statistics.ipynb", as_version=4)
    removed = [line.strip() for cell in instructor.cells if make_student.is_solution_cell(cell)
               for line in make_student.clear_solution_regions(cell.source)[1]]
    lecture = {line.strip() for cell in make_student.student_notebook(instructor).cells
               for line in cell.source.splitlines()}
    solution_only = [line for line in removed if line and line not in lecture]
    assert solution_only, "notebook 04 should have solution lines to look for"
    text = page_text((out / "04_running_statistics.html").read_text())
    assert make_student.STUB in text
    assert [line for line in solution_only if line in text] == []
