"""The GPU proof in one run: tests, conformance, benchmarks and memory on CuPy and torch:cuda.

    bash benchmarks/gpu_check.sh [OUTDIR]      # OUTDIR: $OUT by default, else ./gpu-check-out
    python benchmarks/gpu_check.py [--dry-run] [OUTDIR]

GPU time comes in short windows, so this is one prepared script that finishes well under 10
minutes (a total budget, ``GPU_CHECK_BUDGET_S``, default 500 s) and writes everything into
one flat folder of at most 8 files, each named with letters, digits and ``._-`` only:

    summary.txt       one line per step: name, pass/fail/skip, seconds, reason
    steps.log         every step's output, in order
    environment.txt   nvidia-smi, Python, torch/CUDA, CuPy, the polykeras backends table
    bench.json        the GPU benchmark rows (written as they come: a run cut short keeps
                      what it measured)
    bench.md          the benchmark table with ratios and peak GPU memory
    conformance.md    the conformance matrix report (and conformance.json)

Steps, in order: install; the environment report and the probe (which GPU backends load
and compute here); then at once, each in its own process with a few CPU threads: the
backend tests on ``cupy`` and on ``torch:cuda``, the torch backend's contract tests
(primitive by primitive against NumPy, on the GPU), the Keras 3 agreement tests on
``torch:cuda``, the host round trips per training step on ``torch:cuda`` (the profiler,
benchmarks/host_syncs.py) and the conformance matrix on every usable backend; then, alone
on the machine, the training benchmarks (benchmarks/bench.py --device cuda --quick) and the
peak GPU memory they measured.  Each step runs in its own process group with its own time
cap, which the total budget can shorten; a step that would start with too little budget
left is skipped, saying so.  A GPU step whose backend cannot run here (no CUDA device, CuPy
not installed) is skipped with the backend's reason, so the script exits 0 on a CPU
machine: ``--dry-run`` does that on purpose (no installs, no heavy steps; CI runs it, see
tests/test_gpu_check.py).  The exit status is 1 when a step failed, else 0.

Installs (the GPU machine has no network): the project with ``pip install --no-deps -e .``
(where setuptools is missing and the editable install cannot build, a path install: the
checkout and backends/ on PYTHONPATH and a small ``.dist-info`` with pyproject.toml's entry
points, so the backend plugins are found).  Keras 3 is optional: it is installed from a
``gpu_wheels/`` folder in the checkout when there is one (prepared on a machine with network,
for the GPU machine's Python, see benchmarks/RESULTS.md, "GPU").

Numerics: the test steps run with ``NVIDIA_TF32_OVERRIDE=0`` (so Keras 3's torch backend,
the reference, also computes float32 without TF32; polykeras' torch backend turns TF32 off by
itself) and ``POLYKERAS_DETERMINISTIC=1`` (deterministic cuDNN); so do the benchmarks
(TF32 off), so that every implementation does the same float32 arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_ENV = "GPU_CHECK_BUDGET_S"
DEFAULT_BUDGET_S = 500.0
MIN_START_S = 15.0  # a step is not started with less budget than this left
MAX_FILES = 8
MAX_REASON = 500
NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")
GPU_BACKENDS = ("cupy", "torch:cuda")
TEST_CAP_S = 220  # each test step (the test steps and the conformance matrix run at once)
CONFORMANCE_CAP_S = 220
BENCH_CAP_S = 200
THREADS = {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
KERAS_VERSION = "3.15.1"

# Tests that run on the backend POLYKERAS_BACKEND selects: the backend contract as the
# model code uses it, fused kernels, gradients (torch: autograd vs finite differences).
BACKEND_TESTS = [
    "tests/test_backends.py",
    "tests/test_gradients.py",
    "tests/test_training_gradients.py",
    "tests/test_fused_lstm.py",
    "tests/test_engine.py",
    "tests/test_losses.py",
    "tests/test_normalization.py",
    "tests/test_recurrent.py",
]
# torch:cuda also: the torch backend primitive by primitive against NumPy (on the GPU where
# one is visible) and its fused RMSprop.
TORCH_TESTS = [
    "tests/test_torch_backend.py",
    "tests/test_fused_kernels.py",
    "tests/test_gpu_check.py::test_cuda_batches_go_through_pinned_memory_unchanged",
]
# The tests that compare with real Keras 3 (its torch backend, on the same GPU).
# (test_saving_keras3.py, the .keras file format, is left to the CPU matrix: 2.5 minutes
# of Keras 3 subprocesses that would prove nothing about the GPU.)
KERAS3_TESTS = [
    "tests/test_training_keras.py",
    "tests/test_optimizers.py",
    "tests/test_saving_optimizer.py",
]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short"]
PYTEST += ["--maxfail=25", "--durations=5"]

# The probe: can each GPU backend load and compute here?  Runs in its own process (a hung
# CUDA initialisation cannot hang the script) and prints one JSON object.
PROBE = r"""
import importlib.util, json
import numpy as np
out = {}
try:
    import polykeras
    from polykeras import backend as K
