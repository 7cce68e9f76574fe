"""The drift player made for a static page (BNLIB_STATIC=1): one picture per checkpoint, flipped in the browser."""

import base64
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from bnlib.widgets.backend import STATIC_ENV
from bnlib.widgets.drift_player import DriftPlayer
from bnlib.widgets.frames_display import FramesDisplay
from tests.support.widget_page import widget_page
from tests.test_drift_player import STEPS, drift_samples


@pytest.fixture
def samples():
    return drift_samples()


def make_player(samples, monkeypatch, static):
    if static:
        monkeypatch.setenv(STATIC_ENV, "1")
    else:
        monkeypatch.delenv(STATIC_ENV, raising=False)
    player = DriftPlayer(STEPS, samples, bins=20)
    plt.close(player.figure)
    return player


def pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_each_frame_is_the_picture_the_kernel_draws_at_its_checkpoint(samples, monkeypatch):
    static = make_player(samples, monkeypatch, static=True)
    live = make_player(samples, monkeypatch, static=False)
    frames = static.display.widget
    assert isinstance(static.display, FramesDisplay) and frames in static.children
    assert frames.steps == STEPS.tolist() and len(frames.frames) == len(frames.captions) == len(STEPS)
    for index, step in enumerate(STEPS):
        live.step.value = int(step)
        np.testing.assert_array_equal(pixels(base64.b64decode(frames.frames[index])), pixels(live.display.png()))
        assert frames.captions[index] == "; ".join(bars.axes.get_title() for bars in live.bars.values())
    assert f"step {STEPS[2]}: median" in frames.captions[2]


def test_the_slider_and_play_reach_the_frames_in_the_browser(samples, monkeypatch):
    player = make_player(samples, monkeypatch, static=True)
    links = {(link.source, link.target) for link in (player.display.link, player.play_link)}
    assert links == {((player.step, "value"), (player.display.widget, "step")),
                     ((player.play, "value"), (player.step, "value"))}
    player.step.value = 150  # a kernel driving it still moves the frame
    assert player.display.widget.step == 150 and player.last_error is None


def test_the_browser_shows_the_frame_at_or_before_the_step(samples, monkeypatch):
    frames = make_player(samples, monkeypatch, static=True).display.widget
    with widget_page(frames) as page:
        for step, index in ((0, 0), (49, 0), (50, 1), (199, 3), (200, 4)):
            page.set("step", step)
            assert page.attribute("img.bnlib-frame", "data-step") == str(STEPS[index])
            assert page.attribute("img.bnlib-frame", "alt") == frames.captions[index]
            assert page.attribute("img.bnlib-frame", "src") == f"data:image/png;base64,{frames.frames[index]}"
        width = "(async () => { const image = document.querySelector('img.bnlib-frame'); await image.decode(); " \
                "return image.naturalWidth; })()"
        assert page.evaluate(width) == pixels(
            base64.b64decode(frames.frames[4])).shape[1]  # the PNG decodes in the browser


def test_a_live_kernel_draws_as_before(samples, monkeypatch):
    player = make_player(samples, monkeypatch, static=False)
    assert not isinstance(player.display, FramesDisplay) and not hasattr(player, "play_link")
