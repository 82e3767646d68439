"""What the built-in presets are and whether their weights are here.

`keras-refinenet presets` prints `preset_listing()`; the weights status
says whether a preset that names hosted weights has them in the preset
cache (`"on disk"` or `"missing"`), and `"none"` for architecture-only
presets.
"""

from keras_refinenet.models.preset_io import preset_metadata
from keras_refinenet.models.presets import PRESETS

WEIGHTS_ON_DISK = "on disk"
WEIGHTS_MISSING = "missing"
NO_WEIGHTS = "none"
WEIGHTS_STATUSES = (WEIGHTS_ON_DISK, WEIGHTS_MISSING, NO_WEIGHTS)


def weights_status(metadata):
    """The weights status of a preset from its metadata.

    Args:
        metadata: a built-in preset's `preset_metadata`: `weights` (where
            the checkpoint comes from, if it has one) and
            `weights_on_disk`.

    Returns:
        `"on disk"` when the cache holds weights (also converted weights
        of an architecture-only preset), `"missing"` when the preset names
        weights that are not there, else `"none"`.

    Example:

    >>> weights_status({"weights": {"source": "..."}, "weights_on_disk": 0})
    'missing'
    >>> weights_status({"weights_on_disk": False})
    'none'
    """
    if metadata.get("weights_on_disk"):
        return WEIGHTS_ON_DISK
    return WEIGHTS_MISSING if metadata.get("weights") else NO_WEIGHTS


def preset_listing():
    """`(name, weights status, description, metadata)` per built-in
    preset, in the registry's order.

    Returns:
        A list of tuples.

    Example:

    >>> name, status, description, metadata = preset_listing()[0]
    >>> status in WEIGHTS_STATUSES
    True
    """
    rows = []
    for name in PRESETS:
        metadata = preset_metadata(name)
        rows.append(
            (name, weights_status(metadata), metadata["description"], metadata)
        )
    return rows
