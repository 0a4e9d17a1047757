"""Model-based (non-CNN) estimators of the first-compression quantization matrix Q1 of a double
JPEG, used as baselines in the paper's tables: :mod:`.galvan` (reference [7], aligned) and
:mod:`.bianchi` (reference [5], aligned and non-aligned)."""
