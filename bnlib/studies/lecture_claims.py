"""What the lecture, the course's dropout notebook and we claim about the placement grid's variants
(`bnlib.studies.placement.VARIANTS`, named by their display names), judged in notebook 03 by `claims.judge_claims`.

What the lecture said (the transcript): with the bias on or off before BatchNorm, and with BatchNorm
before or after the activation, it noticed no difference; with dropout the test accuracy was slightly
lower in both cases, but the network "was not overfitting anymore"; BatchNorm → ReLU → Dropout and
ReLU → BatchNorm → Dropout did not differ in its runs, though by its memory aid "BAD" BatchNorm after
the activation "might be better" and is "a little bit more common". The runs without BatchNorm come
from the course's dropout notebook the week before.
"""

from bnlib.studies.claims import Claim

# Why a verdict can come out as it does, one line each, shown under the claims that they explain.
BIAS_MECHANISM = (
    "BatchNorm subtracts each unit's batch mean in train mode, which removes a constant bias exactly; in "
    "eval mode the running_mean it subtracts carries the bias too, up to the bias's drift over the last "
    "updates, and beta plays the bias's role."
)
VARIANCE_SHIFT = (
    "dropout in the first hidden block feeds the second block's BatchNorm: in train mode it zeroes "
    "units and scales the rest by 1/(1 − p), in eval mode it passes its input unchanged, so that "
    "BatchNorm sees another variance in eval mode than the one its running_var learned (Li et al. "
    '2019, "variance shift"); a Linear lies between them in BAD, a Linear and a ReLU in the other order.'
)
UNBIASED_RUNNING_VAR = (
    "running_var is a moving average of each batch's variance times m/(m − 1) for a batch of m, "
    "the unbiased estimate of the paper's Algorithm 2 (Ioffe & Szegedy 2015): the shift comes from "
    "dropout, not from the estimator."
)

# What the lecture claims about these variants, what the course's dropout notebook (the week before) found, and
# questions we add (asked_by="us"); judged in notebook 03. b=None compares a's mean with 0.
CLAIMS = (
    Claim("Bias on or off before BatchNorm makes no difference",
          a="BN before ReLU, with bias", b="BN before ReLU, no bias", mechanism=(BIAS_MECHANISM,)),
    Claim("BatchNorm before or after the ReLU makes no difference",
          a="BN after ReLU", b="BN before ReLU, no bias"),
    Claim("ReLU → BN → Dropout and 'BAD' (BN → ReLU → Dropout) reach the same accuracy on this MLP",
          a="BN after ReLU + dropout", b="BN before ReLU + dropout", mechanism=(VARIANCE_SHIFT, UNBIASED_RUNNING_VAR)),
    Claim("Dropout lowers the test accuracy slightly (with BatchNorm)",
          a="BN before ReLU + dropout", b="BN before ReLU, no bias", expected="lower"),
    Claim("Dropout lowers the test accuracy (without BatchNorm)",
          a="dropout, no BN", b="no BN", expected="lower", asked_by="dropout notebook"),
    Claim("Dropout shrinks the train − validation gap (with BatchNorm)",
          a="BN before ReLU + dropout", b="BN before ReLU, no bias", metric="train_valid_gap", expected="lower"),
    Claim("Dropout shrinks the train − validation gap (without BatchNorm)",
          a="dropout, no BN", b="no BN", metric="train_valid_gap", expected="lower", asked_by="dropout notebook"),
    Claim("With dropout, BN before ReLU is not overfitting anymore (train − validation gap 0)",
          a="BN before ReLU + dropout", b=None, metric="train_valid_gap"),
    Claim("With dropout, BN after ReLU is not overfitting anymore (train − validation gap 0)",
          a="BN after ReLU + dropout", b=None, metric="train_valid_gap"),
    Claim("Does ReLU → BN → Dropout do better than 'BAD' (BN → ReLU → Dropout) here?",
          a="BN after ReLU + dropout", b="BN before ReLU + dropout", expected="higher", asked_by="us"),
    Claim("Do BatchNorm and the plain MLP reach the same test accuracy?",
          a="BN before ReLU, no bias", b="no BN", asked_by="us"),
)  # fmt: skip
