"""Moved to `medicane_hf.data.synthetic.default`; this name stays importable for callers not yet updated
(``benchmarks/bench_learning.py``). New code imports from the new place."""

from medicane_hf.data.synthetic.default import DEFAULT_PRESET, ensure_default_dataset

__all__ = ["DEFAULT_PRESET", "ensure_default_dataset"]
