import pytest

from keras_refinenet.models import tiny_refinenet

TINY = {"num_classes": 3, "top_filters": 8, "decoder_filters": 4}


@pytest.fixture
def tiny_model_factory():
    def build(library="keras_cv", **overrides):
        return tiny_refinenet(library=library, **{**TINY, **overrides})

    return build
