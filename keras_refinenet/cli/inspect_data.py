"""`keras-refinenet inspect-data`: check a dataset folder before training.

Exit codes: 0 when training can start, 1 when the dataset has errors that
would stop training (all listed), 2 for a bad argument or a missing
folder.
"""

import json
import pathlib

from keras_refinenet.cli.main import EXIT_FAILURE, EXIT_OK
from keras_refinenet.data.inspection import (
    AUTO_LAYOUT,
    DEFAULT_SHEET_PAIRS,
    DEFAULT_SHEET_SEED,
    LAYOUTS,
)

EXIT_DATASET_ERRORS = EXIT_FAILURE
SHEET_FILE = "augmented_pairs.png"


def add_parser(subparsers):
    """Adds the `inspect-data` sub-command."""
    parser = subparsers.add_parser(
        "inspect-data",
        help="check a dataset folder (masks, sizes, classes) before training",
        description="Checks a folder dataset (DIR/<split>/{images,masks} or "
        "DIR/{images,masks}), a PASCAL VOC or a Cityscapes folder: missing "
        "or unreadable files, size mismatches, RGB masks, values outside "
        "the classes, 1-based labels, empty masks; prints class "
        "frequencies, suggested class weights and crop size, and writes a "
        "sheet of augmented pairs. Exit code 1 when training would fail.",
    )
    parser.add_argument("data_dir", help="dataset folder")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--layout", choices=LAYOUTS, default=AUTO_LAYOUT)
    parser.add_argument(
        "--sheet",
        help=f"PNG of augmented pairs to write (default: no sheet; "
        f"'auto' writes {SHEET_FILE} in the current folder)",
    )
    parser.add_argument("--sheet-pairs", type=int, default=DEFAULT_SHEET_PAIRS)
    parser.add_argument(
        "--crop-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="crop of the sheet (default: the suggested crop size)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SHEET_SEED)
    parser.add_argument("--json", help="also write the report as JSON here")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet inspect-data`; returns the exit code."""
    from keras_refinenet.data.inspection import (
        inspect_dataset,
        write_augmented_sheet,
    )

    report = inspect_dataset(
        args.data_dir, num_classes=args.num_classes, layout=args.layout
    )
    print(report.format())
    if args.json:
        pathlib.Path(args.json).write_text(
            json.dumps(report.to_dict(), indent=2)
        )
    if args.sheet and report.pairs:
        sheet = SHEET_FILE if args.sheet == "auto" else args.sheet
        crop = tuple(args.crop_size or report.suggested_crop)
        written = write_augmented_sheet(
            report.pairs,
            sheet,
            num_classes=args.num_classes,
            crop_size=crop,
            count=args.sheet_pairs,
            seed=args.seed,
        )
        print(f"wrote {args.sheet_pairs} augmented pairs to {written}")
    return EXIT_OK if report.ok else EXIT_DATASET_ERRORS
