"""VPT (arXiv 2502.17425): the sequence with inserted perception (crops, re-encoded features), the
re-encoding projector, and its training (two stages, mask modeling; the re-encoder saved beside the
adapter). The generation loop that triggers the actions is :mod:`evaluation.vpt_actions`."""
