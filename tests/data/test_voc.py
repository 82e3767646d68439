from keras_refinenet.data.voc import (
    VOC_CLASS_NAMES,
    VOC_PALETTE,
    voc_colormap,
)


def test_voc_names_and_palette():
    assert len(VOC_CLASS_NAMES) == 21
    assert VOC_CLASS_NAMES[15] == "person"
    assert len(VOC_PALETTE) == 256
    # Published VOC colours.
    assert VOC_PALETTE[0] == (0, 0, 0)
    assert VOC_PALETTE[1] == (128, 0, 0)
    assert VOC_PALETTE[15] == (192, 128, 128)
    assert VOC_PALETTE[20] == (0, 64, 128)
    assert VOC_PALETTE[255] == (224, 224, 192)
    assert voc_colormap(4).shape == (4, 3)