except Exception as exc:
    print(json.dumps({"error": f"import polykeras failed: {type(exc).__name__}: {exc}"}))
    raise SystemExit(0)
infos = {b.name: b for b in polykeras.backends()}
for name in ("cupy", "torch:cuda"):
    base = name.partition(":")[0]
    info = infos.get(base)
    if info is None:
        out[name] = f"backend {base!r} is not discovered (is polykeras installed?)"
        continue
    if not info.usable:
        out[name] = info.reason
        continue
    if name == "torch:cuda":
        import torch
        if not torch.cuda.is_available():
            out[name] = f"torch {torch.__version__}: torch.cuda.is_available() is False"
            continue
    try:
        B = K.load(name)
        a = B.asarray(np.arange(6, dtype="float32").reshape(2, 3))
        got = B.to_numpy(B.matmul(a, B.transpose(a, None)))
        assert np.allclose(got, [[5, 14], [14, 50]]), got
        out[name] = None
        out[name + " device"] = str(getattr(B, "device", "?"))
    except Exception as exc:
        text = " ".join(str(exc).split()).split(" Discovered backends")[0]
        out[name] = f"does not load or compute: {type(exc).__name__}: {text}"
if importlib.util.find_spec("keras") is None:
    out["keras"] = "Keras 3 is not installed (no gpu_wheels/ folder was carried)"
else:
    import importlib.metadata as md
    version = md.version("keras")
    out["keras"] = None if version.startswith("3.") else f"keras {version} is not Keras 3"
    out["keras version"] = version
print(json.dumps(out))
"""

ENV_REPORT = r"""
import importlib.metadata as md, platform, sys
print("python", sys.version.replace("\n", " "), platform.platform())
for dist in ("numpy", "torch", "cupy-cuda13x", "cupy-cuda12x", "keras", "pluggy", "h5py",
             "pytest", "polykeras"):
    try:
        print(f"{dist} {md.version(dist)}")
    except md.PackageNotFoundError:
        pass
