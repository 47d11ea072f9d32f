#!/usr/bin/env python
"""Train the detection stage. With no arguments: the embedded default (tiny model, synthetic basin).

    python scripts/train_classification.py                                   # the embedded default (~2 min on 2 CPU cores)
    accelerate launch --config_file accelerate_configs/<cfg>.yaml scripts/train_classification.py configs/detection/small.yaml [--flag value ...]

Every argument: `python scripts/train_classification.py --help`; docs/training.md explains the recipe.
"""

import sys

from medicane_hf.training import script_main

if __name__ == "__main__":
    sys.exit(script_main("detection"))
