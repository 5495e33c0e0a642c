"""VPT (arXiv 2502.17425): the sequence with inserted perception (crops, re-encoded features) and the
re-encoding projector. The generation loop that triggers them is :mod:`evaluation.vpt_actions`."""
