"""The weights status of built-in presets, from an isolated preset cache."""

import pytest

from keras_refinenet.models.preset_io import WEIGHTS_FILE, cached_preset_dir
from keras_refinenet.models.preset_status import (
    NO_WEIGHTS,
    WEIGHTS_MISSING,
    WEIGHTS_ON_DISK,
    preset_listing,
    weights_status,
)
from keras_refinenet.models.presets import PRESETS

HOSTED = "refinenet101_cityscapes"
ARCHITECTURE_ONLY = "refinenet50"


@pytest.mark.parametrize(
    "metadata, status",
    [
        ({"weights": {"source": "url"}, "weights_on_disk": True}, "on disk"),
        ({"weights": {"source": "url"}, "weights_on_disk": False}, "missing"),
        ({"weights_on_disk": True}, "on disk"),  # converted by the user
        ({"weights_on_disk": False}, "none"),
        ({}, "none"),
    ],
)
def test_weights_status(metadata, status):
    assert weights_status(metadata) == status


def _statuses():
    return {name: status for name, status, _, _ in preset_listing()}


def test_listing_follows_the_registry_and_the_cache():
    assert PRESETS[HOSTED]["metadata"].get("weights")
    assert not PRESETS[ARCHITECTURE_ONLY]["metadata"].get("weights")
    rows = preset_listing()
    assert [row[0] for row in rows] == list(PRESETS)
    for name, _, description, _ in rows:
        assert description == PRESETS[name]["metadata"]["description"]
    statuses = _statuses()
    assert statuses[HOSTED] == WEIGHTS_MISSING
    assert statuses[ARCHITECTURE_ONLY] == NO_WEIGHTS
    for name in (HOSTED, ARCHITECTURE_ONLY):
        cached = cached_preset_dir(name)
        cached.mkdir(parents=True)
        (cached / WEIGHTS_FILE).touch()
    statuses = _statuses()
    assert statuses[HOSTED] == statuses[ARCHITECTURE_ONLY] == WEIGHTS_ON_DISK
