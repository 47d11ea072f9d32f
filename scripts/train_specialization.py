#!/usr/bin/env python
"""Train the specialization stage. With no arguments: the embedded default (tiny model, synthetic basin).

    python scripts/train_specialization.py                                   # the embedded default (~2 min on 2 CPU cores)
    accelerate launch --config_file accelerate_configs/<cfg>.yaml scripts/train_specialization.py configs/specialization/small.yaml [--flag value ...]

Every argument: `python scripts/train_specialization.py --help`; docs/training.md explains the recipe.
"""

import sys

from medicane_hf.training import script_main

if __name__ == "__main__":
    sys.exit(script_main("specialization"))
