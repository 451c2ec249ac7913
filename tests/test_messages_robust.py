"""Messages a user reads (issue 16 "Also" and point 3): one plain line, the fix named."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.errors import CheckpointError
from bdmm_cli.state_dict import pickle_globals, read_torch_file, refused_globals

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


class _Exec:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


def _legacy_malicious(path: Path, marker: Path) -> Path:
    """The pre-1.6 serialization: a numpy scalar first (allowed), then exec and os.system."""
    obj = {"scale": np.float64(1.5), "w": torch.zeros(2), "x": _Exec(marker), "y": _System()}
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


def test_malicious_legacy_pth_names_every_refused_global(tmp_path):
    marker = tmp_path / "pwned"
    bad = _legacy_malicious(tmp_path / "latest_net_G.pth", marker)
    found = pickle_globals(bad)
    assert any(g.endswith("multiarray.scalar") for g in found)  # the numpy scalar comes first
    assert refused_globals(bad) == ["builtins.exec", f"{os.system.__module__}.system"]
    with pytest.raises(CheckpointError) as info:
        read_torch_file(bad)
    msg = str(info.value)
    assert "\x1b" not in msg and "can still be loaded" not in msg and "\n" not in msg
    assert "builtins.exec" in msg and f"{os.system.__module__}.system" in msg
    assert "pickled objects other than tensors" in msg
    assert not marker.exists()  # nothing ran


def test_zip_checkpoint_with_code_names_every_global(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"a": _Exec(marker), "b": _System()}, bad)
    with pytest.raises(CheckpointError) as info:
        read_torch_file(bad)
    assert "builtins.exec" in str(info.value) and f"{os.system.__module__}.system" in str(info.value)
    assert not marker.exists()


def test_legacy_numpy_checkpoint_still_loads(tmp_path):
    good = tmp_path / "old.pth"
    torch.save({"scale": np.float64(1.5), "w": torch.ones(3)}, good, _use_new_zipfile_serialization=False)
    loaded = read_torch_file(good)
    assert float(loaded["scale"]) == 1.5 and torch.equal(loaded["w"], torch.ones(3))


def test_checkpoint_errors_are_whole_sentences(tmp_path):
    cut = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(1000)}, cut)
    cut.write_bytes(cut.read_bytes()[:700])
    with pytest.raises(CheckpointError) as info:
        read_torch_file(cut)
    msg = str(info.value)
    assert "truncated or corrupt" in msg and "\x1b" not in msg
    reason = msg.split("truncated or corrupt?): ", 1)[1]
    assert len(reason.split()) >= 3 and not reason.endswith(("-", ","))  # not cut mid-word


def test_overwrite_suggests_force():
    for cmd in (["animate", "a.jpg", "b.mp4", "-o", "o.mp4"], ["data", "prepare", "v", "-o", "d"]):
        result = runner.invoke(app, [*cmd, "--overwrite"])
        assert result.exit_code != 0
        assert "--force" in result.output and "--overlap" not in result.output, result.output


def test_import_hint_names_the_option_that_takes_the_folder():
    from bdmm_cli.hub.download import _how_to_get
    from bdmm_cli.hub.registry import load_registry

    registry = load_registry()
    gen = _how_to_get(registry.get("generator-fashionvideo"))
    spin = _how_to_get(registry.get("spin"))
    assert "pass --weights DIR" in gen and "pass --pose-weights DIR" in spin


_NOISY = textwrap.dedent("""
    import os, sys, warnings
    sys.argv = ["bdmm"] + sys.argv[1:]
    import typer
    from bdmm_cli import cli
    from bdmm_cli.commands._common import handle_errors
    from bdmm_cli.noise import native_stderr_quiet

    @handle_errors
    def noisy() -> None:
        with native_stderr_quiet():
            os.write(2, b"W0000 00:00:1700000000.1 123 gl_context.cc:357] GL version: 3.2\\n")
        warnings.warn("imageio: some library deprecation", DeprecationWarning)
        warnings.warn("IMAGEIO FFMPEG_WRITER WARNING: resizing", UserWarning)
        from bdmm_cli.errors import BdmmWarning
        warnings.warn(BdmmWarning("the pose cache cannot be written"))
        print("done", file=sys.stderr)

    cli.app.command("noisy")(noisy)
    cli.main()
""")


@pytest.mark.parametrize("verbose", [False, True])
def test_library_noise_off_stderr_unless_verbose(verbose):
    args = (["--verbose"] if verbose else []) + ["noisy"]
    proc = subprocess.run([sys.executable, "-c", _NOISY, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "warning: the pose cache cannot be written" in err and "done" in err
    for noise in ("W0000", "imageio: some library", "IMAGEIO FFMPEG_WRITER"):
        assert (noise in err) == verbose, err
