"""Constants shared across the package (pure Python, no framework imports)."""

# Label value of pixels that count in neither the loss nor the metrics.
IGNORE_LABEL = 255
# Colour images are RGB, channels last.
RGB_CHANNELS = 3
GRAYSCALE_CHANNELS = 1
RGBA_CHANNELS = 4
# Largest value of a uint8 pixel.
MAX_PIXEL_VALUE = 255
# Signature names of the exported TF Serving SavedModel.
IMAGES_SIGNATURE = "serving_default"
IMAGE_BYTES_SIGNATURE = "predict_image_bytes"
# Optional: tiled inference and test-time augmentation inside the graph.
TTA_SIGNATURE = "predict_tta"
# How a model's void output channel (the authors' MatConvNet models have
# one) enters label maps: it wins like any class and gives the void label
# (the authors' rule), or it is left out of the argmax.
VOID_AS_LABEL = "label"
VOID_EXCLUDED = "exclude"
VOID_RULES = (VOID_AS_LABEL, VOID_EXCLUDED)
# How the decoder's 3x3 convolutions compute: directly or with Winograd
# F(4x4, 3x3) (`RefineNetBackbone(decoder_conv=...)`).
DIRECT_CONV = "direct"
WINOGRAD_CONV = "winograd"
DECODER_CONVS = (DIRECT_CONV, WINOGRAD_CONV)
# `predict_segmentation` and the CLI pick the fastest exact one by default
# (`inference.fast_path.fastest_decoder_conv`).
AUTO_DECODER_CONV = "auto"
INFERENCE_DECODER_CONVS = (AUTO_DECODER_CONV, *DECODER_CONVS)
# Inference precisions of `predict_segmentation` and the CLI; bfloat16
# (mixed: bfloat16 compute, float32 logits) only when asked.
INFERENCE_PRECISIONS = ("float32", "bfloat16")
DEFAULT_INFERENCE_PRECISION = "float32"
