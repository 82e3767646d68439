"""`RefineNetImageSegmenter`: the task, `keras_refinenet.RefineNet`."""

import copy

import keras
import keras_hub
import numpy as np

from keras_refinenet.constants import (
    AUTO_DECODER_CONV,
    DIRECT_CONV,
    INFERENCE_DECODER_CONVS,
    WINOGRAD_CONV,
)
from keras_refinenet.layers.resize import (
    MATLAB_BICUBIC,
    OPENCV_BICUBIC,
    PER_AXIS,
    ResizeLike,
)
from keras_refinenet.layers.utils import check_positive_int
from keras_refinenet.models.refinenet.refinenet_backbone import (
    RefineNetBackbone,
    _check_rate,
)
from keras_refinenet.models.refinenet.refinenet_image_converter import (
    RefineNetImageConverter,
)
from keras_refinenet.models.refinenet.refinenet_image_segmenter_preprocessor import (  # noqa: E501
    RefineNetImageSegmenterPreprocessor,
)
from keras_refinenet.models.refinenet.refinenet_presets import (
    PREPROCESSOR_KEYS,
    PRESETS,
    TASK_KEYS,
)

CLASSIFIER_LAYER = "classifier"
# How logits reach the input size: bilinear, or the authors' MatConvNet
# rule, `exp(imresize(max(log softmax, -20), size))` with MATLAB bicubic
# (`main/my_gen_seg_result.m`), returned as the clamped log-probabilities.
OUTPUT_INTERPOLATIONS = ("bilinear", MATLAB_BICUBIC, OPENCV_BICUBIC)
LOG_PROBABILITY_FLOOR = -20.0
# Keras's default `predict` batch size.
DEFAULT_PREDICT_BATCH_SIZE = 32
VERBOSE = "verbose"


class classproperty:
    """A read-only property of the class, like keras-hub's `presets`."""

    def __init__(self, getter):
        self.getter = getter

    def __get__(self, instance, owner):
        return self.getter(owner)


