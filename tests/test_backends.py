"""Backend discovery through entry points, selection precedence and the errors of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import polykeras
from polykeras import backend as K
from polykeras import config, plugins

TINY_PLUGIN = """
from polykeras.plugins import hookimpl


def _factory(device=None):
    from polykeras_numpy.backend import NumpyBackend

    class TinyBackend(NumpyBackend):
        name = "tiny"

    return TinyBackend()


@hookimpl
def polykeras_register_backends(register):
    register("tiny", factory=_factory, description="a third-party test backend")
"""


def _install_dist(root, dist, module, source, entry_name):
    """Lay out an installed distribution (code + dist-info with an entry point)."""
    pkg = root / module
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[polykeras]\n{entry_name} = {module}.plugin\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh site folder on sys.path; discovery is reset before and after."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(config.ENV_BACKEND, raising=False)
    monkeypatch.setenv(config.ENV_HOME, str(tmp_path / "home"))
    K.reset_backend()
    plugins.reset()
    yield root
    K.reset_backend()
    plugins.reset()


def test_numpy_is_discovered_usable_and_default(site):
    infos = {b.name: b for b in polykeras.backends()}
    assert infos["numpy"].usable
    assert K.current().name == "numpy"
    assert config.requested_backend() == ("numpy", "the default")


def test_third_party_plugin_selectable_by_api_env_and_file(site, monkeypatch, tmp_path):
    _install_dist(site, "tinybackend", "tinybackend", TINY_PLUGIN, "tiny")
    plugins.reset()
    assert {b.name for b in polykeras.backends()} >= {"numpy", "tiny"}
    # API
    with polykeras.use_backend("tiny") as b:
        assert b.name == "tiny" and K.current().name == "tiny"
    assert K.current().name == "numpy"
    polykeras.set_backend("tiny")
    assert K.backend() == "tiny"
    K.reset_backend()
    # environment variable
    monkeypatch.setenv(config.ENV_BACKEND, "tiny")
    assert K.current().name == "tiny"
    monkeypatch.delenv(config.ENV_BACKEND)
    # config file
    home = tmp_path / "home"
    home.mkdir()
    (home / "polykeras.json").write_text(json.dumps({"backend": "tiny"}))
    assert K.current().name == "tiny"


def test_precedence_api_over_env_over_file(site, monkeypatch, tmp_path):
    _install_dist(site, "tinybackend", "tinybackend", TINY_PLUGIN, "tiny")
    plugins.reset()
    home = tmp_path / "home"
    home.mkdir()
    (home / "polykeras.json").write_text(json.dumps({"backend": "tiny"}))
    monkeypatch.setenv(config.ENV_BACKEND, "numpy")
    assert K.current().name == "numpy"  # env beats file
    with polykeras.use_backend("tiny"):
        monkeypatch.setenv(config.ENV_BACKEND, "numpy")
        assert K.current().name == "tiny"  # API beats env


def test_unknown_backend_names_value_source_and_choices(site, monkeypatch):
    with pytest.raises(polykeras.BackendError) as err:
        polykeras.set_backend("jax")
    msg = str(err.value)
    assert "'jax'" in msg and "Python API" in msg and "numpy" in msg
    monkeypatch.setenv(config.ENV_BACKEND, "nope")
    with pytest.raises(polykeras.BackendError, match="environment variable POLYKERAS_BACKEND"):
        K.current()


def test_malformed_config_file_names_the_file(site, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "polykeras.json"
    path.write_text("{not json")
    with pytest.raises(polykeras.ConfigError, match=str(path).replace("\\", "\\\\")):
        K.current()
    path.write_text(json.dumps({"backend": "numpy", "image_data_format": "sideways"}))
    with pytest.raises(polykeras.ConfigError, match="image_data_format"):
        config.image_data_format()
    path.write_text(json.dumps(["numpy"]))
    with pytest.raises(polykeras.ConfigError, match="JSON object"):
        K.current()


def test_config_file_backend_unknown_names_file(site, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "polykeras.json").write_text(json.dumps({"backend": "mxnet"}))
    with pytest.raises(polykeras.BackendError, match="config file .*polykeras.json"):
        K.current()


def test_empty_env_value_is_an_error(site, monkeypatch):
    monkeypatch.setenv(config.ENV_BACKEND, "  ")
    with pytest.raises(polykeras.ConfigError, match="POLYKERAS_BACKEND"):
        K.current()


def test_broken_plugins_are_reported_and_do_not_stop_others(site):
    _install_dist(
        site, "brokenimport", "brokenimport", "raise ImportError('no such thing')\n", "broken"
    )
    _install_dist(
        site,
        "brokenhook",
        "brokenhook",
        """
        from polykeras.plugins import hookimpl

        @hookimpl
        def polykeras_register_backends(register):
            raise RuntimeError("hook exploded")
        """,
        "explodes",
    )
    _install_dist(site, "tinybackend", "tinybackend", TINY_PLUGIN, "tiny")
    plugins.reset()
    names = {b.name for b in polykeras.backends()}
    assert {"numpy", "tiny"} <= names
    errors = {e.plugin.split()[0]: e.error for e in plugins.plugin_errors()}
    assert "no such thing" in errors["broken"]
    assert "hook exploded" in errors["explodes"]
    with pytest.raises(polykeras.BackendError) as err:
        polykeras.set_backend("broken")
    assert "broken" in str(err.value) and "no such thing" in str(err.value)


def test_unusable_backend_says_why(site):
    def probe():
        return "installed, but no CUDA device is visible"

    class Plugin:
        @staticmethod
        @plugins.hookimpl
        def polykeras_register_backends(register):
            register("fakegpu", factory=lambda device=None: None, probe=probe)

    plugins.register_plugin(Plugin, name="fakegpu-plugin")
    try:
        info = {b.name: b for b in polykeras.backends()}["fakegpu"]
        assert not info.usable and "no CUDA device" in info.reason
        with pytest.raises(polykeras.BackendError, match="no CUDA device is visible"):
            polykeras.set_backend("fakegpu")
    finally:
        plugins.unregister_plugin("fakegpu-plugin")


def test_incomplete_backend_is_refused_naming_missing_methods(site):
    class Half:
        name = "half"
        device = "cpu"

        def asarray(self, x, dtype=None):
            return x

    class Plugin:
        @staticmethod
        @plugins.hookimpl
        def polykeras_register_backends(register):
            register("half", factory=lambda device=None: Half())

    plugins.register_plugin(Plugin, name="half-plugin")
    try:
        with pytest.raises(polykeras.BackendError, match="missing .*matmul"):
            polykeras.set_backend("half")
    finally:
        plugins.unregister_plugin("half-plugin")


def test_import_polykeras_imports_no_framework():
    code = (
        "import sys, time; t = time.perf_counter(); import polykeras; "
        "polykeras.backends(); dt = time.perf_counter() - t; "
        "print(dt, 'torch' in sys.modules, 'cupy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1:] == ["False", "False"]


def test_cli_backends_table(site):
    out = subprocess.run(
        [sys.executable, "-m", "polykeras", "backends"], capture_output=True, text=True, check=True
    ).stdout
    assert "numpy" in out and "yes" in out and "selected: numpy" in out


def test_held_settings_read_the_config_file_once(site, tmp_path):
    """Training loops hold the config file: one read on entry, then no file access per step;
    the Python API still applies at once, and the file counts again afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    path = home / "polykeras.json"
    path.write_text(json.dumps({"epsilon": 1e-3}))
    assert config.epsilon() == 1e-3
    with config.held():
        path.write_text(json.dumps({"epsilon": 1e-5, "floatx": "float64"}))
        assert config.epsilon() == 1e-3 and config.floatx() == "float32"
        config.set_epsilon(1e-4)
        assert config.epsilon() == 1e-4
    config._api["epsilon"] = None
    assert config.epsilon() == 1e-5 and config.floatx() == "float64"


