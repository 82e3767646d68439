"""An independent PyTorch port of the authors' RefineNet models.

Written from the published architecture of the authors' PyTorch releases
(`rf101` of DrSleep/refinenet-pytorch and `rf_lw50/101/152` of
DrSleep/light-weight-refinenet), with the module names of their
`state_dict` keys, so that their checkpoints load into it and its random
weights can be converted to Keras. It is the reference side of the
conversion parity tests and of the benchmarks; it needs `torch`.

Facts it follows: torchvision Bottleneck (stride on the 3x3 convolution),
stem conv 7x7/2 (pad 3), BatchNorm (eps 1e-5), max-pool 3x3/2 (pad 1);
residual conv units `relu -> conv3x3 (bias) -> relu -> conv3x3 (no bias)
-> + input`; chained residual pooling `top = conv(maxpool5x5/1(top)); x +=
top` (pool first, pad 2); bilinear upsampling with `align_corners=True`;
dropout 0.5 on the stride-32/16 features and before the classifier
(RefineNet only; inactive in `eval()`).
"""

import torch
from torch import nn
from torch.nn import functional

RESNET_LAYERS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
BOTTLENECK_EXPANSION = 4
STEM_WIDTH = 64
STAGE_WIDTHS = (64, 128, 256, 512)
TOP_WIDTH = 512
DECODER_WIDTH = 256
CRP_STAGES = 4
ADAPTIVE_UNITS = 2
OUTPUT_UNITS = 3
DROPOUT_RATE = 0.5
RCU_CONV_SUFFIXES = ("_conv", "_conv_relu_varout_dimred")


