"""``ptok convert-plurals``: the reference's ``Bbox/plurals.npy`` (GPT-4o's plural of every LVIS
category, a pickled dict) as JSON, once, without unpickling it:

    ptok convert-plurals Aurora-perception/Bbox/plurals.npy      # writes Aurora-perception/Bbox/plurals.json

The pickle is read by the restricted unpickler (perception_tokens/curriculum/reference_files.py):
only plain containers and strings come out, numpy's names get inert stand-ins, and anything
else is refused before it runs. The JSON (sorted keys, UTF-8) is written under a temporary name,
then renamed; ``curriculum.plurals_file`` (or ``<reference_repo>/Bbox/plurals.json`` under
``profile: aurora``) points at it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_convert_plurals_parser(sub) -> None:
    s = sub.add_parser("convert-plurals", help="Aurora's pickled Bbox/plurals.npy -> plurals.json (no code runs)")
    s.add_argument("source", help="the reference's plurals.npy")
    s.add_argument("dest", nargs="?", help="JSON file to write (default: plurals.json beside the source)")
    s.set_defaults(func=cmd_convert_plurals)


def cmd_convert_plurals(args: argparse.Namespace) -> int:
    from perception_tokens.curriculum.reference_files import read_plurals_npy
    from perception_tokens.paths import atomic_write_text

    plurals = read_plurals_npy(args.source)
    dest = Path(args.dest) if args.dest else Path(args.source).with_suffix(".json")
    atomic_write_text(dest, json.dumps(plurals, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{len(plurals)} plurals written to {dest}")
    return 0
