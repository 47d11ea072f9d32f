#!/usr/bin/env python
"""Batch inference of the tracking stage. With no arguments: the embedded default's test split and the model of the
no-argument training run (scripts/train_tracking.py).

    python scripts/infer_tracking.py                                            # the embedded default
    accelerate launch [--config_file accelerate_configs/<cfg>.yaml] scripts/infer_tracking.py \
        --model_name_or_path DIR_OR_HUB_ID (--dataset_dir DIR [--split test] | --frames DIR [--start T --end T]) \
        [--save_logits] [--save_embeddings] [--batch_size N] [--bf16|--fp16] --output_dir OUT

Every argument: `python scripts/infer_tracking.py --help`; the outputs: medicane_hf/inference/outputs.py.
"""

import sys

from medicane_hf.inference.command import main

if __name__ == "__main__":
    sys.exit(main("tracking"))
