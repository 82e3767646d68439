"""Convert the authors' PyTorch RefineNet weights and check the result.

Reads a checkpoint of DrSleep/refinenet-pytorch (`rf101`) or
DrSleep/light-weight-refinenet (`rf_lw50/101/152`) safely
(`weights_only=True`), converts it to a Keras `RefineNet`, compares its
logits with PyTorch's on a random image when the PyTorch model can be built
here, and saves the model as a preset directory.

    python examples/convert_official_weights.py --checkpoint rf101_voc.pth \
        --output refinenet101_voc_converted
    python examples/convert_official_weights.py --light-weight \
        --checkpoint rf_lw50_voc.pth --output lwrefinenet50_voc_converted
    python examples/convert_official_weights.py --smoke

Needs `torch` (`pip install -e ".[torch]"`).
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
CHECK_SIZE = (96, 128)
RELATIVE_TOLERANCE = 1e-4


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", help=".pth/.pt file")
    parser.add_argument(
        "--light-weight",
        action="store_true",
        help="the checkpoint is a Light-Weight RefineNet",
    )
    parser.add_argument("--num-classes", type=int, help="default: inferred")
    parser.add_argument("--output", default="converted_preset")
    parser.add_argument(
        "--dataset",
        choices=("voc", "none"),
        default="voc",
        help="class names and palette written to the preset metadata",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="convert a random PyTorch Light-Weight RefineNet-50",
    )
    args = parser.parse_args()
    if not args.smoke and not args.checkpoint:
        parser.error(
            "--checkpoint is required without --smoke. Received: "
            "checkpoint=None"
        )
    return args


def _reference_on_path():
    """The PyTorch reference is a test oracle in this repository's
    `tests/convert/`; the comparison needs a source checkout."""
    repository = pathlib.Path(__file__).resolve().parents[1]
    if str(repository) not in sys.path:
        sys.path.insert(0, str(repository))


def smoke_checkpoint(folder):
    """Saves a random PyTorch Light-Weight RefineNet-50 as a checkpoint."""
    import torch

    _reference_on_path()
    from tests.convert.reference_pytorch import (
        build_reference_refinenet,
        randomize_batchnorm_,
    )

    torch.manual_seed(0)
    reference = build_reference_refinenet(50, num_classes=3, light_weight=True)
    randomize_batchnorm_(reference, torch.Generator().manual_seed(0))
    path = pathlib.Path(folder) / "rf_lw50_random.pth"
    torch.save(reference.state_dict(), path)
    return str(path)


def compare_with_pytorch(model, state_dict, light_weight):
    """Largest logit difference relative to the largest PyTorch logit."""
    import torch

    _reference_on_path()
    from keras_refinenet.convert.refinenet_pytorch import infer_depth
    from tests.convert.reference_pytorch import (
        build_reference_refinenet,
    )

    reference = build_reference_refinenet(
        infer_depth(state_dict), model.num_classes, light_weight=light_weight
    )
    reference.load_state_dict(
        {key: torch.from_numpy(value) for key, value in state_dict.items()},
        strict=False,
    )
    image = np.random.default_rng(0).uniform(0, 255, (1, *CHECK_SIZE, 3))
    normalized = (image / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    with torch.no_grad():
        expected = reference(
            torch.from_numpy(normalized.transpose(0, 3, 1, 2).astype("float32"))
        ).numpy()
    stride4 = model.__class__.from_config(
        {**model.get_config(), "upsample_output": False}
    )
    stride4.set_weights(model.get_weights())
    actual = stride4.predict(image.astype("float32"), verbose=0)
    expected = expected.transpose(0, 2, 3, 1)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def main():
    args = parse_args()
    started = time.time()
    from keras_refinenet.convert.checkpoints import load_torch_state_dict
    from keras_refinenet.convert.refinenet_pytorch import convert_state_dict
    from keras_refinenet.data import VOC_CLASS_NAMES, VOC_PALETTE

    checkpoint, light_weight = args.checkpoint, args.light_weight
    if args.smoke:
        folder = tempfile.mkdtemp(prefix="refinenet_convert_")
        checkpoint, light_weight = smoke_checkpoint(folder), True
        if args.output == "converted_preset":
            args.output = str(pathlib.Path(folder) / "converted_preset")

    state_dict = load_torch_state_dict(checkpoint)
    print(f"Read {len(state_dict)} tensors from {checkpoint}")
    model = convert_state_dict(
        state_dict, light_weight=light_weight, num_classes=args.num_classes
    )
    kind = "Light-Weight RefineNet" if light_weight else "RefineNet"
    print(
        f"Converted a {kind} with {model.num_classes} classes, "
        f"{model.count_params():,} parameters"
    )
    error = compare_with_pytorch(model, state_dict, light_weight)
    print(f"Largest relative logit difference Keras vs PyTorch: {error:.2e}")
    if error > RELATIVE_TOLERANCE:
        raise SystemExit(
            f"The conversion does not match PyTorch. Received: relative "
            f"difference {error:.2e} > {RELATIVE_TOLERANCE}"
        )
    metadata = {"converted_from": str(checkpoint)}
    if args.dataset == "voc" and model.num_classes == len(VOC_CLASS_NAMES):
        metadata.update(
            dataset="voc",
            class_names=list(VOC_CLASS_NAMES),
            palette=[list(c) for c in VOC_PALETTE[: model.num_classes]],
        )
    preset_dir = model.save_to_preset(args.output, metadata=metadata)
    print(f"Saved the preset to {preset_dir}; load it with")
    print(f"  RefineNet.from_preset({str(preset_dir)!r})")
    print(f"Done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
