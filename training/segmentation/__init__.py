"""Perceptio's segmentation head: the [SEG] token's hidden state prompts a SAM2 mask decoder.

``sam2.py`` loads SAM2 (a real ``facebook/sam2.1-hiera-*`` checkpoint, or the tiny preset built
from a config) and prepares its image input; ``masks.py`` decodes the records' RLE masks;
``head.py`` is the head (frozen SAM2 image encoder, trainable mask decoder, the projection
from the VLM's hidden size to SAM2's prompt embedding), its loss and its save/reload beside
the LoRA adapter; ``training.py`` wires it into a fine-tune (dataset, collator, trainer).
"""
