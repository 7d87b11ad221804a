"""Draw the contact sheet used to judge the shared SEM pool (docs/images/pool-contact-sheet.png):
every pool image, numbered, with its sample type, magnification and smallest downscale factor;
excluded frames crossed out in red.

    python scripts/pool_contact_sheet.py [--pool ../shared/data/sem-pool] [--out docs/images/pool-contact-sheet.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_semfocus.training.data.pool import pool_contact_sheet

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", type=Path, default=REPO.parent / "shared" / "data" / "sem-pool")
    p.add_argument("--manifest", type=Path, default=REPO / "pool-curation" / "sem-pool-manifest.csv",
                   help="the curated manifest (pool-curation/README.md)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "pool-contact-sheet.png")
    args = p.parse_args(argv)
    print(pool_contact_sheet(args.pool, args.out, args.manifest))


if __name__ == "__main__":
    main()
