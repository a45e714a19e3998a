"""benchmarks/gpu_check.sh, the one-run GPU proof, works before GPU time is spent on it: its
dry run on a CPU machine exits 0, reports every GPU step skipped with the reason, and leaves
an output folder the device tool can return.  Also the torch backend's CUDA numerics
settings (TF32 off unless asked for, deterministic cuDNN on request)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
GPU_STEPS = {
    "tests-cupy",
    "tests-torch-cuda",
    "contract-torch-cuda",
    "keras3-agreement-torch-cuda",
    "host-syncs-torch-cuda",
    "conformance",
    "bench-gpu",
    "gpu-memory",
}
LINE = re.compile(r"^(\S+)\s+(pass|fail|skip)\s+(\d+\.\d)s  (.*)$")


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _summary(folder: Path) -> dict[str, tuple[str, float, str]]:
    rows = {}
    lines = (folder / "summary.txt").read_text().splitlines()
    assert lines[-1].startswith("# "), lines[-1]  # the totals line
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, f"not a result line: {line!r}"
        rows[m.group(1)] = (m.group(2), float(m.group(3)), m.group(4))
    return rows


def test_dry_run_skips_every_gpu_step_with_its_reason_and_exits_0(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _summary(out)
    assert GPU_STEPS <= set(rows), sorted(rows)
    for name in GPU_STEPS:
        status, _, reason = rows[name]
        assert status == "skip" and reason, (name, rows[name])
    assert rows["install"][0] == "skip" and "dry run" in rows["install"][2]
    # the step runner really ran commands: the environment report and the benchmark smoke
    assert rows["env-versions"][0] == "pass" and rows["bench-cpu-smoke"][0] == "pass"
    assert rows["probe"][0] == "pass" and "torch:cuda:" in rows["probe"][2]
    assert all(status != "fail" for status, _, _ in rows.values()), rows
    log = (out / "steps.log").read_text()
    assert all(f"=== {name}" in log for name in rows)
    assert "python" in (out / "environment.txt").read_text()
    # what the device tool can bring back: at most 8 plain files, plain names, flat
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= 8, files
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) and p.parent == out for p in files)
    assert _gpu_check().check_output(out) == []


def test_where_no_gpu_is_visible_the_skip_reasons_say_so(tmp_path):
    """On this (CPU) machine the reasons are the backends' own, not just "dry run"."""
    gc = _gpu_check()
    runner = gc.Runner(tmp_path, 60, dry_run=True)
    found = {"cupy": "cupy is not installed", "torch:cuda": "torch.cuda.is_available() is False"}
    assert gc.gpu_jobs(runner, found) == []
    runner.close()
    rows = _summary(tmp_path)
    assert rows["tests-cupy"] == ("skip", 0.0, "cupy: cupy is not installed")
    assert "is_available() is False" in rows["tests-torch-cuda"][2]
    assert "is_available() is False" in rows["contract-torch-cuda"][2]
    assert "is_available() is False" in rows["keras3-agreement-torch-cuda"][2]
    assert "no GPU backend is usable" in rows["conformance"][2]


