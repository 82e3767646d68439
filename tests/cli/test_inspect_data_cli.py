"""`keras-refinenet inspect-data` in a subprocess: report, sheet, exit codes."""

import numpy as np
from PIL import Image

from tests.cli.test_errors import assert_one_error_line, run_cli


def _dataset(root, bad_value=None):
    for stem in ("a", "b"):
        image = np.random.default_rng(0).integers(0, 255, (24, 40, 3))
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(
            root / "images" / f"{stem}.png"
        )
        mask = np.zeros((24, 40), np.uint8)
        mask[:, 20:] = 1
        if bad_value is not None:
            mask[0, 0] = bad_value
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    return root


def test_good_dataset_exit_0_with_sheet(tmp_path):
    data = _dataset(tmp_path / "data")
    sheet = tmp_path / "sheet.png"
    result = run_cli(
        "inspect-data",
        data,
        "--num-classes",
        "2",
        "--sheet",
        sheet,
        "--sheet-pairs",
        "2",
        "--crop-size",
        "16",
        "16",
        "--json",
        tmp_path / "report.json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert "ok: training can start" in result.stdout
    assert "suggested --crop-size 32 32" in result.stdout
    assert np.asarray(Image.open(sheet)).shape == (2 * 16 + 4, 36, 3)
    assert '"ok": true' in (tmp_path / "report.json").read_text()


def test_bad_values_exit_1_and_are_listed(tmp_path):
    data = _dataset(tmp_path / "data", bad_value=7)
    result = run_cli("inspect-data", data, "--num-classes", "2")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: mask values outside 0..1" in result.stdout
    assert "masks/a.png" in result.stdout and "not ok" in result.stdout


def test_missing_folder_is_one_error_line(tmp_path):
    result = run_cli("inspect-data", tmp_path / "nope", "--num-classes", "2")
    assert_one_error_line(result, "nope", "does not exist")