try:
    import torch
    print("torch.version.cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
    print("torch.cuda.is_available()", torch.cuda.is_available())
    if torch.cuda.is_available():
        print("torch device", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
except Exception as exc:
    print("torch:", type(exc).__name__, exc)
try:
    import cupy
    print("cupy", cupy.__version__, "runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    print("cupy:", type(exc).__name__, exc)
"""


@dataclass
class Job:
    name: str
    cmd: list[str]
    cap_s: float
    env: dict[str, str]
    reason_from_output: bool = True


@dataclass
class Result:
    name: str
    status: str  # pass, fail or skip
    seconds: float
    reason: str
    output: str = ""  # what the step's command printed

    def line(self) -> str:
        return f"{self.name:28s} {self.status:4s} {self.seconds:6.1f}s  {self.reason}"


def last_line(text: str) -> str:
    """The last non-empty line of ``text``, stripped of pytest's '=' rulers, shortened."""
    lines = [ln.strip(" =") for ln in text.splitlines() if ln.strip(" =")]
    return lines[-1][:300] if lines else "(no output)"


class Runner:
    """Runs steps one after another, each with a time cap inside the total budget; writes
    steps.log as it goes and summary.txt after every step."""

    def __init__(self, out: Path, budget_s: float, dry_run: bool) -> None:
        self.out = out
        self.dry_run = dry_run
        self.budget_s = budget_s
        self.start = time.monotonic()
        self.results: list[Result] = []
        self.env = dict(os.environ)
        self.env.pop("POLYKERAS_BACKEND", None)
        # scratch files (reports, the smoke benchmark) stay outside the output folder
        self.scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.log = open(out / "steps.log", "w", encoding="utf-8")

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def write(self, text: str) -> None:
        self.log.write(text)
        if not text.endswith("\n"):
            self.log.write("\n")
        self.log.flush()

    def record(self, name: str, status: str, seconds: float, reason: str) -> Result:
        res = Result(name, status, seconds, "")
        self.results.append(res)
        self.amend(res, reason, show=False)
        self.write(f"--> {res.line()}\n")
        print(res.line(), flush=True)
        self.write_summary()
        return res

    def amend(self, res: Result, reason: str, show: bool = True) -> None:
        """Set a recorded step's reason (one line, at most MAX_REASON characters)."""
        text = " ".join(reason.split())
        res.reason = text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
        if show:
            self.write(f"--> {res.line()}\n")
            print(res.line(), flush=True)
            self.write_summary()

    def write_summary(self) -> None:
        lines = [r.line() for r in self.results]
        counts = {s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "skip")}
        total = time.monotonic() - self.start
        lines.append(
            f"# {counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skip in "
            f"{total:.1f}s (budget {self.budget_s:.0f}s){'; dry run' if self.dry_run else ''}"
        )
        tmp = self.out / ".summary.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.out / "summary.txt")

    def cap(self, name: str, cap_s: float) -> float | None:
        """The time this step may take, or None (recorded as a skip) when too little is left."""
        left = self.remaining()
        if left < MIN_START_S:
            self.write(f"\n=== {name}: not started\n")
            self.record(name, "skip", 0.0, f"time budget spent ({left:.0f}s of it left)")
            return None
        return min(cap_s, left)

    def skip(self, name: str, reason: str) -> Result:
        self.write(f"\n=== {name}: skipped\n")
        return self.record(name, "skip", 0.0, reason)

    def run(
        self,
        name: str,
        cmd: list[str],
        cap_s: float,
        env: dict[str, str] | None = None,
        reason_from_output: bool = True,
    ) -> Result:
        """One command in its own process group; killed (the whole group) at its cap."""
        return self.run_many([Job(name, cmd, cap_s, env or {}, reason_from_output)])[0]

    def run_many(self, jobs: list[Job]) -> list[Result]:
        """Commands at once (each in its own process group, killed at its own cap); their
        output goes to steps.log one after another, in the order given."""
        started = []
        for job in jobs:
            timeout = self.cap(job.name, job.cap_s)
            if timeout is None:
                started.append((job, None, None, 0.0, 0.0, self.results[-1]))
                continue
            shown = " ".join(f"{k}={v}" for k, v in job.env.items())
            shown_cmd = [a if "\n" not in a else "<script>" for a in job.cmd]
            header = f"\n=== {job.name} (cap {timeout:.0f}s): {shown} {shlex.join(shown_cmd)}\n"
            sink = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            sink.write(header)
            sink.flush()
            proc = subprocess.Popen(
                job.cmd,
                cwd=ROOT,
                env={**self.env, **job.env},
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            started.append((job, proc, sink, timeout, time.monotonic(), len(header)))
        results = []
        for job, proc, sink, timeout, t0, skipped_or_header in started:
            if proc is None:
                results.append(skipped_or_header)
                continue
            try:
                proc.wait(timeout=max(0.0, t0 + timeout - time.monotonic()))
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                timed_out = True
            seconds = time.monotonic() - t0
            sink.seek(0)
            text = sink.read()
            sink.close()
            self.write(text)
            output = text[skipped_or_header:]
            tail = last_line(output)
            if timed_out:
                reason, status = f"timed out after {timeout:.0f}s; {tail}", "fail"
            elif proc.returncode != 0:
                reason, status = f"exit {proc.returncode}: {tail}", "fail"
            else:
                reason, status = (tail if job.reason_from_output else ""), "pass"
            results.append(self.record(job.name, status, seconds, reason))
            results[-1].output = output
        return results

    def call(self, name: str, fn, *args) -> Result:
        """A step written in Python: ``fn(*args)`` returns (status, reason)."""
        self.write(f"\n=== {name}\n")
        t0 = time.monotonic()
        try:
            status, reason = fn(*args)
        except Exception as exc:
            status, reason = "fail", f"{type(exc).__name__}: {exc}"
        return self.record(name, status, time.monotonic() - t0, reason)

    def close(self) -> None:
        self.write_summary()
        self.log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


# -- the steps ----------------------------------------------------------------------------------
def install(runner: Runner) -> None:
    """The project (editable, no dependencies), then Keras 3 from gpu_wheels/ if present."""
    name = "install"
    if runner.dry_run:
        runner.skip(name, "dry run: nothing is installed")
        runner.skip("install-keras3", "dry run: nothing is installed")
        return
    # (a system Python may be marked externally managed: this machine is a throwaway)
    pip_env = {"PIP_BREAK_SYSTEM_PACKAGES": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    res = runner.run(name, cmd + ["--no-index", "-q", "-e", "."], 120, pip_env)
    if res.status == "fail":
        fallback = runner.call("install-path", path_install, runner)
        if fallback.status == "pass":  # the path install stands in: not a failure
            res.status = "skip"
            runner.amend(
                res,
                "pip could not install the checkout, the path install below "
                f"stands in: {res.reason}",
            )
    wheels = ROOT / "gpu_wheels"
    if not wheels.is_dir():
        runner.skip(
            "install-keras3",
            "no gpu_wheels/ folder in the checkout: Keras 3 steps will skip "
            "(see benchmarks/RESULTS.md, GPU, to prepare one)",
        )
        return
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels)]
    runner.run("install-keras3", pip + [f"keras=={KERAS_VERSION}"], 120, pip_env)


def path_install(runner: Runner) -> tuple[str, str]:
    """Without setuptools the editable install cannot build: put the checkout on PYTHONPATH
    with a .dist-info holding pyproject.toml's entry points, so the plugins are found."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return "fail", "the path install reads pyproject.toml with tomllib (Python >= 3.11)"
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    site = runner.scratch / "site"
    info = site / f"{project['name']}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    groups = project.get("entry-points", {})
    text = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()
    )
    (info / "entry_points.txt").write_text(text)
    parts = [str(ROOT), str(ROOT / "backends"), str(site)]
    old = runner.env.get("PYTHONPATH")
    runner.env["PYTHONPATH"] = os.pathsep.join(parts + ([old] if old else []))
    return "pass", f"path install: PYTHONPATH={runner.env['PYTHONPATH']}"


def environment_and_probe(runner: Runner) -> dict:
    """The environment report (environment.txt) and the probe, at once: which GPU backends
    load and compute here, and whether Keras 3 is there."""
    chunks: list[str] = []
    jobs = []
    for label, cmd, cap in (
        ("nvidia-smi", ["nvidia-smi"], 30),
        ("versions", [sys.executable, "-c", ENV_REPORT], 60),
        ("backends", [sys.executable, "-m", "polykeras", "backends"], 60),
    ):
        if shutil.which(cmd[0]) is None and not os.path.isabs(cmd[0]):
            res = runner.skip(f"env-{label}", f"{cmd[0]} is not on PATH (no NVIDIA driver here)")
            chunks.append(f"## {label}\n{res.reason}\n")
        else:
            jobs.append(Job(f"env-{label}", cmd, cap, {}, reason_from_output=False))
    jobs.append(Job("probe", [sys.executable, "-c", PROBE], 120, {}, reason_from_output=False))
    *env_results, res = runner.run_many(jobs)
    for job, done in zip(jobs, env_results):
        chunks.append(f"## {job.name[4:]} ({done.status})\n{done.output}\n")
    (runner.out / "environment.txt").write_text("".join(chunks), encoding="utf-8")

    found: dict = {}
    if res.status == "pass":
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        text = lines[-1] if lines else ""
        try:
            found = json.loads(text)
        except json.JSONDecodeError:
            found = {"error": f"probe printed no JSON: {text[:200]}"}
    else:
        found = {"error": f"probe failed: {res.reason}"}
    if "error" in found:
        found = {name: found["error"] for name in (*GPU_BACKENDS, "keras")}
    parts = []
    for name in (*GPU_BACKENDS, "keras"):
        why = found.get(name)
        extra = found.get(f"{name} device") or found.get(f"{name} version") or ""
        parts.append(f"{name}: " + ("ok " + extra if why is None else f"unusable ({why})"))
    runner.amend(res, "; ".join(parts))
    return found


def seeds_folder() -> tuple[Path | None, str]:
    """The guides' folder: $POLYKERAS_SEEDS_DIR, else shared/seeds in the checkout, else
    ../shared/seeds beside it (which does not travel to the GPU machine)."""
    env = os.environ.get("POLYKERAS_SEEDS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [ROOT / "shared" / "seeds", ROOT.parent / "shared" / "seeds"]
    for path in candidates:
        if path.is_dir():
            return path, ""
    return None, (
        "the guides were not found (looked in "
        + ", ".join(str(p) for p in candidates)
        + "): set POLYKERAS_SEEDS_DIR or copy them to shared/seeds in the checkout; "
        "only docs/ ran"
    )


def gpu_jobs(runner: Runner, found: dict) -> list[Job]:
    """The test steps and the conformance matrix, to run at once (16 cores and one large
    GPU; each is its own process group with its own cap).  What cannot run is recorded as
    skipped, with the reason."""
    # five processes share 16 cores: a few threads each
    test_env = {"NVIDIA_TF32_OVERRIDE": "0", "POLYKERAS_DETERMINISTIC": "1", **THREADS}
    jobs = []
    for name, backend, files in (
        ("tests-cupy", "cupy", BACKEND_TESTS),
        ("tests-torch-cuda", "torch:cuda", BACKEND_TESTS),
        ("contract-torch-cuda", "torch:cuda", TORCH_TESTS),
    ):
        if found.get(backend) is not None:
            runner.skip(name, f"{backend}: {found[backend]}")
        elif runner.dry_run:
            runner.skip(name, "dry run: the GPU tests are not run")
        else:
            env = {**test_env, "POLYKERAS_BACKEND": backend}
            jobs.append(Job(name, PYTEST + files, TEST_CAP_S, env))
    name = "keras3-agreement-torch-cuda"
    if found.get("torch:cuda") is not None:
        runner.skip(name, f"torch:cuda: {found['torch:cuda']}")
    elif found.get("keras") is not None:
        runner.skip(name, str(found["keras"]))
    elif runner.dry_run:
        runner.skip(name, "dry run: the GPU tests are not run")
    else:
        env = {**test_env, "POLYKERAS_BACKEND": "torch:cuda"}
        jobs.append(Job(name, PYTEST + KERAS3_TESTS, TEST_CAP_S, env))
    name = "host-syncs-torch-cuda"
    if found.get("torch:cuda") is not None:
        runner.skip(name, f"torch:cuda: {found['torch:cuda']}")
    elif runner.dry_run:
        runner.skip(name, "dry run: the profiler is not run")
    else:
        cmd = [sys.executable, "benchmarks/host_syncs.py", "--backend", "torch:cuda"]
        jobs.append(Job(name, cmd, 120, dict(THREADS), reason_from_output=False))
    name = "conformance"
    if all(found.get(b) is not None for b in GPU_BACKENDS):
        runner.skip(name, "no GPU backend is usable here (the CPU matrix runs in tox)")
    elif runner.dry_run:
        runner.skip(name, "dry run: the conformance matrix is not run")
    else:
        seeds, _ = seeds_folder()
        paths = ["docs"] + ([str(seeds)] if seeds else [])
        cmd = [sys.executable, "-m", "polykeras", "conformance", *paths, "--backend", "all"]
        cmd += ["--report", str(runner.scratch / "conformance")]
        env = {"NVIDIA_TF32_OVERRIDE": "0", **THREADS}
        jobs.append(Job(name, cmd, CONFORMANCE_CAP_S, env))
    return jobs


def finish_host_syncs(runner: Runner, res: Result) -> None:
    """The profiler's counts per training step, in the result line."""
    lines = [ln for ln in res.output.splitlines() if ln.startswith("{")]
    try:
        per_step = json.loads(lines[-1])["per_step"]
    except (IndexError, ValueError, KeyError):
        runner.amend(res, "no counts printed")
        return
    runner.amend(
        res,
        "per training step (1 DtoH copy = reading the loss): "
        + "; ".join(
            f"{model}: " + ", ".join(f"{k} {v:g}" for k, v in counts.items())
            for model, counts in per_step.items()
        ),
    )


def finish_conformance(runner: Runner, res: Result) -> None:
    """Bring the matrix report into the output folder; note missing guides."""
    report = runner.scratch / "conformance"
    for file in ("conformance.md", "conformance.json"):
        if (report / file).is_file():
            shutil.copyfile(report / file, runner.out / file)
    reason = res.reason
    try:
        data = json.loads((report / "conformance.json").read_text(encoding="utf-8"))
        counts = data["summary"]
        ran = ", ".join(
            f"{b['name']} on {b['device']}" if b["usable"] else f"{b['name']} not usable"
            for b in data["backends"]
        )

        def show(kind: str) -> str:
            return ", ".join(f"{n} {k}" for k, n in counts.get(kind, {}).items())

        reason = (
            f"{ran}; blocks: {show('blocks')}; agreement: {show('agreement')}; "
            f"unexpected: {len(counts.get('unexpected', []))}"
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason += f"; no readable conformance.json ({type(exc).__name__})"
    _, note = seeds_folder()
    runner.amend(res, reason + (f"; NOTE: {note}" if note else ""))


def bench(runner: Runner, found: dict) -> None:
    name = "bench-gpu"
    unusable = [f"{b}: {found[b]}" for b in ("torch:cuda", "cupy") if found.get(b) is not None]
    if runner.dry_run:
        # exercise the benchmark's code on the CPU (tiny; its JSON outside the output folder)
        cmd = [sys.executable, "benchmarks/bench.py", "--models", "mlp", "--impls"]
        cmd += ["polykeras-numpy", "--steps", "2", "--rounds", "1", "--warmup", "1"]
        cmd += ["--repeats", "1", "--json", str(runner.scratch / "bench.json")]
        runner.run("bench-cpu-smoke", cmd, 60, reason_from_output=False)
    if len(unusable) == 2:
        runner.skip(name, "no GPU backend is usable here: " + "; ".join(unusable))
        return
    if runner.dry_run:
        runner.skip(name, "dry run: the GPU benchmarks are not run")
        return
    js, md = runner.out / "bench.json", runner.out / "bench.md"
    cmd = [sys.executable, "benchmarks/bench.py", "--device", "cuda", "--quick"]
    cmd += ["--json", str(js), "--out", str(md)]
    # every implementation computes IEEE float32 (no TF32 in cuBLAS/cuDNN), as polykeras does
    res = runner.run(name, cmd, BENCH_CAP_S, {"NVIDIA_TF32_OVERRIDE": "0"}, False)
    if not md.is_file() and js.is_file():  # cut short: the table of what was measured
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import bench as bench_module

        md.write_text(
            "(run cut short)\n\n" + bench_module.table_from_json(js) + "\n", encoding="utf-8"
        )
    if md.is_file():
        ratios = [ln.lstrip("- ") for ln in md.read_text().splitlines() if "x Keras 3" in ln]
        lead = res.reason + "; " if res.reason else ""
        runner.amend(res, lead + "table in bench.md; " + "; ".join(ratios))


def gpu_memory(runner: Runner) -> tuple[str, str]:
    """Peak GPU memory per implementation (max over models) from bench.json."""
    js = runner.out / "bench.json"
    if not js.is_file():
        return "skip", "no bench.json (the GPU benchmarks did not run)"
    rows = json.loads(js.read_text())["runs"]
    peaks: dict[str, float] = {}
    for row in rows:
        if row.get("peak_gpu_mb") is not None:
            key = f"{row['impl']}/{row['model']}"
            peaks[key] = max(peaks.get(key, 0.0), row["peak_gpu_mb"])
    if not peaks:
        return "fail", "bench.json holds no peak GPU memory"
    runner.write("\n".join(f"{k}: {v:.0f} MB" for k, v in sorted(peaks.items())))
    return "pass", "peak GPU MB: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peaks.items()))


def check_output(out: Path) -> list[str]:
    """What breaks the device tool's limits on the returned folder (empty when nothing)."""
    problems = []
    files = [p for p in out.rglob("*") if p.is_file()]
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files (at most {MAX_FILES})")
    for p in files:
        rel = p.relative_to(out)
        if len(rel.parts) > 2:
            problems.append(f"{rel}: more than 2 folders deep")
        if not all(NAME_OK.match(part) for part in rel.parts):
            problems.append(f"{rel}: a name with characters other than letters, digits, ._-")
        if p.stat().st_size > 16 * 2**20:
            problems.append(f"{rel}: larger than 16 MiB")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default=None, help="output folder ($OUT by default)")
    parser.add_argument(
        "--dry-run", action="store_true", help="no installs and no heavy steps (CI on a CPU)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out or os.environ.get("OUT") or "gpu-check-out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    budget = float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_S))
    runner = Runner(out, budget, args.dry_run)
    runner.write(f"gpu_check: out={out} budget={budget:.0f}s dry_run={args.dry_run} root={ROOT}")
    try:
        install(runner)
        found = environment_and_probe(runner)
        for res in runner.run_many(gpu_jobs(runner, found)):
            if res.name == "conformance" and res.status != "skip":
                finish_conformance(runner, res)
            if res.name == "host-syncs-torch-cuda" and res.status == "pass":
                finish_host_syncs(runner, res)
        bench(runner, found)
        runner.call("gpu-memory", gpu_memory, runner)
    finally:
        runner.close()
    problems = check_output(out)
    if problems:
        print("gpu_check: the output folder breaks the device tool's limits:", "; ".join(problems))
        return 1
    failed = [r.name for r in runner.results if r.status == "fail"]
    print(f"gpu_check: {'failed: ' + ', '.join(failed) if failed else 'no step failed'}; see {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