# -- did you mean, and the `backends` command when something is wrong --------------------------
def test_unknown_backend_suggests_a_close_name_from_every_source(site, monkeypatch, tmp_path):
    with pytest.raises(polykeras.BackendError, match="did you mean 'numpy'"):
        polykeras.set_backend("nmupy")
    with pytest.raises(polykeras.BackendError, match="did you mean 'numpy'"):
        with polykeras.use_backend("Numpy"):
            pass
    monkeypatch.setenv(config.ENV_BACKEND, "numpi")
    with pytest.raises(
        polykeras.BackendError, match="environment variable POLYKERAS_BACKEND.*did you mean 'numpy'"
    ):
        K.current()
    monkeypatch.delenv(config.ENV_BACKEND)
    home = tmp_path / "home"
    home.mkdir()
    (home / "polykeras.json").write_text(json.dumps({"backend": "nunpy"}))
    with pytest.raises(polykeras.BackendError, match="config file .*did you mean 'numpy'"):
        K.current()
    # no suggestion when nothing is close
    with pytest.raises(polykeras.BackendError) as err:
        polykeras.set_backend("jax")
    assert "did you mean" not in str(err.value)


def test_did_you_mean_ignores_the_device_part():
    assert config.did_you_mean("tourch:cuda:0", ["numpy", "torch"]) == " (did you mean 'torch'?)"
    assert config.did_you_mean("torch", ["numpy", "torch"]) == ""
    assert config.did_you_mean("mxnet", ["numpy", "torch"]) == ""


