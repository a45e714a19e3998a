"""The conformance runner: every code block of a guide runs, on every backend.

``python -m polykeras conformance PATH... [--backend NAME|all] [--report DIR]`` reads Markdown
documents (``.md``, and ``.txt`` files written in Markdown), runs their code blocks in order,
and reports a matrix of document x block x backend, plus whether the models the documents
build give the same numbers on every backend.

The rules, module by module:

Which fenced blocks are code (:mod:`.markdown`)
    A block fenced with ```` ```python ```` (or ``py``, ``python3``) is code.  A bare fence
    (```` ``` ```` with no language) is code when its text parses as Python, holds at least
    one statement that is more than a lone name or constant, and has no ruler line (a line
    of only ``_``, ``=`` or ``-``, as in a ``model.summary()`` printout).  A block of any
    fence whose first line is ``>> SomeError: message`` is an *error printout*: it is not
    run, and it says that the code block before it fails with that error.  Everything
    else (printouts, other languages) is listed in the report as not run.

How a document runs (:mod:`.runner`)
    One namespace per document; blocks run in order; a failing block does not stop the
    ones after it.  Around each document: ``polykeras.use_backend(name)``,
    ``polykeras.backend.clear_session()`` (so auto-names start at ``_1``),
    ``polykeras.utils.set_random_seed(seed)``, the document's settings from
    ``documents.json`` (``image_data_format`` when the document names one) applied, and the
    environment variable ``POLYKERAS_MAX_EPOCHS`` set to the document's cap (default 1)
    unless it is already set.  All of it is restored afterwards (the global random states
    of Python and NumPy too).  Standard output of each block is captured for the report.

``keras`` means ``polykeras`` only inside the run (:mod:`.namespace`)
    The namespace gets its own ``__builtins__`` whose ``__import__`` rewrites ``keras`` and
    ``keras.xxx`` to ``polykeras`` and ``polykeras.xxx``.  Nothing global changes:
    ``sys.modules`` and ``builtins.__import__`` are untouched, so ``import keras`` outside a
    run still means whatever is installed under that name.

Free data names (:mod:`.data`)
    The names in ``documents.json`` ("data_names": ``data``, ``labels``, ``headline_data``,
    ``additional_data``, ``data_a``, ``data_b``, plus any a document adds) are pre-bound to
    lazy data objects.  Given to ``fit``/``evaluate``/``predict``, such an object receives a
    :class:`polykeras.training.data.DataSpec` and returns a NumPy array:

    - samples: ``spec.num_samples`` when other arrays fix it, else 64 (``num_samples``);
    - unknown non-batch dimensions become 8;
    - inputs: integers uniform in the hint ``int_range`` (default ``[0, 1000)``) when the
      dtype is an integer one or the input feeds an Embedding; otherwise floats ~ N(0, 1);
    - targets, by the ``loss`` hint first, else the ``activation`` hint: binary
      crossentropy or sigmoid -> floats in {0, 1}; categorical crossentropy or softmax ->
      one-hot over the last axis; sparse categorical crossentropy -> integer labels in
      ``[0, num_classes)``; anything else -> floats ~ N(0, 1);
    - seeded: the same name asked with the same spec gives the same array.

Errata and expectations (:mod:`.expectations`)
    ``errata.txt`` holds one fix per line, each with one reason: a document prefix, the
    wrong text, the right text.  ``documents.json`` holds the per-document settings and the
    blocks expected to fail, with the error they must fail with.  A block expected to fail
    that fails that way is ``xfail-ok``; one that passes is ``unexpected-pass``.  Messages
    are compared with whitespace collapsed and auto-name numbers replaced (``lstm_4`` and
    ``lstm_1`` both read ``lstm_#``), because a guide's printed name depends on how many
    layers of that kind were made before it.

Cross-backend agreement (:mod:`.agreement`)
    After a document has run on every selected backend, each model it built (every
    ``Model`` bound to a name after some block; the final binding of a name is labelled by
    the name alone, earlier ones ``name@line``) is compared with the same model on the
    reference backend (``numpy`` when it is selected, else the first one): same weight and
    output shapes; with the reference's weights, the same ``predict`` outputs on a seeded
    batch of 2 (rtol 1e-4, atol 1e-5); then, both compiled afresh with optimizer ``"sgd"``
    and the model's own loss (``"mse"`` when it has none or it does not compile), the same
    loss from one ``train_on_batch`` and the same weights after it.  Models over the heavy
    thresholds (parameters or input values per sample) run numerically only when both
    backends are on a GPU; elsewhere that check is skipped with the reason.

Reports (:mod:`.report`)
    ``conformance.md`` and ``conformance.json`` in ``--report DIR``, else
    ``$POLYKERAS_REPORT_DIR``, else ``reports/conformance/`` under the current directory.
"""

from __future__ import annotations

from .document import Document, find_documents, load_document
from .markdown import Block
from .runner import BlockResult, DocumentRun, run_document

__all__ = [
    "Block",
    "BlockResult",
    "Document",
    "DocumentRun",
    "find_documents",
    "load_document",
    "run_document",
]
