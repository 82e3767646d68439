import pytest

from keras_refinenet import RefineNet, resnet_backbone

TINY = {"num_classes": 3, "top_filters": 8, "decoder_filters": 4}


@pytest.fixture
def tiny_model_factory():
    def build(library="keras_cv", **overrides):
        return RefineNet(
            resnet_backbone(50, library=library), **{**TINY, **overrides}
        )

    return build