def test_a_step_over_its_cap_is_killed_with_its_children(tmp_path):
    gc = _gpu_check()
    runner = gc.Runner(tmp_path, 60, dry_run=True)
    # the child starts a grandchild: killing the process group stops both
    code = (
        "import subprocess, sys, time; print('started', flush=True);"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    fast = [sys.executable, "-c", "print('one line of result')"]
    slow, quick = runner.run_many(
        [gc.Job("slow", [sys.executable, "-c", code], 2, {}), gc.Job("quick", fast, 30, {})]
    )
    runner.close()
    assert slow.status == "fail" and slow.reason.startswith("timed out after 2s"), slow
    assert slow.seconds < 20
    assert (quick.status, quick.reason) == ("pass", "one line of result")
    log = (tmp_path / "steps.log").read_text()
    assert "started" in log and log.index("=== slow") < log.index("=== quick")


def test_a_failing_step_and_a_spent_budget_are_reported(tmp_path):
    gc = _gpu_check()
    runner = gc.Runner(tmp_path, 60, dry_run=True)
    res = runner.run("broken", [sys.executable, "-c", "raise SystemExit('no GPU today')"], 30)
    assert res.status == "fail" and res.reason == "exit 1: no GPU today"
    runner.budget_s = 0  # nothing left
    res = runner.run("late", [sys.executable, "-c", "pass"], 30)
    runner.close()
    assert res.status == "skip" and res.reason.startswith("time budget spent")
    assert _summary(tmp_path)["late"][0] == "skip"


def test_output_limits_are_checked(tmp_path):
    gc = _gpu_check()
    for i in range(9):
        (tmp_path / f"f{i}.txt").write_text("x")
    (tmp_path / "a b.txt").write_text("x")
    (tmp_path / "d1" / "d2").mkdir(parents=True)
    (tmp_path / "d1" / "d2" / "deep.txt").write_text("x")
    problems = " | ".join(gc.check_output(tmp_path))
    assert "11 files (at most 8)" in problems
    assert "a b.txt: a name" in problems
    assert "deep.txt: more than 2 folders deep" in problems


def test_the_guides_folder_comes_from_the_environment_or_is_noted(tmp_path, monkeypatch):
    gc = _gpu_check()
    monkeypatch.setenv("POLYKERAS_SEEDS_DIR", str(tmp_path))
    assert gc.seeds_folder() == (tmp_path, "")
    monkeypatch.setattr(gc, "ROOT", tmp_path / "nowhere" / "checkout")
    monkeypatch.setenv("POLYKERAS_SEEDS_DIR", str(tmp_path / "missing"))
    path, note = gc.seeds_folder()
    assert path is None and "POLYKERAS_SEEDS_DIR" in note and "only docs/ ran" in note


def test_gpu_benchmark_rows_become_ratios_and_peak_memory(tmp_path):
    """What the GPU run does with bench.json, on made-up rows (also a run cut short)."""
    gc = _gpu_check()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    def row(impl, sps, gpu_mb):
        return {
            "impl": impl,
            "model": "mlp",
            "device": "cuda",
            "samples_per_s": sps,
            "peak_mb": 900.0,
            "peak_gpu_mb": gpu_mb,
            "import_s": 1.0,
            "latency_ms": None,
            "round": 0,
        }

    data = {
        "device": "cuda",
        "models": ["mlp"],
        "impls": bench.GPU_IMPLS,
        "complete": False,
        "runs": [
            row("torch-handwritten", 1000.0, 50.0),
            row("polykeras-torch", 1100.0, 40.0),
            row("polykeras-cupy", 800.0, 64.0),
            row("keras3-torch", 400.0, 80.0),
        ],
        "skipped": [{"model": "mlp", "impl": "torch-handwritten-keras-loss", "reason": "x"}],
    }
    (tmp_path / "bench.json").write_text(__import__("json").dumps(data))
    table = bench.table_from_json(tmp_path / "bench.json")
    assert "peak GPU MB" in table
    assert "| mlp (batch 128) | polykeras-torch | 1100.0 | 1.10 |" in table
    assert "| polykeras-cupy | 800.0 | 0.80 |" in table and " 64 |" in table
    assert "mlp: polykeras-torch is 2.75x Keras 3" in table
    assert "torch-handwritten-keras-loss | skipped: x" in table
    runner = gc.Runner(tmp_path, 60, dry_run=True)
    status, reason = gc.gpu_memory(runner)
    runner.close()
    assert status == "pass"
    assert "polykeras-cupy/mlp 64" in reason and "torch-handwritten/mlp 50" in reason


def test_path_install_declares_the_plugins_of_pyproject(tmp_path):
    """Where the GPU machine cannot build the editable install (no setuptools, no network),
    the checkout goes on PYTHONPATH with a .dist-info naming the backend plugins."""
    pytest.importorskip("tomllib", reason="the path install needs Python >= 3.11 (tomllib)")
    gc = _gpu_check()
    runner = gc.Runner(tmp_path, 60, dry_run=True)
    status, reason = gc.path_install(runner)
    assert status == "pass" and "PYTHONPATH=" in reason
    (info,) = (runner.scratch / "site").glob("polykeras-*.dist-info")
    entry_points = (info / "entry_points.txt").read_text()
    assert "[polykeras]" in entry_points and "torch = polykeras_torch.plugin" in entry_points
    parts = runner.env["PYTHONPATH"].split(os.pathsep)
    assert str(ROOT / "backends") in parts and str(runner.scratch / "site") in parts
    runner.close()
    assert not runner.scratch.exists()  # scratch files never outlive the run


# -- the torch backend's CUDA settings ------------------------------------------------------------
@pytest.fixture
def torch_flags():
    torch = pytest.importorskip("torch", reason="the CUDA settings belong to the torch backend")
    b = torch.backends
    saved = (
        b.cuda.matmul.allow_tf32,
        b.cudnn.allow_tf32,
        b.cudnn.deterministic,
        b.cudnn.benchmark,
    )
    yield b
    (
        b.cuda.matmul.allow_tf32,
        b.cudnn.allow_tf32,
        b.cudnn.deterministic,
        b.cudnn.benchmark,
    ) = saved


def test_tf32_is_off_unless_asked_for(torch_flags, monkeypatch):
    from polykeras_torch.backend import configure_cuda

    monkeypatch.delenv("POLYKERAS_ALLOW_TF32", raising=False)
    torch_flags.cuda.matmul.allow_tf32 = torch_flags.cudnn.allow_tf32 = True
    configure_cuda()
    assert not torch_flags.cuda.matmul.allow_tf32 and not torch_flags.cudnn.allow_tf32
    monkeypatch.setenv("POLYKERAS_ALLOW_TF32", "1")
    configure_cuda()
    assert torch_flags.cuda.matmul.allow_tf32 and torch_flags.cudnn.allow_tf32


def test_deterministic_cudnn_on_request(torch_flags, monkeypatch):
    from polykeras_torch.backend import configure_cuda

    torch_flags.cudnn.deterministic, torch_flags.cudnn.benchmark = False, True
    monkeypatch.delenv("POLYKERAS_DETERMINISTIC", raising=False)
    configure_cuda()
    assert not torch_flags.cudnn.deterministic  # torch's default is kept
    monkeypatch.setenv("POLYKERAS_DETERMINISTIC", "yes")
    configure_cuda()
    assert torch_flags.cudnn.deterministic and not torch_flags.cudnn.benchmark


def test_a_bad_setting_value_names_the_variable(torch_flags, monkeypatch):
    from polykeras_torch.backend import configure_cuda

    monkeypatch.setenv("POLYKERAS_ALLOW_TF32", "maybe")
    with pytest.raises(ValueError, match="POLYKERAS_ALLOW_TF32 is 'maybe'; expected 1 or 0"):
        configure_cuda()


@pytest.mark.gpu
def test_cuda_batches_go_through_pinned_memory_unchanged():
    torch = pytest.importorskip("torch", reason="the torch backend needs torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device is visible to torch")
    from polykeras_torch.backend import PIN_MIN_BYTES, TorchBackend

    B = TorchBackend("cuda")
    big = np.random.default_rng(0).normal(size=(PIN_MIN_BYTES // 4 + 7, 3))  # float64
    small = np.arange(6, dtype="int32").reshape(2, 3)
    for arr, dtype in ((big, None), (big, "float32"), (small, None)):
        got = B.asarray(arr, dtype)
        assert got.device.type == "cuda"
        want = arr.astype(dtype or arr.dtype)  # a copy
        arr += 1  # the source may change at once: the transfer has its own copy
        np.testing.assert_array_equal(B.to_numpy(got), want)
        arr -= 1
