"""Command line: ``python -m d2lcnn.data download NAME [--root DIR] [--force]``.

Also ``python -m d2lcnn.data list`` to see which data sets exist and which are present.
"""

from __future__ import annotations

import argparse
import sys

from d2lcnn.data.download import REMOTE_DATASETS, DownloadError, download, locate_data_root


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 on success)."""
    parser = argparse.ArgumentParser(
        prog="python -m d2lcnn.data",
        description="Download the opt-in benchmark data sets (verified by SHA-256).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="download and verify a data set")
    get.add_argument("name", choices=sorted(REMOTE_DATASETS))
    get.add_argument("--root", default=None,
                     help="data folder (default: $D2LCNN_DATA, else the checkout's data/ "
                          "folder, else the per-user data folder)")
    get.add_argument("--force", action="store_true", help="download again even if present")
    show = sub.add_parser("list", help="list the data sets and where they would be read from")
    show.add_argument("--root", default=None, help="data folder (default: as for download)")
    args = parser.parse_args(argv)

    if args.command == "list":
        root, reason = locate_data_root(args.root)
        print(f"data folder: {root}\n  chosen because: {reason}")
        for name, (folder, files) in REMOTE_DATASETS.items():
            present = all(
                (root / folder / (f.filename + ".extracted" if f.extract else f.filename)).exists()
                for f in files
            )
            print(f"{name:15s} {'present' if present else 'missing'}  {root / folder}")
        return 0
    try:
        download(args.name, root=args.root, force=args.force)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
