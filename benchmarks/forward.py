"""Forward time, FLOPs and achieved GFLOP/s of one preset at one size.

Prints the median forward time (graph mode, `tf.function` without XLA,
float32), the convolution FLOPs of one forward pass, the achieved GFLOP/s,
and this machine's 3x3-convolution rate measured in the same run, with
their ratio.

Example:
    python benchmarks/forward.py --preset refinenet101 --size 512x1024
    python benchmarks/forward.py --model lw_refinenet101 --size 256x512 \
        --repeats 2
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def build(args):
    if args.model:
        return common.build_keras_model(
            args.model,
            upsample_output=args.upsample_output,
            decoder_conv=args.decoder_conv,
        )
    from keras_refinenet.models.refinenet import RefineNet

    return RefineNet.from_preset(
        args.preset,
        load_weights=False,
        upsample_output=args.upsample_output,
        decoder_conv=args.decoder_conv,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", default="refinenet101")
    group.add_argument("--model", choices=sorted(common.MODELS))
    parser.add_argument("--size", default="512x1024", type=common.parse_size)
    parser.add_argument("--batch", default=1, type=int)
    parser.add_argument("--repeats", default=3, type=int)
    parser.add_argument("--warmup", default=1, type=int)
    parser.add_argument(
        "--decoder-conv", default="direct", choices=common.DECODER_CONVS
    )
    parser.add_argument(
        "--upsample-output",
        action="store_true",
        help="include the final upsampling to the input size",
    )
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    model = build(args)
    height, width = args.size
    images = tf.constant(
        np.random.default_rng(0)
        .uniform(0, 255, (args.batch, height, width, 3))
        .astype("float32")
    )
    flops = common.keras_conv_flops(model, images)
    forward = tf.function(lambda x: model(x, training=False))
    seconds, times = common.median_time(
        lambda: forward(images).numpy(), args.repeats, args.warmup
    )
    difference = None
    if args.decoder_conv != "direct":
        reference = build(
            argparse.Namespace(**{**vars(args), "decoder_conv": "direct"})
        )
        reference.set_weights(model.get_weights())
        expected = reference(images, training=False).numpy()
        actual = forward(images).numpy()
        difference = np.max(np.abs(actual - expected)) / np.max(
            np.abs(expected)
        )
        direct = tf.function(lambda x: reference(x, training=False))
        direct_seconds, _ = common.median_time(
            lambda: direct(images).numpy(), args.repeats, args.warmup
        )
    rate = common.conv3x3_rate()
    achieved = flops / seconds / 1e9
    name = args.model or args.preset
    print(f"model            {name}")
    print(f"input            {args.batch}x{height}x{width}x3")
    print(f"forward          {seconds:.3f} s median of {len(times)}")
    print(f"images/s         {args.batch / seconds:.3f}")
    print(f"conv FLOPs       {flops / 1e9:.1f} GFLOP")
    print(f"achieved         {achieved:.1f} GFLOP/s")
    print(f"3x3 conv rate    {rate:.1f} GFLOP/s (same run)")
    print(f"ratio            {achieved / rate:.2f}")
    if difference is not None:
        print(f"direct decoder   {direct_seconds:.3f} s median (same run)")
        print(f"speed-up         {direct_seconds / seconds:.2f}x")
        print(f"max |diff| / max |direct output|  {difference:.1e}")
    print(f"peak RSS         {common.peak_rss_gib():.2f} GiB")
    print(f"load average     {common.load_average()}")


if __name__ == "__main__":
    main()
