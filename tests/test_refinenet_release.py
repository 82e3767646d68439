"""The label tables of the authors' released MatConvNet models."""

import pytest

from keras_refinenet.refinenet_release import (
    RELEASED_DATASETS,
    channel_labels,
    released_file_name,
)

# Output channels per released model (issue 11, from the authors'
# `main/gen_class_info_*.m`): (K, void channel, label of the void channel).
EXPECTED = {
    "cityscapes": (20, 19, 255),
    "voc2012": (22, 21, 255),
    "nyud": (41, 40, 255),
    "sunrgbd": (38, 0, 0),
    "ade20k": (151, 0, 0),
    "pascal_context": (60, None, None),
    "person_parts": (7, None, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_channel_counts_and_void(name):
    info = RELEASED_DATASETS[name]
    num_channels, void, void_label = EXPECTED[name]
    assert len(info.class_names) == len(info.label_values) == num_channels
    assert len(info.palette) == num_channels
    assert info.void_channel == void
    if void is not None:
        assert info.class_names[void] == "void"
        assert info.label_values[void] == void_label
        assert len(channel_labels(name, void="exclude")) == num_channels - 1
        assert void_label not in channel_labels(name, void="exclude")
    assert len(set(info.label_values)) == num_channels


def test_label_values_follow_the_authors():
    assert RELEASED_DATASETS["nyud"].label_values[:2] == (1, 2)
    assert RELEASED_DATASETS["cityscapes"].label_values[18] == 18
    assert RELEASED_DATASETS["ade20k"].class_names[1] == "wall"
    assert RELEASED_DATASETS["sunrgbd"].class_names[1] == "wall"
    assert RELEASED_DATASETS["pascal_context"].class_names[0] == "background"
    # VOC colour map indexed by label value: label 1 is (128, 0, 0).
    assert RELEASED_DATASETS["nyud"].palette[0] == (128, 0, 0)
    assert RELEASED_DATASETS["cityscapes"].palette[0] == (128, 64, 128)


def test_improved_pooling_only_in_the_2018_models():
    improved = {n for n, d in RELEASED_DATASETS.items() if d.improved_pooling}
    assert improved == {
        "nyud",
        "person_parts",
        "pascal_context",
        "sunrgbd",
        "ade20k",
    }


def test_file_names():
    assert released_file_name("ade20k", 152) == "refinenet_res152_ade.mat"
    assert (
        released_file_name("pascal_context", 101)
        == "refinenet_res101_pascalcontext.mat"
    )
    with pytest.raises(ValueError, match="Received: depth=50"):
        released_file_name("voc2012", 50)
    with pytest.raises(ValueError, match="Received: dataset='kitti'"):
        released_file_name("kitti", 101)
    with pytest.raises(ValueError, match="Received: void='drop'"):
        channel_labels("voc2012", void="drop")
