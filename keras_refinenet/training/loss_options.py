"""Loss options given as text (a command line, a config file), checked
before a training run starts.

`check_loss_options` applies the rules of `losses.training_loss` (which
loss `"auto"` becomes, which options fit which terms) without reading the
training set, so a bad combination fails at once instead of after the
dataset is loaded.
"""

import argparse

from keras_refinenet.training.losses import (
    AUTO_LOSS,
    parse_class_weights,
    parse_loss_spec,
    training_loss,
)

# Stands in for computed class weights, whose count is known only later.
PLACEHOLDER_CLASS_WEIGHTS = (1.0,)


def checked_loss_spec(spec):
    """`spec` itself once `parse_loss_spec` accepts it.

    Args:
        spec: a loss such as `"ce"` or `"ce+0.5*dice"`.

    Returns:
        `spec`, unchanged.

    Example:

    >>> checked_loss_spec("ce+0.5*dice")
    'ce+0.5*dice'
    """
    parse_loss_spec(spec)
    return spec


def command_line_type(parse):
    """An `argparse` `type` whose errors are the messages of `parse`.

    `argparse` turns a `ValueError` of a `type` into a bare "invalid
    value"; this wrapper reports the library's own message instead.

    Args:
        parse: a function of the option text that raises `ValueError`.

    Returns:
        A function with the name of `parse`, raising
        `argparse.ArgumentTypeError`.

    Example:

    >>> command_line_type(parse_class_weights)("1,2")
    [1.0, 2.0]
    >>> command_line_type(parse_class_weights)("heavy")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: Class weights must be ... Received: ...
    """

    def parse_argument(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_argument.__name__ = parse.__name__
    return parse_argument


def check_loss_options(
    loss=AUTO_LOSS, class_weights=None, ohem_thresh=None, ohem_min_kept=None
):
    """Raises the `ValueError` a training run would raise for these options.

    Args:
        loss: a `get_loss` string or `"auto"` (`None` counts as `"auto"`).
        class_weights: `None`, a list of weights, or a method name
            (`"auto"`, `"median"`, `"inverse"`); a method is only checked
            for its name here, the weights need the training masks.
        ohem_thresh: threshold of an `ohem` term.
        ohem_min_kept: `min_kept` of an `ohem` term.

    Example:

    >>> check_loss_options("ce+dice", class_weights="auto")
    >>> check_loss_options("dice", ohem_thresh=0.5)
    Traceback (most recent call last):
    ...
    ValueError: OHEM options need an 'ohem' loss term ... Received: ...
    """
    if isinstance(class_weights, str):
        parse_class_weights(class_weights)
        class_weights = list(PLACEHOLDER_CLASS_WEIGHTS)
    training_loss(
        AUTO_LOSS if loss is None else loss,
        class_weights=class_weights,
        ohem_thresh=ohem_thresh,
        ohem_min_kept=ohem_min_kept,
    )
