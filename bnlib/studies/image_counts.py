"""Accuracy differences counted in test images, and whether a sign test could call them more than noise.

Two models scored on the same test images differ only on the images where one is right and the other
wrong. If neither is better, each such image favours either model with probability 1/2: the exact
sign test (McNemar's test in its exact form). For a net difference of k images its two-sided p-value
is smallest when every disagreement favours one side, 2 · 0.5^k, and grows with the number of
disagreements, which is at most the two models' errors added up (every error of one on an image the
other gets right). From two accuracies alone, then: a net difference below `fewest_decisive_images`
(6 images at alpha = 0.05) is noise, and one that the test rejects with the most disagreements the
errors allow is not; in between, only the disagreements themselves can tell.
"""

from scipy import stats

from bnlib.checks import check_integer, check_number


def images_in(points, num_images):
    """The number of images (an int) that `points` percentage points are out of `num_images` images."""
    check_integer("num_images", num_images, minimum=1)
    return round(check_number("points", points, -100, 100) * num_images / 100)


def sign_test_p_value(wins, losses):
    """Two-sided exact sign test: the p-value of `wins` images against `losses` when each side has probability 1/2."""
    check_integer("wins", wins, minimum=0)
    check_integer("losses", losses, minimum=0)
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def fewest_decisive_images(alpha=0.05):
    """The smallest net difference k (images) that a sign test can call significant at `alpha`: 2 · 0.5^k < alpha."""
    check_number("alpha", alpha, 0, 1, low_open=True, high_open=True)
    k = 1
    while 2 * 0.5**k >= alpha:
        k += 1
    return k


def largest_p_value(accuracy, baseline, num_images):
    """The largest sign-test p-value that two accuracies (%) on the same `num_images` images allow.

    That is with the most disagreements they allow: every error of one on an image the other gets right.
    """
    errors, baseline_errors = (images_in(100 - value, num_images) for value in (accuracy, baseline))
    return sign_test_p_value(baseline_errors, errors)


def describe_accuracy_difference(accuracy, baseline, num_images, alpha=0.05):
    """`accuracy` − `baseline` (both % on the same `num_images` test images) in images, and what a sign test can say."""
    images, decisive = images_in(accuracy - baseline, num_images), fewest_decisive_images(alpha)
    counted = f"{images:+d} of {num_images:,} test images"
    if abs(images) < decisive:
        return f"{counted}: noise (a sign test needs {decisive} or more, all going one way)"
    if largest_p_value(accuracy, baseline, num_images) < alpha:
        return f"{counted}: more than noise (a sign test says so however the errors fall)"
    return f"{counted}: noise or not, depending on the images the two disagree on (a sign test on those)"
