import keras
from keras import ops

from keras_refinenet.layers.chained_residual_pooling import (
    ChainedResidualPooling,
)
from keras_refinenet.layers.multi_resolution_fusion import (
    MultiResolutionFusion,
    _as_shape_list,
)
from keras_refinenet.layers.residual_conv_unit import ResidualConvUnit
from keras_refinenet.layers.resize import PER_AXIS
from keras_refinenet.layers.utils import (
    TORCH_CONV_INITIALIZER,
    check_positive_int,
)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetBlock(keras.layers.Layer):
    """One RefineNet block: adaptive RCUs, fusion, pooling, output RCUs.

    Each input path goes through its own chain of residual conv units
    (`adaptive_units`, one count per path or one for all; 0 skips them),
    the paths are fused by `MultiResolutionFusion` at the resolution of the
    largest input, then ReLU, `ChainedResidualPooling` and the output chain
    of residual conv units follow. With one input the fusion is the
    identity, so the block keeps its input width; with several inputs it
    outputs `filters` channels.

    Args:
        filters: output channel count of the fusion (several inputs only).
        adaptive_units: RCUs per input path, an int or a list with one
            entry per input.
        crp_stages: number of chained residual pooling stages.
        output_units: RCUs after the pooling (0 for none).
        rcu_kernel_size: kernel size of the residual conv units.
        fusion_kernel_size: kernel size of the fusion convolutions.
        crp_kernel_size: kernel size of the pooling-chain convolutions.
        crp_pool_size: max-pooling window of the pooling chain.
        crp_conv_before_pool: "improved" pooling order (see
            `ChainedResidualPooling`).
        align_corners: bilinear upsampling mode of the fusion.
        kernel_initializer: initializer for all convolution kernels.
        interpolation: upsampling of the fusion, `"bilinear"` or
            `"matlab_bicubic"` (see `MultiResolutionFusion`).
        scale_mode: `matlab_bicubic` only: `"per_axis"` or
            `"uniform_crop"` (the authors' GPU resize; see
            `MultiResolutionFusion`).
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> block = RefineNetBlock(filters=8, adaptive_units=[2, 0])
    >>> fine = np.zeros((1, 16, 16, 8), "float32")
    >>> coarse = np.zeros((1, 8, 8, 16), "float32")
    >>> tuple(block([fine, coarse]).shape)
    (1, 16, 16, 8)
    >>> matlab = RefineNetBlock(
    ...     filters=8,
    ...     adaptive_units=[2, 0],
    ...     interpolation="matlab_bicubic",
    ...     scale_mode="uniform_crop",
    ... )
    >>> tuple(matlab([fine, coarse]).shape)
    (1, 16, 16, 8)
    """

    def __init__(
        self,
        filters,
        adaptive_units=2,
        crp_stages=4,
        output_units=3,
        rcu_kernel_size=3,
        fusion_kernel_size=3,
        crp_kernel_size=3,
        crp_pool_size=5,
        crp_conv_before_pool=False,
        align_corners=True,
        kernel_initializer=TORCH_CONV_INITIALIZER,
        interpolation="bilinear",
        scale_mode=PER_AXIS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        if isinstance(adaptive_units, (list, tuple)):
            for units in adaptive_units:
                check_positive_int("adaptive_units", units, allow_zero=True)
            adaptive_units = list(adaptive_units)
        else:
            check_positive_int(
                "adaptive_units", adaptive_units, allow_zero=True
            )
        check_positive_int("crp_stages", crp_stages, allow_zero=True)
        check_positive_int("output_units", output_units, allow_zero=True)
        self.filters = filters
        self.adaptive_units = adaptive_units
        self.crp_stages = crp_stages
        self.output_units = output_units
        self.rcu_kernel_size = rcu_kernel_size
        self.fusion_kernel_size = fusion_kernel_size
        self.crp_kernel_size = crp_kernel_size
        self.crp_pool_size = crp_pool_size
        self.crp_conv_before_pool = bool(crp_conv_before_pool)
        self.align_corners = bool(align_corners)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.interpolation = interpolation
        self.scale_mode = scale_mode

        # === Layers ===
        self.adaptive_rcus = []
        self.fusion = MultiResolutionFusion(
            filters,
            kernel_size=fusion_kernel_size,
            align_corners=align_corners,
            kernel_initializer=self.kernel_initializer,
            interpolation=interpolation,
            scale_mode=scale_mode,
            dtype=self.dtype_policy,
            name="fusion",
        )
        self.crp = None
        if crp_stages:
            self.crp = ChainedResidualPooling(
                num_stages=crp_stages,
                pool_size=crp_pool_size,
                kernel_size=crp_kernel_size,
                conv_before_pool=crp_conv_before_pool,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="crp",
            )
        self.output_rcu = None
        if output_units:
            self.output_rcu = ResidualConvUnit(
                num_blocks=output_units,
                kernel_size=rcu_kernel_size,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="output_rcu",
            )

    def _units_per_path(self, num_paths):
        if isinstance(self.adaptive_units, list):
            if len(self.adaptive_units) != num_paths:
                raise ValueError(
                    "`adaptive_units` needs one entry per input path "
                    f"({num_paths} inputs). "
                    f"Received: adaptive_units={self.adaptive_units}"
                )
            return self.adaptive_units
        return [self.adaptive_units] * num_paths

    def build(self, input_shape):
        shapes = _as_shape_list(input_shape)
        for index, (shape, units) in enumerate(
            zip(shapes, self._units_per_path(len(shapes)))
        ):
            rcu = None
            if units:
                rcu = ResidualConvUnit(
                    num_blocks=units,
                    kernel_size=self.rcu_kernel_size,
                    kernel_initializer=self.kernel_initializer,
                    dtype=self.dtype_policy,
                    name=f"input{index + 1}_adaptive_rcu",
                )
                rcu.build(shape)
            self.adaptive_rcus.append(rcu)
        fused_shape = self.compute_output_shape(input_shape)
        if len(shapes) > 1:
            self.fusion.build(shapes)
        if self.crp is not None:
            self.crp.build(fused_shape)
        if self.output_rcu is not None:
            self.output_rcu.build(fused_shape)
        self.built = True

    def call(self, inputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        paths = [
            x if rcu is None else rcu(x)
            for rcu, x in zip(self.adaptive_rcus, inputs)
        ]
        x = paths[0] if len(paths) == 1 else self.fusion(paths)
        x = ops.relu(x)
        if self.crp is not None:
            x = self.crp(x)
        if self.output_rcu is not None:
            x = self.output_rcu(x)
        return x

    def compute_output_shape(self, input_shape):
        shapes = _as_shape_list(input_shape)
        if len(shapes) == 1:
            return shapes[0]
        return self.fusion.compute_output_shape(shapes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "adaptive_units": self.adaptive_units,
                "crp_stages": self.crp_stages,
                "output_units": self.output_units,
                "rcu_kernel_size": self.rcu_kernel_size,
                "fusion_kernel_size": self.fusion_kernel_size,
                "crp_kernel_size": self.crp_kernel_size,
                "crp_pool_size": self.crp_pool_size,
                "crp_conv_before_pool": self.crp_conv_before_pool,
                "align_corners": self.align_corners,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "interpolation": self.interpolation,
                "scale_mode": self.scale_mode,
            }
        )
        return config