def build_preprocessor(image_scale=None, mean=None, std=None, **kwargs):
    """A `RefineNetImageSegmenterPreprocessor` with this normalization.

    Args:
        image_scale: factor applied to raw pixels (default 1/255).
        mean: mean subtracted after scaling (default ImageNet's).
        std: standard deviation divided by last (default ImageNet's).
        **kwargs: more `RefineNetImageConverter` arguments.

    Returns:
        The preprocessor.

    Example:

    >>> build_preprocessor(1.0, 0.0, 1.0).image_converter.image_scale
    1.0
    """
    arguments = {"image_scale": image_scale, "mean": mean, "std": std}
    converter = RefineNetImageConverter(
        **{k: v for k, v in arguments.items() if v is not None}, **kwargs
    )
    return RefineNetImageSegmenterPreprocessor(image_converter=converter)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetImageSegmenter(keras_hub.models.ImageSegmenter):
    """RefineNet semantic segmentation (Lin et al., CVPR 2017).

    A keras-hub `ImageSegmenter`: a `RefineNetBackbone` (image encoder and
    multi-path refinement, stride-4 features), dropout, a classifier
    convolution, float32 logits and optionally bilinear upsampling to the
    input size. The `preprocessor` (a
    `RefineNetImageSegmenterPreprocessor`) normalizes raw 0..255 pixels;
    `predict`, `fit`, `evaluate` and `predict_segmentation` apply it,
    calling the model directly (`model(x)`) does not.

    For convenience `backbone` may also be an image encoder (a keras-cv or
    keras-hub feature-pyramid model): the `RefineNetBackbone` is then built
    from it with the decoder arguments in `kwargs`, and the preprocessor
    from `image_scale`, `image_mean` and `image_std`.

    Args:
        backbone: a `RefineNetBackbone` (or an image encoder, see above).
        num_classes: number of output classes.
        preprocessor: a `RefineNetImageSegmenterPreprocessor` or `None`
            (inputs are then expected normalized).
        classifier_dropout: dropout rate before the classifier.
        classifier_kernel_size: kernel of the classifier convolution.
        upsample_output: return logits at the input size (`True`) or at
            stride 4 (`False`).
        output_interpolation: the upsampling to the input size:
            `"bilinear"` (logits) or `"matlab_bicubic"`, the authors'
            MatConvNet rule: log-softmax clamped at -20, resized with
            MATLAB `imresize` bicubic (the backbone's `scale_mode`); the
            output then holds those log-probabilities (their argmax is the
            authors' label map, their softmax the probabilities); or
            `"opencv_bicubic"`, the logits resized as the authors' PyTorch
            evaluation does (`cv2.resize(..., cv2.INTER_CUBIC)`).
        void_channel: the output channel meaning "void" (the authors'
            MatConvNet models have one, e.g. channel 19 of
            `refinenet101_cityscapes`), or `None`; `predict_segmentation`
            maps it by its `void` rule.
        label_values: label value of each output channel (the authors'
            `class_label_values`), or `None` for channel indices;
            `predict_segmentation` returns these values.
        predict_decoder_conv: the decoder convolutions `predict` runs on
            in-memory arrays on TensorFlow: `"auto"` (without a GPU, an
            inference copy with BatchNorm folded and every wide 3x3
            stride-1 convolution in Winograd F(4x4, 3x3) for float32
            images of at least 256x512 pixels, exact to float32
            round-off; otherwise the cached inference network with
            BatchNorm folded for 16-bit models and where oneDNN runs, or
            the model's own weights), `"direct"` (the model itself,
            through Keras's loop) or `"winograd"` (the Winograd copy at
            any size). Training and
            `model(x)` always use the backbone's `decoder_conv`.
        compile: compile with `compile()`'s defaults at construction
            (keras-hub tasks do by default; RefineNet waits for an
            explicit `compile()`, whose defaults may need the run's
            `decay_steps`).
        **kwargs: `keras.Model` arguments (`name`, `dtype`), or backbone
            and normalization arguments when `backbone` is an encoder.

    Example:

    >>> import numpy as np
    >>> from keras_refinenet.models.encoders import resnet_backbone
    >>> encoder = resnet_backbone(None, filters=(8, 8, 16, 16),
    ...                           blocks=(1, 1, 1, 1))
    >>> backbone = RefineNetBackbone(encoder, top_filters=32,
    ...                              decoder_filters=16)
    >>> model = RefineNetImageSegmenter(backbone, num_classes=3,
    ...                                 preprocessor=build_preprocessor())
    >>> model.predict(np.zeros((1, 97, 133, 3)), verbose=0).shape
    (1, 97, 133, 3)
    """

    backbone_cls = RefineNetBackbone
    preprocessor_cls = RefineNetImageSegmenterPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        classifier_dropout=0.5,
        classifier_kernel_size=3,
        upsample_output=True,
        output_interpolation="bilinear",
        void_channel=None,
        label_values=None,
        predict_decoder_conv=AUTO_DECODER_CONV,
        compile=False,
        **kwargs,
    ):
        if not isinstance(backbone, RefineNetBackbone):
            backbone, preprocessor, kwargs = _from_image_encoder(
                backbone, preprocessor, kwargs
            )
        check_positive_int("num_classes", num_classes)
        if output_interpolation not in OUTPUT_INTERPOLATIONS:
            raise ValueError(
                f"`output_interpolation` must be one of "
                f"{OUTPUT_INTERPOLATIONS}. "
                f"Received: output_interpolation={output_interpolation!r}"
            )
        _check_rate("classifier_dropout", classifier_dropout)
        if predict_decoder_conv not in INFERENCE_DECODER_CONVS:
            raise ValueError(
                f"`predict_decoder_conv` must be one of "
                f"{INFERENCE_DECODER_CONVS}. "
                f"Received: predict_decoder_conv={predict_decoder_conv!r}"
            )
        dtype = backbone.dtype_policy
        kwargs.pop("dtype", None)

        # === Layers ===
        self.classifier_dropout_layer = keras.layers.Dropout(
            classifier_dropout, dtype=dtype, name="classifier_dropout"
        )
        self.classifier = keras.layers.Conv2D(
            num_classes,
            classifier_kernel_size,
            padding="same",
            use_bias=True,
            dtype=dtype,
            name=CLASSIFIER_LAYER,
        )
        self.logits_cast = keras.layers.Activation(
            "linear", dtype="float32", name="logits"
        )
        self.output_resize = ResizeLike(
            interpolation=output_interpolation,
            align_corners=backbone.align_corners,
            scale_mode=(
                getattr(backbone, "scale_mode", PER_AXIS)
                if output_interpolation == MATLAB_BICUBIC
                else PER_AXIS
            ),
            dtype="float32",
            name="upsample",
        )
        self.output_interpolation = output_interpolation
        if void_channel is not None and not 0 <= void_channel < num_classes:
            raise ValueError(
                f"`void_channel` must index one of the {num_classes} "
                f"outputs. Received: void_channel={void_channel!r}"
            )
        if label_values is not None and len(label_values) != num_classes:
            raise ValueError(
                f"`label_values` needs {num_classes} values. "
                f"Received: label_values={label_values!r}"
            )
        self.void_channel = void_channel
        self.label_values = None if label_values is None else list(label_values)

        # === Functional Model ===
        images = backbone.input
        logits = self.head(backbone(images), images, upsample_output)
        super().__init__(inputs=images, outputs=logits, compile=False, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.dtype_policy = backbone.dtype_policy
        self.preprocessor = preprocessor
        self.num_classes = num_classes
        self.classifier_dropout = classifier_dropout
        self.classifier_kernel_size = classifier_kernel_size
        self.upsample_output = upsample_output
        self.predict_decoder_conv = predict_decoder_conv
        if compile:
            self.compile()

    def head(self, features, images, upsample_output):
        """Logits of the stride-4 `features` with this task's layers.

        Args:
            features: the backbone output.
            images: the (normalized) input images, for the output size.
            upsample_output: resize the logits to the size of `images`.

        Returns:
            float32 logits.
        """
        x = self.classifier_dropout_layer(features)
        logits = self.logits_cast(self.classifier(x))
        if upsample_output:
            if self.output_interpolation == MATLAB_BICUBIC:
                logits = keras.ops.maximum(
                    keras.ops.log_softmax(logits, axis=-1),
                    LOG_PROBABILITY_FLOOR,
                )
            logits = self.output_resize([logits, images])
        return logits

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "classifier_dropout": self.classifier_dropout,
                "classifier_kernel_size": self.classifier_kernel_size,
                "upsample_output": self.upsample_output,
                "output_interpolation": self.output_interpolation,
                "void_channel": self.void_channel,
                "label_values": self.label_values,
                "predict_decoder_conv": self.predict_decoder_conv,
            }
        )
        return config

    # === Normalization and decoder settings, for callers ===
    @property
    def image_converter(self):
        """The preprocessor's `RefineNetImageConverter`, or `None`."""
        return getattr(self.preprocessor, "image_converter", None)

    @property
    def image_scale(self):
        converter = self.image_converter
        return 1.0 if converter is None else converter.image_scale

    @property
    def image_mean(self):
        converter = self.image_converter
        return [0.0] if converter is None else list(converter.mean)

    @property
    def image_std(self):
        converter = self.image_converter
        return [1.0] if converter is None else list(converter.std)

    @property
    def align_corners(self):
        return self.backbone.align_corners

    def preprocess(self, images):
        """Normalizes raw 0..255 `images` with the preprocessor, if any."""
        if self.preprocessor is None:
            return images
        return self.preprocessor(images)

    def predict(self, x=None, batch_size=None, **kwargs):
        """`keras.Model.predict` on raw pixels (the preprocessor applied).

        On TensorFlow, in-memory arrays go through the cached inference
        network of `predict_segmentation` (BatchNorm folded where it pays,
        wide 3x3 convolutions as `TransformedWinogradConv2D` where
        `predict_decoder_conv` picks Winograd for the arrays' size;
        rebuilt after the weights change), batch by batch through its
        compiled `predict_on_batch` with a progress bar unless
        `verbose=0`: Keras's loop cost 25-30 ms per call (RefineNet-101
        512x1024, 6% of its bfloat16 forward pass). It traces as
        `predict_segmentation` does (`fast_path.inference_tracing`:
        TensorFlow's own bilinear op, float32 round-off from the
        gathers). With `predict_decoder_conv="direct"` or other `predict`
        arguments, arrays take Keras's loop as `tf.data` batches with
        autotuning off instead of keras-hub's grain pipeline: the tf.data
        autotuner took a core from the network (Light-Weight
        RefineNet-101 at 512x1024 on 2 cores: 1.29 s per call against
        0.74 s with it off; see `benchmarks/README.md`).

        Args:
            x: raw 0..255 images `(B, H, W, 3)`, or a dataset.
            batch_size: images per step for arrays (default 32).
            **kwargs: more `keras.Model.predict` arguments.

        Returns:
            The logits as a numpy array.
        """
        from keras_refinenet.inference.fast_path import inference_tracing

        tensorflow = keras.backend.backend() == "tensorflow"
        with inference_tracing():
            if tensorflow and _is_array(x):
                forward = self._array_predict_network(keras.ops.shape(x))
                batch_size = batch_size or DEFAULT_PREDICT_BATCH_SIZE
                if forward is not None and set(kwargs) <= {VERBOSE}:
                    return predict_in_batches(
                        forward, x, batch_size, kwargs.get(VERBOSE, "auto")
                    )
                x = array_dataset(x, batch_size)
                if forward is not None:
                    network = forward.raw_network
                    if network is None:
                        network = forward.network
                        x = x.map(self.preprocessor)
                    return network.predict(x, **kwargs)
                batch_size = None
            return super().predict(x=x, batch_size=batch_size, **kwargs)

    def _array_predict_network(self, shape):
        """The cached `fast_path.CompiledForward` whose network
        `predict_decoder_conv` picks for arrays of `shape`, or `None` for
        this model itself."""
        import tensorflow as tf

        from keras_refinenet.inference.fast_path import (
            inference_forward,
            resolve_decoder_conv,
            tensorflow_onednn_enabled,
        )

        # Inference copies are built outside distribution strategies.
        if (
            self._distribute_strategy is not None
            or tf.distribute.has_strategy()
        ):
            return None
        pixels = None
        if len(shape) == 4 and None not in shape[1:3]:
            pixels = int(shape[1]) * int(shape[2])
        if self.predict_decoder_conv == DIRECT_CONV:
            return None
        conv = resolve_decoder_conv(
            self, self.predict_decoder_conv, None, pixels
        )
        # Folding pays in 16 bits (RefineNet-101 in bfloat16 on an AMX
        # Xeon: 0.96 s -> 0.67 s) and wherever oneDNN runs (float32: 2.17
        # -> 2.05 s there); Eigen kernels keep the model's own weights.
        fold = (
            conv == WINOGRAD_CONV
            or self.dtype_policy.compute_dtype != "float32"
            or tensorflow_onednn_enabled()
        )
        return inference_forward(self, fold_batchnorm=fold, decoder_conv=conv)

    # === Presets ===
    @classproperty
    def presets(cls):
        """The built-in presets: name -> `{"metadata", "config", ...}`."""
        return copy.deepcopy(PRESETS)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """Builds a RefineNet from a built-in preset or a preset directory.

        `preset` is a name from `RefineNet.presets`, a keras-hub preset
        directory (`config.json`, `task.json`, `preprocessor.json`, weights,
        `metadata.json`), a directory written by releases before the
        keras-hub family, or a `hf://` / `kaggle://` handle. Named presets
        read their weights from the preset cache
        (`$KERAS_REFINENET_CACHE/presets/NAME`) or a URL with a sha256;
        nothing is downloaded otherwise.

        Args:
            preset: the preset name, directory or handle.
            load_weights: load the preset's weights. Raises
                `PresetWeightsNotFoundError` at once, naming the paths
                searched, if a preset with published weights has none on
                disk. Presets without weights are randomly initialised.
            **overrides: arguments to change: task ones (`num_classes`
                builds a new classifier and loads every other weight),
                backbone ones (`freeze_batchnorm`, ...), normalization
                ones (`image_scale`, `image_mean`, `image_std`), `dtype`
                or `preprocessor`.

        Returns:
            A `RefineNetImageSegmenter`.

        Example:

        >>> model = RefineNetImageSegmenter.from_preset(
        ...     "refinenet50", num_classes=3)
        >>> model.num_classes
        3
        """
        from keras_refinenet.models.preset_io import load_preset

        return load_preset(cls, preset, load_weights, **overrides)

    def save_to_preset(self, preset_dir, metadata=None, max_shard_size=10):
        """Writes a keras-hub preset directory.

        Args:
            preset_dir: directory to write (created if missing).
            metadata: extra `metadata.json` entries, e.g. `class_names`.
            max_shard_size: largest weights file in GB before sharding.

        Returns:
            The preset directory as a `pathlib.Path`.
        """
        from keras_refinenet.models.preset_io import save_preset

        return save_preset(self, preset_dir, metadata, max_shard_size)

    # === Training and inference ===
    def compile(
        self,
        optimizer="auto",
        loss="auto",
        metrics="auto",
        **kwargs,
    ):
        """Configures training with defaults that train RefineNet well.

        `"auto"` picks the defaults of
        `keras_refinenet.training.defaults.compile_arguments`: SGD with
        momentum on a polynomial-decay schedule, cross-entropy that ignores
        label 255, and mean IoU. Any argument can be given explicitly as in
        `keras.Model.compile`.

        Args:
            optimizer: an optimizer, its name, or `"auto"`.
            loss: a loss, its name, or `"auto"`.
            metrics: a list of metrics, or `"auto"`.
            **kwargs: more arguments for the defaults (see
                `compile_arguments`) or for `keras.Model.compile`.
        """
        from keras_refinenet.training.defaults import compile_arguments

        keras.Model.compile(
            self,
            **compile_arguments(
                self, optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
            ),
        )

    def compile_from_config(self, config):
        """Restores a saved compile configuration (used by `load_model`).

        Args:
            config: the output of `get_compile_config`.
        """
        # Registers the custom optimizers, losses and metrics.
        import keras_refinenet.training.defaults  # noqa: F401

        config = keras.saving.deserialize_keras_object(config)
        keras.Model.compile(self, **config)
        if self.built and getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)

    def predict_segmentation(self, images, **kwargs):
        """Class-id maps (and optionally probabilities) at the input size.

        The preprocessor is applied: `images` are raw pixels.

        Args:
            images: one image `(H, W, 3)` or a batch `(B, H, W, 3)`, uint8
                or float 0..255.
            **kwargs: options of
                `keras_refinenet.inference.predict.predict_segmentation`
                (tiling, test-time augmentation, probabilities).

        Returns:
            See `keras_refinenet.inference.predict.predict_segmentation`.
        """
        from keras_refinenet.inference.predict import predict_segmentation

        return predict_segmentation(self, images, **kwargs)


