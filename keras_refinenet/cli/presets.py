"""`keras-refinenet presets`: the built-in presets and their weights."""

from keras_refinenet.cli.main import EXIT_OK


def add_parser(subparsers):
    """Adds the `presets` sub-command."""
    parser = subparsers.add_parser(
        "presets",
        help="list built-in presets and whether their weights are here",
        description="Lists the built-in presets, what each is, and whether "
        "its weights are in the preset cache ($KERAS_REFINENET_CACHE).",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show where each checkpoint comes from and how to convert",
    )
    parser.set_defaults(func=run)


def run(args):
    """Prints the preset table; returns the exit code."""
    from keras_refinenet.models.preset_io import cached_preset_dir
    from keras_refinenet.models.preset_status import preset_listing

    rows = preset_listing()
    width = max(len(name) for name, *_ in rows)
    print(f"{'preset':<{width}}  {'weights':<8}  description")
    for name, status, description, metadata in rows:
        print(f"{name:<{width}}  {status:<8}  {description}")
        weights = metadata.get("weights")
        if args.verbose and weights:
            print(f"{'':<{width}}  {'':<8}  source: {weights['source']}")
            print(f"{'':<{width}}  {'':<8}  convert: {weights['how_to_get']}")
    print(f"\nPreset cache: {cached_preset_dir('')}")
    return EXIT_OK
