import keras
import pytest

from keras_refinenet.training.schedules import WarmupPolynomialDecay


def test_poly_decay_matches_the_formula():
    schedule = WarmupPolynomialDecay(0.01, decay_steps=100, power=0.9)
    for step in (0, 10, 50, 99, 100, 150):
        progress = min(step, 100) / 100
        expected = 0.01 * (1 - progress) ** 0.9
        assert float(schedule(step)) == pytest.approx(expected, abs=1e-7)


def test_warmup_then_decay():
    schedule = WarmupPolynomialDecay(
        1.0,
        decay_steps=10,
        power=1.0,
        warmup_steps=4,
        warmup_start_factor=0.2,
        end_learning_rate=0.5,
    )
    values = [float(schedule(step)) for step in (0, 2, 4, 9, 14, 30)]
    assert values == pytest.approx([0.2, 0.6, 1.0, 0.75, 0.5, 0.5])


def test_serialization_round_trip():
    schedule = WarmupPolynomialDecay(0.1, decay_steps=7, warmup_steps=2)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert restored.get_config() == schedule.get_config()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"decay_steps": 0}, "Received: decay_steps=0"),
        ({"decay_steps": 5, "warmup_steps": -1}, "Received: warmup_steps=-1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WarmupPolynomialDecay(0.1, **kwargs)
