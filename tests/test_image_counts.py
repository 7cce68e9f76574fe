"""bnlib.studies.image_counts: accuracy differences as test images, and what a sign test can say about them."""

import pytest

from bnlib.studies.image_counts import (
    describe_accuracy_difference,
    fewest_decisive_images,
    images_in,
    largest_p_value,
    sign_test_p_value,
)


def test_a_hundredth_of_a_point_is_one_image_of_ten_thousand():
    assert images_in(0.01, 10_000) == 1
    assert images_in(-0.02, 10_000) == -2
    assert images_in(97.77 - 97.75, 10_000) == 2  # float differences round to the whole image
    assert images_in(0.5, 2_000) == 10


def test_sign_test_known_values():
    assert sign_test_p_value(6, 0) == pytest.approx(2 / 64)
    assert sign_test_p_value(0, 5) == pytest.approx(2 / 32)
    assert sign_test_p_value(3, 3) == 1.0
    assert sign_test_p_value(9, 1) == pytest.approx(2 * (1 + 10) / 1024)
    assert sign_test_p_value(0, 0) == 1.0


@pytest.mark.parametrize(("alpha", "expected"), [(0.05, 6), (0.01, 8), (0.1, 5), (0.0625, 6)])
def test_fewest_decisive_images(alpha, expected):
    assert fewest_decisive_images(alpha) == expected
    assert 2 * 0.5**expected < alpha <= 2 * 0.5 ** (expected - 1)


def test_no_split_of_fewer_decisive_images_reaches_significance():
    decisive = fewest_decisive_images(0.05)
    for net in range(decisive):
        for losses in range(40):  # any number of disagreements: wins - losses = net
            assert sign_test_p_value(losses + net, losses) >= 0.05
    assert sign_test_p_value(decisive, 0) < 0.05


def test_more_disagreements_never_lower_the_p_value():
    for net in range(12):
        p_values = [sign_test_p_value(losses + net, losses) for losses in range(60)]
        assert p_values == sorted(p_values)


def test_largest_p_value_counts_every_error_as_a_disagreement():
    # 96.65 % and 93.55 % on 10,000 images: 335 and 645 errors, at most 980 disagreements, 645 of them won
    assert largest_p_value(96.65, 93.55, 10_000) == pytest.approx(sign_test_p_value(645, 335))
    assert largest_p_value(93.55, 96.65, 10_000) == pytest.approx(sign_test_p_value(335, 645))
    assert largest_p_value(96.65, 93.55, 10_000) < 1e-15
    assert largest_p_value(96.83, 96.65, 10_000) > 0.4  # 317 vs 335 errors: 18 images, well within chance


def test_descriptions():
    assert describe_accuracy_difference(97.77, 97.75, 10_000).startswith("+2 of 10,000 test images: noise (")
    assert "sign test needs 6 or more" in describe_accuracy_difference(97.70, 97.75, 10_000)
    assert describe_accuracy_difference(93.55, 96.65, 10_000).startswith("-310 of 10,000 test images: more than")
    assert describe_accuracy_difference(96.83, 96.65, 10_000).startswith("+18 of 10,000 test images: noise or not")
    assert fewest_decisive_images() == 6  # the default alpha is 0.05


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="^num_images must"):
        images_in(0.1, 0)
    with pytest.raises(ValueError, match="^alpha must"):
        fewest_decisive_images(1.5)
    with pytest.raises(ValueError, match="^wins must"):
        sign_test_p_value(-1, 2)
