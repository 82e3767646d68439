"""Keras dtype policies by name, set for one block of code."""

import contextlib

DEFAULT_PRECISION = "float32"
PRECISION_POLICIES = (DEFAULT_PRECISION, "mixed_float16", "mixed_bfloat16")


def check_precision(policy):
    """The policy name, `DEFAULT_PRECISION` for `None`; checks the name.

    Example:

    >>> check_precision(None), check_precision("mixed_bfloat16")
    ('float32', 'mixed_bfloat16')
    """
    policy = policy or DEFAULT_PRECISION
    if policy not in PRECISION_POLICIES:
        raise ValueError(
            f"`mixed_precision` must be one of {PRECISION_POLICIES}. "
            f"Received: mixed_precision={policy!r}"
        )
    return policy


@contextlib.contextmanager
def precision_policy(policy):
    """Sets the global Keras dtype policy inside a `with` block.

    Models built in the block keep the policy; the previous global policy
    is restored on exit, also after an error.

    Args:
        policy: one of `PRECISION_POLICIES`, or `None` for float32.

    Yields:
        The policy name.

    Example:

    >>> import keras
    >>> with precision_policy("mixed_bfloat16") as name:
    ...     keras.config.dtype_policy().name
    'mixed_bfloat16'
    >>> keras.config.dtype_policy().name
    'float32'
    """
    import keras

    policy = check_precision(policy)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)