def _conv(in_channels, out_channels, kernel_size, bias=False):
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=kernel_size // 2,
        bias=bias,
    )


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride is on the 3x3."""

    def __init__(self, in_channels, width, stride=1, downsample=None):
        super().__init__()
        out_channels = width * BOTTLENECK_EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride=stride, padding=1, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = functional.relu(self.bn1(self.conv1(x)))
        y = functional.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return functional.relu(y + shortcut)


class RCUBlock(nn.Module):
    """`num_blocks` residual conv units; convs named `{i}_conv...`."""

    def __init__(self, channels, num_blocks, kernel_size=3):
        super().__init__()
        self.num_blocks = num_blocks
        for block in range(1, num_blocks + 1):
            for position, suffix in enumerate(RCU_CONV_SUFFIXES):
                conv = _conv(
                    channels, channels, kernel_size, bias=position == 0
                )
                self.add_module(f"{block}{suffix}", conv)

    def forward(self, x):
        for block in range(1, self.num_blocks + 1):
            residual = x
            for suffix in RCU_CONV_SUFFIXES:
                x = getattr(self, f"{block}{suffix}")(functional.relu(x))
            x = x + residual
        return x


class CRPBlock(nn.Module):
    """Chained residual pooling: pool, then conv, per stage."""

    def __init__(self, channels, num_stages, kernel_size=3):
        super().__init__()
        self.num_stages = num_stages
        self.maxpool = nn.MaxPool2d(kernel_size=5, stride=1, padding=2)
        for stage in range(1, num_stages + 1):
            self.add_module(
                f"{stage}_outvar_dimred",
                _conv(channels, channels, kernel_size),
            )

    def forward(self, x):
        top = x
        for stage in range(1, self.num_stages + 1):
            top = getattr(self, f"{stage}_outvar_dimred")(self.maxpool(top))
            x = x + top
        return x


def _upsample_like(x, reference):
    return functional.interpolate(
        x, size=reference.shape[2:], mode="bilinear", align_corners=True
    )


class ReferenceRefineNet(nn.Module):
    """RefineNet (`rf101`) or Light-Weight RefineNet (`rf_lw*`) in PyTorch.

    Args:
        depth: ResNet depth, 50, 101 or 152.
        num_classes: classifier outputs.
        light_weight: build the Light-Weight RefineNet (1x1 projections,
            fusions and pooling convs, no residual conv units, dropout only
            on the stride-32 and stride-16 features).
    """

    def __init__(self, depth=101, num_classes=21, light_weight=False):
        super().__init__()
        if depth not in RESNET_LAYERS:
            raise ValueError(
                f"`depth` must be one of {sorted(RESNET_LAYERS)}. "
                f"Received: depth={depth!r}"
            )
        self.light_weight = light_weight
        kernel = 1 if light_weight else 3
        self.conv1 = nn.Conv2d(
            3, STEM_WIDTH, 7, stride=2, padding=3, bias=False
        )
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = STEM_WIDTH
        for index, (width, blocks) in enumerate(
            zip(STAGE_WIDTHS, RESNET_LAYERS[depth])
        ):
            stride = 1 if index == 0 else 2
            layer, in_channels = self._make_layer(
                in_channels, width, blocks, stride
            )
            self.add_module(f"layer{index + 1}", layer)
        self.do = nn.Dropout(p=DROPOUT_RATE)

        feature_widths = [w * BOTTLENECK_EXPANSION for w in STAGE_WIDTHS]
        path_widths = (TOP_WIDTH,) + (DECODER_WIDTH,) * 3
        for level in range(1, 5):
            width = path_widths[level - 1]
            self.add_module(
                f"p_ims1d2_outl{level}_dimred",
                _conv(feature_widths[4 - level], width, kernel),
            )
            if not light_weight:
                self.add_module(
                    f"adapt_stage{level}_b",
                    nn.Sequential(RCUBlock(width, ADAPTIVE_UNITS)),
                )
            if level > 1:
                self.add_module(
                    f"adapt_stage{level}_b2_joint_varout_dimred",
                    _conv(width, DECODER_WIDTH, kernel),
                )
            self.add_module(
                f"mflow_conv_g{level}_pool",
                nn.Sequential(CRPBlock(width, CRP_STAGES, kernel)),
            )
            if not light_weight:
                self.add_module(
                    f"mflow_conv_g{level}_b",
                    nn.Sequential(RCUBlock(width, OUTPUT_UNITS)),
                )
            if level < 4:
                self.add_module(
                    f"mflow_conv_g{level}_b3_joint_varout_dimred",
                    _conv(width, DECODER_WIDTH, kernel),
                )
        self.clf_conv = _conv(DECODER_WIDTH, num_classes, 3, bias=True)

    @staticmethod
    def _make_layer(in_channels, width, blocks, stride):
        out_channels = width * BOTTLENECK_EXPANSION
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels, 1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(out_channels),
            )
        layers = [Bottleneck(in_channels, width, stride, downsample)]
        layers += [Bottleneck(out_channels, width) for _ in range(blocks - 1)]
        return nn.Sequential(*layers), out_channels

    def backbone_features(self, x):
        """The stride 4, 8, 16 and 32 ResNet features."""
        x = self.maxpool(functional.relu(self.bn1(self.conv1(x))))
        features = []
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
            features.append(x)
        return features

    def forward(self, x):
        features = self.backbone_features(x)
        # Both models drop out the stride-32 and stride-16 features
        # (`self.do` in light-weight-refinenet's `models/resnet.py` too).
        features[3] = self.do(features[3])
        features[2] = self.do(features[2])
        coarser = None
        for level in range(1, 5):
            feature = features[4 - level]
            x = getattr(self, f"p_ims1d2_outl{level}_dimred")(feature)
            if not self.light_weight:
                x = getattr(self, f"adapt_stage{level}_b")(x)
            if coarser is not None:
                x = getattr(self, f"adapt_stage{level}_b2_joint_varout_dimred")(
                    x
                )
                x = x + _upsample_like(coarser, x)
            x = functional.relu(x)
            x = getattr(self, f"mflow_conv_g{level}_pool")(x)
            if not self.light_weight:
                x = getattr(self, f"mflow_conv_g{level}_b")(x)
            if level < 4:
                coarser = getattr(
                    self, f"mflow_conv_g{level}_b3_joint_varout_dimred"
                )(x)
        if not self.light_weight:
            x = self.do(x)
        return self.clf_conv(x)


def build_reference_refinenet(depth=101, num_classes=21, light_weight=False):
    """Builds the PyTorch reference RefineNet in evaluation mode.

    Args:
        depth: ResNet depth, 50, 101 or 152 (the authors publish RefineNet
            with 101 and Light-Weight RefineNet with 50, 101 and 152).
        num_classes: number of classifier outputs.
        light_weight: Light-Weight RefineNet instead of RefineNet.

    Returns:
        A `torch.nn.Module` in `eval()` mode whose `state_dict` keys are
        the authors' (`conv1.weight`, `layer3.22.bn2.running_var`,
        `mflow_conv_g1_pool.0.1_outvar_dimred.weight`, ...). It takes
        normalised NCHW images and returns stride-4 logits.

    Example:

    >>> model = build_reference_refinenet(50, num_classes=3)
    >>> model(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 3, 16, 16])
    """
    return ReferenceRefineNet(depth, num_classes, light_weight).eval()


def randomize_batchnorm_(model, generator=None):
    """Gives every BatchNorm non-trivial statistics and affine weights.

    Means in [-0.2, 0.2], variances in [0.5, 2], gammas in [0.2, 1] and
    betas in [-0.2, 0.2], so that a deep random network stays well scaled
    while every BatchNorm term matters for a conversion check.

    Args:
        model: the module to change in place.
        generator: an optional `torch.Generator` for reproducibility.

    Returns:
        `model`.
    """

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.running_mean.copy_(uniform(shape, -0.2, 0.2))
                module.running_var.copy_(uniform(shape, 0.5, 2.0))
                module.weight.copy_(uniform(shape, 0.2, 1.0))
                module.bias.copy_(uniform(shape, -0.2, 0.2))
    return model
