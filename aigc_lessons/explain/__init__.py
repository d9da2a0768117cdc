"""Explaining a classifier's decisions, and checking the explanations (Part VI, Responsible AIGC).

* :mod:`.attributions`: saliency, gradient x input and integrated gradients (with
  ``captum``), integrated gradients written out as a Riemann sum, the completeness error.
* :mod:`.sanity`: the cascading model-parameter randomisation test (Adebayo et al.,
  2018), Spearman rank correlation and SSIM of two maps, an edge detector as control.
* :mod:`.faithfulness`: how much of a map lies on the digit, its high-frequency
  share, and the deletion (pixel-removal) curve.
* ``python -m aigc_lessons.explain --out book/responsible/explanation_full.json``:
  the chapter's full-setting study, written as a record.

Example:
    >>> from aigc_lessons.explain import attribute, cascading_randomisation, rank_correlation
"""

from .attributions import (METHODS, ExplanationError, attribute, check_explanation_inputs, completeness_error,
                           integrated_gradients_riemann, target_scores)
from .faithfulness import alignment_scores, deletion_curve, digit_mask
from .sanity import (RandomisationResult, cascading_randomisation, edge_map, map_ssim, randomisable_layers,
                     randomise_layers, rank_correlation)

__all__ = ["METHODS", "ExplanationError", "RandomisationResult", "alignment_scores", "attribute",
           "cascading_randomisation", "check_explanation_inputs", "completeness_error", "deletion_curve",
           "digit_mask", "edge_map", "integrated_gradients_riemann", "map_ssim", "randomisable_layers",
           "randomise_layers", "rank_correlation", "target_scores"]
