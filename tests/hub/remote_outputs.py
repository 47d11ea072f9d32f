"""The compared outputs of a model, importing torch only: the blocked subprocess of test_remote_code uses it, and
`tests.hub.folders` re-exports it for the package side."""

from __future__ import annotations

import torch

# the keys of each head's output compared between the package and a folder's own code
OUTPUT_KEYS = {
    "pretraining": ("loss", "logits", "decoder_mask"),
    "detection": ("logits", "embeddings"),
    "tracking": ("logits", "centre_spread", "embeddings"),
    "encoder": ("last_hidden_state",),
}


def outputs(model: torch.nn.Module, name: str, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    """The compared outputs of `model` (head `name`, or "encoder") on `pixel_values` (masks from a seeded generator)."""
    model.eval()
    with torch.no_grad():
        if name == "pretraining":
            result = model(pixel_values, generator=torch.Generator().manual_seed(0))
        else:
            result = model(pixel_values)
    return {key: result[key].detach().clone() for key in OUTPUT_KEYS[name]}
