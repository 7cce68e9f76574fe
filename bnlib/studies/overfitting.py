"""Overfitting measured as the train − validation gap, as the lecture's curves show it, and what a gap can say.

The train − test gap mixes overfitting with how the test set differs from the training
distribution; the validation images are held out of the training split itself. A gap measured on
N validation images carries their sampling error: the validation accuracy p (a fraction) has a
standard error of sqrt(p (1 − p) / N), 0.2 points at 97 % on 6,000 images. A gap within two
standard errors of 0, on either side, measures no overfitting; it does not show that there is none. A gap
further below 0 means the validation images are easier for the model than its training images.
"""

import math

from bnlib.checks import check_integer, check_number

SAMPLING_ERRORS = 2  # a gap within this many standard errors of 0 is "within sampling error" (about 95 %)


def accuracy_standard_error(accuracy, num_images):
    """The binomial standard error, in points, of an accuracy (in %) measured on `num_images` images."""
    fraction = check_number("accuracy", accuracy, 0, 100) / 100
    return 100 * math.sqrt(fraction * (1 - fraction) / check_integer("num_images", num_images, minimum=1))


def read_gap(gap, standard_error):
    """What one train − validation gap (points) says: "beyond sampling error", "within sampling error of 0" or
    "below 0 beyond sampling error" (validation above train by more than the validation images' luck)."""
    bound = SAMPLING_ERRORS * standard_error
    if gap > bound:
        return "beyond sampling error"
    return "within sampling error of 0" if gap >= -bound else "below 0 beyond sampling error"


def gaps_show_overfitting(gap_a, gap_b):
    """True when at least one train − validation gap is positive: only then is there overfitting to compare.

    A negative gap is not "less overfitting" than a gap of 0: near 0 it is the validation images'
    sampling error, and two gaps that are both at or below 0 show no overfitting to compare.
    """
    return gap_a > 0 or gap_b > 0


# What a gap that is not above 0 beyond sampling error says, by `read_gap`'s reading: (how to say it, what it means).
MEANINGS = {
    "within sampling error of 0": ("within sampling error of 0",
                                   "such a gap measures no overfitting, which does not show that there is none"),
    "below 0 beyond sampling error": ("below 0 by more than sampling error", "the validation images are easier for "
                                      "the model than its training images, which can hide overfitting"),
}  # fmt: skip


def describe_gap_change(gap_without, gap_with, change, standard_error):
    """Two sentences on what `change` did to the train − validation gap of one run each, read against the
    sampling error of the validation accuracy (`standard_error`, points)."""
    gaps = f"{gap_without:+.2f} without, {gap_with:+.2f} with {change}"
    error = (f"±{SAMPLING_ERRORS * standard_error:.2f} points, {SAMPLING_ERRORS} standard errors of the validation "
             "accuracy")  # fmt: skip
    readings = {"without": read_gap(gap_without, standard_error), "with": read_gap(gap_with, standard_error)}
    beyond = [side for side, reading in readings.items() if reading == "beyond sampling error"]
    if len(beyond) == 2:
        smaller = "smaller" if gap_with < gap_without else "not smaller"
        return f"In this run {change} made the gap {smaller} ({gaps}, in points; both beyond sampling error, {error})."
    first = (f"Only the run {beyond[0]} {change} has a gap above 0 beyond sampling error" if beyond
             else "Neither gap is above 0 beyond sampling error")  # fmt: skip
    others = [readings[side] for side in readings if side not in beyond]
    if len(others) == 2 and others[0] == others[1]:
        second = "Both are {}: {}.".format(*MEANINGS[others[0]])
    else:
        second = " ".join(f"{side.capitalize()} {change} the gap is {MEANINGS[readings[side]][0]}: "
                          f"{MEANINGS[readings[side]][1]}." for side in readings if side not in beyond)  # fmt: skip
    return f"{first} ({gaps}, in points; {error}). {second}"
