"""The conformance runner itself, on tiny synthetic documents (Input, Dense, Model, predict)."""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import polykeras
from polykeras import config
from polykeras.__main__ import main as polykeras_main
from polykeras.conformance import agreement, data, expectations, markdown, namespace
from polykeras.conformance import runner as rn
from polykeras.conformance.document import find_documents, load_document
from polykeras.training.data import DataSpec

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
FENCE = "```"


def write_doc(folder: Path, name: str, text: str) -> Path:
    """Write a document; ``~~~`` in the text stands for a backtick fence."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.replace("~~~", FENCE), encoding="utf-8")
    return path


def run_text(folder: Path, name: str, text: str, backend: str = "numpy") -> rn.DocumentRun:
    """Write an indented document text, load it and run it."""
    return rn.run_document(load_document(write_doc(folder, name, textwrap.dedent(text))), backend)


TINY = textwrap.dedent("""\
    # A tiny guide

    ~~~python
    from keras.layers import Input, Dense
    from keras.models import Model
    inputs = Input(shape=(4,))
    outputs = Dense(3, activation='softmax')(inputs)
    model = Model(inputs=inputs, outputs=outputs)
    ~~~

    ~~~python
    y = model.predict(data)
    assert y.shape == (64, 3), y.shape
    ~~~
    """)


# -- markdown ---------------------------------------------------------------------------------
def test_fences_are_classified_by_the_documented_rule():
    text = textwrap.dedent("""\
        ## ~~~Sequential~~~ in a heading is no fence

        ~~~python
        x = 1
        ~~~
        ~~~
        y = x + 1
        ~~~\t
        ~~~
        Model: "model_1"
        ______________________________
        Layer (type)       Param #
        ==============================
        ~~~
        ~~~python
        >> AssertionError: Layer lstm_1 has multiple inbound nodes,
        hence the notion is ill-defined.
        ~~~
        ~~~bash
        pip install polykeras
        ~~~
        ~~~
        just_a_name
        ~~~
        ~~~python
        unclosed = True
        """).replace("~~~", FENCE)
    blocks = markdown.parse(text)
    kinds = [(b.line, b.kind) for b in blocks]
    assert kinds == [
        (4, "code"),
        (7, "code"),
        (10, "printout"),
        (16, "error-printout"),
        (20, "other"),
        (23, "printout"),
        (26, "code"),
    ]
    err = blocks[3]
    assert err.error_type == "AssertionError"
    assert err.error_message == (
        "Layer lstm_1 has multiple inbound nodes, hence the notion is ill-defined."
    )
    assert blocks[1].text == "y = x + 1\n"


# -- errata and expectations -----------------------------------------------------------------
def test_errata_lines_need_a_fix_and_a_reason():
    ok = expectations.parse_errata('# comment\n\ndoc_  "a. b" -> "a, b"  # a typo\n')
    assert [(e.prefix, e.wrong, e.right, e.reason) for e in ok] == [
        ("doc_", "a. b", "a, b", "a typo")
    ]
    for bad in ('doc_ "a" -> "b"', 'doc_ "a" "b"  # reason', "print('hi')"):
        with pytest.raises(expectations.DataFileError):
            expectations.parse_errata(bad)


def test_errata_are_applied_to_code_blocks(tmp_path):
    errata = tmp_path / "errata.txt"
    errata.write_text(
        'tiny_  "Dense(3, activatlon=" -> "Dense(3, activation="  # OCR typo\n'
        'tiny_  "never there" -> "x"  # unused on purpose\n'
    )
    path = write_doc(tmp_path, "tiny_doc.md", TINY.replace("activation=", "activatlon="))
    doc = load_document(path, errata_file=errata)
    assert "activation='softmax'" in doc.code_blocks[0].text
    assert doc.code_blocks[0].errata and "OCR typo" in doc.code_blocks[0].errata[0]
    assert [e.wrong for e in doc.unused_errata] == ["never there"]
    run = rn.run_document(doc, "numpy")
    assert [r.status for r in run.results] == [rn.PASSED, rn.PASSED]


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"{SEEDS} does not exist")
def test_every_erratum_applies_to_its_guide():
    for path in find_documents([SEEDS])[0]:
        doc = load_document(path)
        assert not doc.unused_errata, f"{path.name}: stale errata {doc.unused_errata}"
    first = load_document(next(SEEDS.glob("000_*"))).code_blocks[0].text
    assert "from keras.layers import Input, Dense" in first
    assert "model.fit(data, labels)" in first


NODES = textwrap.dedent("""\
    ~~~python
    from keras.layers import Input, Dense
    a = Input(shape=(4,))
    b = Input(shape=(4,))
    dense = Dense(2)
    dense(a)
    dense(b)
    ~~~

    ~~~
    dense.output
    ~~~

    ~~~python
    >> AssertionError: Layer dense_1 has multiple inbound nodes,
    hence the notion of "layer output" is ill-defined.
    Use `get_output_at(node_index)` instead.
    ~~~
    """)


def test_expected_failure_matched_from_the_error_printout(tmp_path):
    # the printout says dense_1; the layer here is dense_3: auto-names are normalised
    text = NODES.replace("dense = Dense(2)", "Dense(1); Dense(1)\ndense = Dense(2)")
    doc = load_document(write_doc(tmp_path, "nodes.md", text))
    exp = doc.code_blocks[1].expectation
    assert exp.types == ["AssertionError"]
    run = rn.run_document(doc, "numpy")
    assert run.results[1].status == rn.FAILED  # AttributeError is not the documented type
    assert "expected AssertionError" in run.results[1].detail

    exp.types.append("AttributeError")  # what documents.json adds for the seeds
    run = rn.run_document(doc, "numpy")
    assert run.results[1].status == rn.XFAIL_OK, run.results[1].summary()
    assert "dense_3" in run.results[1].error_message
    assert run.results[1].error_line == 12


def test_expectations_file_unexpected_pass_and_wrong_message(tmp_path):
    docs_file = tmp_path / "documents.json"
    docs_file.write_text(
        json.dumps(
            {
                "defaults": {"data_names": ["data"]},
                "documents": {
                    "exp_": {
                        "expected_failures": [
                            {
                                "block": "y = model.predict(data)",
                                "types": ["ValueError"],
                                "why": "test",
                            },
                            {
                                "block": "raise KeyError",
                                "types": ["KeyError"],
                                "message_contains": ["other"],
                            },
                        ]
                    }
                },
            }
        )
    )
    text = TINY + "\n~~~python\nraise KeyError('some text')\n~~~\n"
    doc = load_document(write_doc(tmp_path, "exp_doc.md", text), documents_file=docs_file)
    statuses = [r.status for r in rn.run_document(doc, "numpy").results]
    assert statuses == [rn.PASSED, rn.UNEXPECTED_PASS, rn.FAILED]

    docs_file.write_text(
        json.dumps(
            {
                "defaults": {},
                "documents": {
                    "exp_": {"expected_failures": [{"block": "model", "types": ["ValueError"]}]}
                },
            }
        )
    )
    expectations._documents_cached.cache_clear()
    with pytest.raises(expectations.DataFileError, match="exactly one"):
        load_document(doc.path, documents_file=docs_file)


def test_error_line_syntax_error_and_later_blocks_still_run(tmp_path):
    text = """\
        ~~~python
        x = 1
        y = undefined_name
        ~~~
        ~~~python
        def broken(:
        ~~~
        ~~~python
        assert x == 1
        ~~~
        """
    run = run_text(tmp_path, "lines.md", text)
    (a, b, c) = run.results
    assert (a.status, a.error_type, a.error_line) == (rn.FAILED, "NameError", 3)
    assert "y = undefined_name" in a.traceback
    assert (b.error_type, b.error_line) == ("SyntaxError", 6)
    assert c.status == rn.PASSED


# -- the keras mapping ---------------------------------------------------------------------------
def test_keras_means_polykeras_only_inside_the_run(tmp_path):
    text = """\
        ~~~python
        import keras
        import keras.layers
        import keras.layers as L
        from keras import backend as K
        from keras.layers import Dense
        assert keras.__name__ == "polykeras"
        assert L.Dense is Dense and K is keras.backend
        ~~~
        """
    before = builtins.__import__
    run = run_text(tmp_path, "mapping.md", text)
    assert run.results[0].status == rn.PASSED, run.results[0].summary()
    assert builtins.__import__ is before
    assert sys.modules.get("keras") is not polykeras
    spec = importlib.util.find_spec("keras") if "keras" not in sys.modules else None
    assert spec is None or "polykeras" not in str(spec.origin)
    assert namespace.map_module("keras.layers") == "polykeras.layers"
    assert namespace.map_module("kerasx") == "kerasx"


def test_settings_are_applied_and_restored(tmp_path, monkeypatch):
    monkeypatch.delenv(rn.MAX_EPOCHS_ENV, raising=False)
    text = """\
        ~~~python
        import os
        import keras
        seen = (keras.backend.image_data_format(), os.environ["POLYKERAS_MAX_EPOCHS"])
        assert seen == ("channels_first", "1"), seen
        ~~~
        """
    doc = load_document(write_doc(tmp_path, "settings.md", textwrap.dedent(text)))
    doc.settings["image_data_format"] = "channels_first"
    doc.blocks[0].text += "os.environ['PK_CONFORMANCE_TEST'] = '1'\nos.chdir('/')\nraise OSError\n"
    before, cwd = config.image_data_format(), os.getcwd()
    run = rn.run_document(doc, "numpy")
    assert run.results[0].error_type == "OSError", run.results[0].summary()
    assert config.image_data_format() == before
    assert rn.MAX_EPOCHS_ENV not in os.environ and "PK_CONFORMANCE_TEST" not in os.environ
    assert os.getcwd() == cwd


# -- data binding ---------------------------------------------------------------------------------
def spec(role, shape, dtype="float32", n=None, **hints):
    return DataSpec(role, "x", shape, dtype, n, hints)


def test_data_rule_for_inputs():
    rng = np.random.default_rng(0)
    x = data.synthesize(spec("input", (None, 5)), rng)
    assert x.shape == (64, 5) and x.dtype == np.float32 and abs(x.mean()) < 0.3
    ints = data.synthesize(spec("input", (None, 100), "int32", int_range=(0, 10000)), rng)
    assert ints.dtype == np.int32 and ints.min() >= 0 and ints.max() < 10000
    assert ints.max() > 1000
    default = data.synthesize(spec("input", (None, 3), "int32", n=10), rng)
    assert default.shape == (10, 3) and default.max() < 1000
    assert data.synthesize(spec("input", (None, None, 2)), rng).shape == (64, 8, 2)


def test_data_rule_for_targets():
    rng = np.random.default_rng(0)
    binary = data.synthesize(
        spec("target", (None, 1), loss="binary_crossentropy", activation="relu"), rng
    )
    assert set(np.unique(binary)) <= {0.0, 1.0} and binary.dtype == np.float32
    assert set(
        np.unique(data.synthesize(spec("target", (None, 2), activation="sigmoid"), rng))
    ) <= {0.0, 1.0}
    onehot = data.synthesize(spec("target", (None, 10), activation="softmax"), rng)
    assert onehot.shape == (64, 10) and np.all(onehot.sum(axis=-1) == 1)
    sparse = data.synthesize(
        spec("target", (None, 10), loss="sparse_categorical_crossentropy", num_classes=10), rng
    )
    assert sparse.shape == (64, 1) and sparse.max() < 10 and sparse.dtype.kind == "i"
    normal = data.synthesize(spec("target", (None, 2), loss="mse", activation="linear"), rng)
    assert not set(np.unique(normal)) <= {0.0, 1.0}


def test_same_name_and_spec_give_the_same_array():
    pool = data.DataPool(seed=1)
    free = pool.bindings(["data"])["data"]
    a = free.__polykeras_data__(spec("input", (None, 4)))
    assert free.__polykeras_data__(spec("input", (None, 4))) is a
    assert free.__polykeras_data__(spec("input", (None, 5))).shape == (64, 5)
    again = data.DataPool(seed=1).bindings(["data"])["data"]
    assert np.array_equal(again.__polykeras_data__(spec("input", (None, 4))), a)
    other = pool.bindings(["labels"])["labels"].__polykeras_data__(spec("input", (None, 4)))
    assert not np.array_equal(other, a)


def test_free_data_feeds_an_embedding(tmp_path):
    text = """\
        ~~~python
        from keras.layers import Input, Embedding, Flatten, Dense
        from keras.models import Model
        words = Input(shape=(6,), dtype='int32')
        out = Dense(1)(Flatten()(Embedding(input_dim=50, output_dim=3)(words)))
        model = Model(words, out)
        assert model.predict(data).shape == (64, 1)
        ~~~
        """
    run = run_text(tmp_path, "embed.md", text)
    assert run.results[0].status == rn.PASSED, run.results[0].summary()
    made = run.data_made[0]
    assert made[:3] == ("data", "input", (64, 6))


# -- agreement -----------------------------------------------------------------------------------
def _usable(name):
    return rn.backend_available(name)[0]


def test_agreement_of_a_tiny_model(tmp_path):
    other = "torch" if _usable("torch") else "numpy"
    doc = load_document(write_doc(tmp_path, "agree.md", TINY))
    ref_run, other_run = rn.run_document(doc, "numpy"), rn.run_document(doc, other)
    (res,) = agreement.compare_runs(ref_run, other_run)
    assert res.model == "model" and res.status == agreement.PASSED, res
    assert res.checks["predict"] == "ok"

    doc.settings["heavy_params"] = 5  # now the model counts as heavy: skipped on CPUs
    (heavy,) = agreement.compare_runs(ref_run, other_run)
    assert heavy.status == agreement.SKIPPED and "heavy model" in heavy.detail
    other_run.device = "cuda:0"  # pretend: the other backend alone runs it, on its "GPU"
    (alone,) = agreement.compare_runs(ref_run, other_run)
    assert alone.status == agreement.PASSED and "only" in alone.detail, alone
    ref_run.device = "cuda:0"  # both on a GPU: compared in full
    (both,) = agreement.compare_runs(ref_run, other_run)
    assert both.status == agreement.PASSED and both.checks["predict"] == "ok", both


def test_agreement_reports_a_difference(tmp_path):
    doc = load_document(write_doc(tmp_path, "agree.md", TINY))
    ref_run = rn.run_document(doc, "numpy")
    changed = load_document(write_doc(tmp_path, "agree2.md", TINY.replace("Dense(3", "Dense(2")))
    other_run = rn.run_document(changed, "numpy")
    other_run.document = doc
    other_run.models["only_here"] = other_run.models["model"]
    results = {r.model: r for r in agreement.compare_runs(ref_run, other_run)}
    assert results["model"].status == agreement.FAILED
    assert "structure" in results["model"].detail
    assert results["only_here"].status == agreement.SKIPPED


# -- the CLI and the report ----------------------------------------------------------------------
FAILING = TINY + "\n~~~python\nassert False, 'this block fails'\n~~~\n"


def test_cli_exit_codes_and_report(tmp_path, capsys):
    good = write_doc(tmp_path / "good", "good.md", TINY)
    bad = write_doc(tmp_path, "bad.md", FAILING)
    report = tmp_path / "report"

    assert (
        polykeras_main(["conformance", str(good), "--backend", "numpy", "--report", str(report)])
        == 0
    )
    assert (
        polykeras_main(["conformance", str(bad), "--backend", "numpy", "--report", str(report)])
        == 1
    )
    out = capsys.readouterr().out
    assert "this block fails" in out and "FAIL" in out
    summary = json.loads((report / "conformance.json").read_text())["summary"]
    assert summary["blocks"] == {"passed": 2, "failed": 1} and not summary["ok"]
    md = (report / "conformance.md").read_text()
    assert "| 3 | " in md and "FAIL" in md and "bad.md" in md

    # a missing path beside one that holds documents is a note
    assert (
        polykeras_main(
            [
                "conformance",
                str(tmp_path / "missing"),
                str(good),
                "--backend",
                "numpy",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    assert "does not exist" in capsys.readouterr().out
    assert polykeras_main(["conformance", str(good), "--backend", "nonesuch"]) == 2
    # a backend that is not usable is a skipped column, not a failure
    unusable = [b.name for b in polykeras.backends() if not b.usable]
    if unusable:
        assert (
            polykeras_main(
                [
                    "conformance",
                    str(good.parent),
                    "--backend",
                    f"numpy,{unusable[0]}",
                    "--report",
                    str(report),
                ]
            )
            == 0
        )
        assert "skipped" in capsys.readouterr().out


def _report_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def last_report(tmp_path):
    """A report folder holding the report of a good run, to see that it is left alone."""
    good = write_doc(tmp_path / "good", "good.md", TINY)
    report = tmp_path / "report"
    assert (
        polykeras_main(["conformance", str(good), "--backend", "numpy", "--report", str(report)])
        == 0
    )
    return good, report, _report_files(report)


def test_cli_no_document_found_fails_and_keeps_the_last_report(tmp_path, capsys, last_report):
    good, report, before = last_report
    capsys.readouterr()
    assert (
        polykeras_main(
            [
                "conformance",
                str(tmp_path / "dcos"),
                str(tmp_path / "seeds"),
                "--backend",
                "numpy",
                "--report",
                str(report),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "dcos does not exist" in err and "no document found" in err
    (tmp_path / "empty").mkdir()
    assert (
        polykeras_main(
            ["conformance", str(tmp_path / "empty"), "--backend", "numpy", "--report", str(report)]
        )
        == 2
    )
    assert "holds no *.md or *.txt documents" in capsys.readouterr().err
    assert _report_files(report) == before


def test_cli_unknown_backend_suggests_a_close_name(tmp_path, capsys, last_report):
    good, report, before = last_report
    capsys.readouterr()
    assert (
        polykeras_main(["conformance", str(good), "--backend", "nmupy", "--report", str(report)])
        == 2
    )
    err = capsys.readouterr().err
    assert "unknown backend 'nmupy' (from command-line option --backend)" in err
    assert "did you mean 'numpy'?" in err
    assert _report_files(report) == before


def test_cli_no_usable_backend_fails_and_keeps_the_last_report(tmp_path, capsys, last_report):
    good, report, before = last_report

    class Plugin:
        @staticmethod
        @polykeras.plugins.hookimpl
        def polykeras_register_backends(register):
            register(
                "fakegpu",
                factory=lambda device=None: None,
                probe=lambda: "installed, but no CUDA device is visible",
            )

    polykeras.plugins.register_plugin(Plugin, name="fakegpu-plugin")
    try:
        capsys.readouterr()
        assert (
            polykeras_main(
                ["conformance", str(good), "--backend", "fakegpu", "--report", str(report)]
            )
            == 3
        )
        err = capsys.readouterr().err
        assert "no CUDA device is visible" in err and "no selected backend is usable" in err
        # beside a usable one it is a skipped column, and the run counts
        assert (
            polykeras_main(
                ["conformance", str(good), "--backend", "numpy,fakegpu", "--report", str(report)]
            )
            == 0
        )
    finally:
        polykeras.plugins.unregister_plugin("fakegpu-plugin")
    assert "fakegpu: skipped" in capsys.readouterr().out
    assert json.loads((report / "conformance.json").read_text())["summary"]["ok"]


@pytest.mark.parametrize("backend", [None, "all", "numpy"])
def test_cli_without_backend_plugins_fails_and_keeps_the_last_report(
    tmp_path, capsys, monkeypatch, last_report, backend
):
    """As with ``python`` inside a checkout whose plugins are not installed: the entry points
    name modules that do not import, so no backend is discovered."""
    from importlib.metadata import EntryPoint

    from polykeras import plugins

    good, report, before = last_report
    broken = [EntryPoint("numpy", "polykeras_numpy_not_here.plugin", "polykeras")]
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: broken)
    plugins.reset()
    try:
        capsys.readouterr()
        argv = ["conformance", str(good), "--report", str(report)]
        assert polykeras_main(argv + (["--backend", backend] if backend else [])) == 3
    finally:
        monkeypatch.undo()
        plugins.reset()
    err = capsys.readouterr().err
    assert "no backend could be discovered" in err
    assert "polykeras_numpy_not_here" in err and "pip install -e ." in err
    assert _report_files(report) == before


def test_cli_a_failed_plugin_beside_a_working_one_fails_the_run(tmp_path, capsys, monkeypatch):
    from importlib.metadata import EntryPoint

    from polykeras import plugins

    good = write_doc(tmp_path, "good.md", TINY)
    real = plugins.importlib.metadata.entry_points
    extra = [EntryPoint("zzbroken", "polykeras_zz_not_here.plugin", "polykeras")]
    monkeypatch.setattr(
        plugins.importlib.metadata, "entry_points", lambda group: list(real(group=group)) + extra
    )
    plugins.reset()
    try:
        assert (
            polykeras_main(
                [
                    "conformance",
                    str(good),
                    "--backend",
                    "numpy",
                    "--report",
                    str(tmp_path / "report"),
                ]
            )
            == 1
        )
    finally:
        monkeypatch.undo()
        plugins.reset()
    notes = json.loads((tmp_path / "report" / "conformance.json").read_text())["notes"]
    assert any("polykeras_zz_not_here" in n for n in notes)


def test_report_folder_from_the_environment_or_the_cwd(tmp_path, monkeypatch):
    good = write_doc(tmp_path, "good.md", TINY)
    monkeypatch.setenv("POLYKERAS_REPORT_DIR", str(tmp_path / "env"))
    assert polykeras_main(["conformance", str(good), "--backend", "numpy"]) == 0
    assert (tmp_path / "env" / "conformance.md").is_file()
    monkeypatch.delenv("POLYKERAS_REPORT_DIR")
    monkeypatch.chdir(tmp_path)
    assert polykeras_main(["conformance", str(good), "--backend", "numpy"]) == 0
    assert (tmp_path / "reports" / "conformance" / "conformance.json").is_file()


def test_free_data_trains_with_each_kind_of_target(tmp_path, monkeypatch):
    monkeypatch.delenv(rn.MAX_EPOCHS_ENV, raising=False)
    text = """\
        ~~~python
        from keras.layers import Input, Dense
        from keras.models import Model
        x = Input(shape=(4,))
        for loss, act in [('sparse_categorical_crossentropy', 'softmax'),
                          ('categorical_crossentropy', 'softmax'),
                          ('binary_crossentropy', 'sigmoid'), ('mse', 'linear')]:
            model = Model(x, Dense(3, activation=act)(x))
            model.compile(optimizer='sgd', loss=loss)
            model.fit(data, labels, epochs=20, batch_size=32)
        ~~~
        """
    run = run_text(tmp_path, "fit.md", text)
    assert run.results[0].status == rn.PASSED, run.results[0].summary()
    assert run.results[0].output.count("Epoch 1/1") == 4 and "Epoch 2" not in run.results[0].output
    shapes = [
        (role, shape, dtype) for name, role, shape, dtype in run.data_made if name == "labels"
    ]
    assert shapes[0] == ("target", (64, 1), "int32")
    assert all(s == ("target", (64, 3), "float32") for s in shapes[1:]), shapes


def test_a_rebuilt_model_is_compared_once(tmp_path):
    text = TINY + "\n~~~python\nrebuilt = Model.from_config(model.get_config())\n~~~\n"
    doc = load_document(write_doc(tmp_path, "rebuilt.md", text))
    runs = [rn.run_document(doc, "numpy") for _ in range(2)]
    results = {r.model: r for r in agreement.compare_runs(*runs)}
    assert results["model"].status == agreement.PASSED
    assert results["rebuilt"].status == agreement.SKIPPED
    assert "same architecture as model" in results["rebuilt"].detail
