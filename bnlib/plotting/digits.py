"""Grids of digit images: training digits with their labels, test digits under each input shift.

Each helper takes `figure=None` (a Figure or SubFigure to draw the grid into) and returns it.
"""

from bnlib.plotting.axes import default_figure


def plot_digits(images, labels, count=16, columns=8, figure=None):
    """A grid of the first `count` images (N×1×28×28) with their labels as titles; returns the Figure."""
    rows = -(-count // columns)
    fig = default_figure(figure, figsize=(columns * 1.1, rows * 1.3))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, image, label in zip(axes.flat, images[:count], labels[:count], strict=False):
        ax.imshow(image.squeeze(0).cpu().numpy(), cmap="gray_r")
        ax.set_title(f"label {int(label)}", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"The first {count} training images")
    return fig


def plot_shifted_digits(shifted, labels, count=4, vmax=1.3, figure=None):
    """A grid: one column per shift ({name: images N×1×28×28}), `count` digits down, grey scale 0 to `vmax`; the Figure.

    The shifts are not clipped, so one common scale above 1 shows a brightness offset as brighter.
    """
    fig = default_figure(figure, figsize=(1.6 * len(shifted), 1.5 * count))
    axes = fig.subplots(count, len(shifted), squeeze=False)
    for column, (name, images) in enumerate(shifted.items()):
        for row in range(count):
            ax = axes[row, column]
            ax.imshow(images[row, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if column == 0:
                ax.set_ylabel(f"label {int(labels[row])}", fontsize=9)
    fig.suptitle(f"Test digits under each shift (grey scale 0 to {vmax:g}, pixels not clipped)")
    return fig
