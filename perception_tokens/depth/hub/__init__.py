"""torch.hub directory for Depth Anything: ``torch.hub.load(HUB_DIR, ..., source="local")``.

Only ``hubconf.py`` matters to torch.hub; this file makes the directory a package so it is
installed with perception_tokens.
"""

from pathlib import Path

HUB_DIR = Path(__file__).resolve().parent