def array_dataset(images, batch_size):
    """`images` as `tf.data` batches with autotuning off (for `predict`).

    Example:

    >>> import numpy as np
    >>> dataset = array_dataset(np.zeros((3, 4, 4, 3)), 2)
    >>> [len(batch) for batch in dataset], dataset.options().autotune.enabled
    ([2, 1], False)
    """
    # tf.data on purpose: it is the input pipeline of Keras's TF trainer.
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(batch_size)
        .with_options(options)
    )


def predict_in_batches(forward, images, batch_size, verbose="auto"):
    """`forward` on `images`, `batch_size` at a time, with Keras's
    progress bar (`verbose` as in `keras.Model.predict`).

    Args:
        forward: a callable mapping a numpy batch to numpy outputs (e.g.
            `fast_path.CompiledForward`).
        images: an array or tensor `(B, ...)`.
        batch_size: images per call.
        verbose: `"auto"` or 1 (a progress bar), 2 (one line) or 0.

    Returns:
        The outputs, concatenated.

    Example:

    >>> import numpy as np
    >>> predict_in_batches(lambda x: x * 2, np.ones((5, 2)), 2, 0).sum()
    np.float64(20.0)
    """
    check_positive_int("batch_size", batch_size)
    images = keras.ops.convert_to_numpy(images)
    if not len(images):
        raise ValueError(
            "`x` must hold at least one image. "
            f"Received: x.shape={images.shape}"
        )
    steps = -(-len(images) // batch_size)
    verbose = 1 if verbose == "auto" else verbose
    progress = keras.utils.Progbar(steps, verbose=verbose) if verbose else None
    outputs = []
    for step in range(steps):
        outputs.append(forward(images[step * batch_size :][:batch_size]))
        if progress is not None:
            progress.update(step + 1)
    return np.concatenate(outputs)


def _is_array(x):
    """Whether `x` is one in-memory array (numpy or a backend tensor)."""
    return isinstance(x, np.ndarray) or keras.ops.is_tensor(x)


def _from_image_encoder(image_encoder, preprocessor, kwargs):
    """`RefineNetBackbone`, preprocessor and model kwargs from the flat
    arguments of `RefineNetImageSegmenter(image_encoder, ...)`."""
    kwargs = dict(kwargs)
    normalization = {
        PREPROCESSOR_KEYS[key]: kwargs.pop(key)
        for key in list(kwargs)
        if key in PREPROCESSOR_KEYS
    }
    model_kwargs = {
        key: kwargs.pop(key) for key in ("name", "trainable") if key in kwargs
    }
    for key in TASK_KEYS:
        if key in kwargs:
            raise TypeError(f"Duplicate argument. Received: {key}")
    backbone = RefineNetBackbone(image_encoder=image_encoder, **kwargs)
    if preprocessor is None:
        preprocessor = build_preprocessor(**normalization)
    return backbone, preprocessor, model_kwargs
