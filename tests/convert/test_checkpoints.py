"""Safe checkpoint loading: no code runs, wrappers unwrapped, clear errors."""

import builtins

import numpy as np
import pytest

from keras_refinenet.convert.checkpoints import (
    CheckpointMismatchError,
    TorchNotInstalledError,
    UnsafeCheckpointError,
    check_state_dict,
    import_torch,
    load_torch_state_dict,
    unwrap_state_dict,
)


class _RunsCode:
    """Unpickling this calls `builtins.exec`: a malicious checkpoint."""

    def __reduce__(self):
        return (
            builtins.exec,
            ("import pathlib; pathlib.Path(MARKER).touch()",),
        )


def test_pickle_that_runs_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"conv1.weight": torch.zeros(1), "evil": _RunsCode()}
    # The payload refers to MARKER as a global of exec: give it one.
    builtins.MARKER = str(marker)
    try:
        torch.save(payload, path)
        with pytest.raises(UnsafeCheckpointError, match="Refused to load"):
            load_torch_state_dict(path)
        assert not marker.exists()
        # Control: unrestricted unpickling would indeed have run the code.
        torch.load(path, weights_only=False)
        assert marker.exists()
    finally:
        del builtins.MARKER


def test_wrapped_and_data_parallel_checkpoints(tmp_path):
    torch = pytest.importorskip("torch")
    tensors = {
        "module.conv1.weight": torch.ones(2, 3, 1, 1),
        "module.bn1.num_batches_tracked": torch.tensor(7),
    }
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": tensors, "epoch": 3}, path)
    state_dict = load_torch_state_dict(path)
    assert list(state_dict) == ["conv1.weight"]
    assert state_dict["conv1.weight"].dtype == np.float32
    np.testing.assert_array_equal(state_dict["conv1.weight"], 1.0)


def test_unwrap_model_key_and_plain():
    assert list(unwrap_state_dict({"model": {"a": 1}})) == ["a"]
    assert list(unwrap_state_dict({"a": 1, "module.b": 2})) == [
        "a",
        "module.b",
    ]
    with pytest.raises(CheckpointMismatchError, match="Received"):
        unwrap_state_dict([1, 2])


def test_missing_torch_is_reported_plainly(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(TorchNotInstalledError, match="pip install torch"):
        import_torch()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_torch_state_dict(tmp_path / "nothing.pth")


def test_mismatch_lists_first_entries_only():
    expected = {f"w{index}": (2,) for index in range(15)}
    with pytest.raises(CheckpointMismatchError) as info:
        check_state_dict({"w0": np.zeros(3)}, expected)
    message = str(info.value)
    assert "14 missing keys" in message
    assert "... and 4 more" in message
    assert "w0: checkpoint (3,), expected (2,)" in message
