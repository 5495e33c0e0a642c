"""``ptok depth-codes``: the reference's get_codes.py as a command.

    ptok depth-codes --checkpoint outputs_ade/vae-final.pt --out ADE_codes.jsonl ADE_depth/

Every depth PNG under the folder becomes one JSON line ``{"file", "codes", "depth_tokens"}``;
unreadable files are listed on stderr and skipped. The checkpoint is a reference
``vae-final.pt`` (architecture read off its tensors) or a project checkpoint directory.
"""

from __future__ import annotations

import argparse
import sys


def add_depth_codes_parser(sub) -> None:
    s = sub.add_parser("depth-codes", help="depth PNGs in a folder -> one JSON line of 100 codes each (get_codes.py)")
    s.add_argument("dir", help="folder of depth PNGs (searched recursively)")
    s.add_argument("--checkpoint", required=True, help="reference vae-final.pt, or a project VQ-VAE directory")
    s.add_argument("--out", required=True, help="JSON-lines file to write")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto")
    s.add_argument("--image-size", type=int, help="model input size for a reference .pt (default: 10 x its downsampling ratio, 320)")
    s.set_defaults(func=cmd_depth_codes)


def cmd_depth_codes(args: argparse.Namespace) -> int:
    from training.vqvae.depth_codes import write_depth_codes
    from training.vqvae.reference_format import load_any_vqvae
    from training.vqvae.train import resolve_device

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    model = load_any_vqvae(args.checkpoint, args.image_size, device)
    written, skipped = write_depth_codes(model, args.dir, args.out, batch_size=args.batch_size, device=device, progress=True)
    for s in skipped:
        print(f"skipped {s.file}: {s.reason}", file=sys.stderr)
    print(f"{written} files -> {args.out}; {len(skipped)} skipped")
    return 0 if written or not skipped else 1