def _backends_command(capsys) -> tuple[int, str, str]:
    from polykeras.__main__ import main

    code = main(["backends"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_backends_flags_an_unknown_selected_backend(site, monkeypatch, capsys):
    monkeypatch.setenv(config.ENV_BACKEND, "nmupy")
    code, out, err = _backends_command(capsys)
    assert code == 1
    assert "selected: nmupy (from environment variable POLYKERAS_BACKEND)" in out
    assert "unknown backend 'nmupy'" in err and "did you mean 'numpy'?" in err


def test_cli_backends_flags_a_selected_backend_that_is_not_usable(site, monkeypatch, capsys):
    class Plugin:
        @staticmethod
        @plugins.hookimpl
        def polykeras_register_backends(register):
            register(
                "fakegpu",
                factory=lambda device=None: None,
                probe=lambda: "installed, but no CUDA device is visible",
            )

    plugins.register_plugin(Plugin, name="fakegpu-plugin")
    try:
        code, out, err = _backends_command(capsys)
        assert code == 0  # an unusable backend nobody selected is not a problem
        monkeypatch.setenv(config.ENV_BACKEND, "fakegpu")
        code, out, err = _backends_command(capsys)
    finally:
        plugins.unregister_plugin("fakegpu-plugin")
    assert code == 1
    assert "'fakegpu'" in err and "not usable here: installed, but no CUDA device" in err


def test_cli_backends_flags_failed_plugins(site, capsys):
    _install_dist(
        site, "brokenimport", "brokenimport", "raise ImportError('no such thing')\n", "broken"
    )
    plugins.reset()
    code, out, err = _backends_command(capsys)
    assert code == 1
    assert "plugin broken (brokenimport.plugin) failed: ImportError: no such thing" in out
    assert "selected: numpy" in out


def test_cli_backends_lists_an_incomplete_backend_as_not_usable(site, capsys):
    class Half:
        name = "half"
        device = "cpu"

        def asarray(self, x, dtype=None):
            return x

    class Plugin:
        @staticmethod
        @plugins.hookimpl
        def polykeras_register_backends(register):
            register("half", factory=lambda device=None: Half())

    plugins.register_plugin(Plugin, name="half-plugin")
    try:
        code, out, err = _backends_command(capsys)
    finally:
        plugins.unregister_plugin("half-plugin")
    row = next(line for line in out.splitlines() if line.startswith("half "))
    assert row.split()[1] == "no", row
    assert "does not implement the backend contract" in row and "matmul" in row
    assert code == 1 and "half" in err
    # `backends()` itself stays cheap: it only probes, never starts a backend
    assert any(line.startswith("numpy ") and line.split()[1] == "yes" for line in out.splitlines())


def test_cli_backends_without_any_plugin(site, monkeypatch, capsys):
    """As when polykeras is imported from a checkout that was never installed: no entry
    points, so no backend at all."""
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: [])
    plugins.reset()
    code, out, err = _backends_command(capsys)
    assert code == 1
    assert "no backends discovered" in out and "pip install -e ." in out
    assert "unknown backend 'numpy'" in err


# -- install hints that work without polykeras on PyPI ---------------------------------------------
@pytest.mark.parametrize(
    "module, framework", [("polykeras_torch.plugin", "torch"), ("polykeras_cupy.plugin", "cupy")]
)
def test_not_installed_says_how_to_install_from_a_checkout(monkeypatch, module, framework):
    import importlib

    plugin = importlib.import_module(module)
    real = plugin.importlib.util.find_spec
    monkeypatch.setattr(
        plugin.importlib.util,
        "find_spec",
        lambda name, *a: None if name == framework else real(name, *a),
    )
    reason = plugin.probe()
    assert f"{framework} is not installed" in reason
    assert f"pip install -e '.[{framework}]'" in reason and "checkout" in reason
    assert "pip install 'polykeras" not in reason  # polykeras is not on PyPI
    if framework == "torch":
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reason
