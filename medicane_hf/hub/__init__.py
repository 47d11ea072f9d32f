"""Sharing: model cards from ``model_cards/`` (`cards`), pushing a model folder to the Hub (`push`).

The code a folder carries (``auto_map``, `medicane_hf.video_processing_medicane`) is written by
``save_pretrained`` itself (`medicane_hf.modeling_medicane`).
"""
