"""ginlight.gin.reading: the one reader of gin text, its lines, and its one rule for finding included files."""

from __future__ import annotations

import textwrap

import pytest
from conftest import write

from ginlight.gin import reading
from ginlight.errors import ConfigError
from ginlight.gin.reading import BINDINGS, Macro, Reference


def test_statements_come_in_order_with_each_include_in_its_place_and_its_resolved_path(tmp_path):
    write(tmp_path / "parts" / "base.gin", "# base\nimport math\nLR = 0.1\n")
    write(tmp_path / "parts" / "model.gin", "include 'base.gin'\nMLP.hidden = (16,)\n")
    top = write(tmp_path / "top.gin", "# top\ninclude 'parts/model.gin'\n\nSGD.lr = %LR\n")
    statements = reading.read([top], ["train/DataLoader.batch_size = 8"])
    assert [(s.kind, s.name, s.param, s.location) for s in statements] == [
        ("include", "parts/model.gin", None, f"{top}:2"),
        ("include", "base.gin", None, f"{tmp_path / 'parts' / 'model.gin'}:1"),
        ("import", "math", None, f"{tmp_path / 'parts' / 'base.gin'}:2"),
        ("binding", "LR", None, f"{tmp_path / 'parts' / 'base.gin'}:3"),
        ("binding", "MLP", "hidden", f"{tmp_path / 'parts' / 'model.gin'}:2"),
        ("binding", "SGD", "lr", f"{top}:4"),
        ("binding", "train/DataLoader", "batch_size", BINDINGS),
    ]
    assert statements[0].value == str(tmp_path / "parts" / "model.gin")  # an include names what it resolved to
    assert statements[2].value == "import math"
    assert statements[5].value == Macro("LR") and statements[5].text == "SGD.lr = %LR"
    assert statements[6].text == "train/DataLoader.batch_size = 8"


def test_lines_count_from_the_start_of_the_file_across_comment_headed_sections(tmp_path):
    # gin's operative configs head each section with comments; the reader parses such pieces one by one.
    text = "# run\n\n# Section A\nA.x = 1\n\n# Section B\nB.y = [\n    1,\n    # a comment inside a value\n    2]\nC.z = 3\n"
    path = write(tmp_path / "op.gin", text)
    found = {s.name: (s.line, s.value) for s in reading.read([path])}
    assert found == {"A": (4, 1), "B": (7, [1, 2]), "C": (11, 3)}


def test_a_syntax_error_is_located_at_its_line_in_the_file(tmp_path):
    path = write(tmp_path / "bad.gin", "# header\nA.x = 1\n\n# section\nB.y = = 2\n")
    with pytest.raises(ConfigError) as caught:
        reading.read([path])
    assert caught.value.location == f"{path}:5"
    assert "gin syntax error" in caught.value.message


def test_an_unclosed_bracket_is_located_and_explained(tmp_path):
    path = write(tmp_path / "open.gin", "A.x = 1\nB.y = [1,\n")
    with pytest.raises(ConfigError, match="unclosed bracket") as caught:
        reading.read([path])
    assert caught.value.location.startswith(f"{path}:")


def test_a_binding_that_cannot_be_read_is_quoted(tmp_path):
    with pytest.raises(ConfigError) as caught:
        reading.read([], ["Trainer.max_epochs 3"])
    assert caught.value.location == BINDINGS and "`Trainer.max_epochs 3`" in caught.value.message


def test_an_include_looks_in_the_search_paths_first_then_the_folders_of_the_files_read(tmp_path):
    write(tmp_path / "search" / "common.gin", "WHERE = 'search path'\n")
    write(tmp_path / "configs" / "common.gin", "WHERE = 'beside the file'\n")
    top = write(tmp_path / "configs" / "top.gin", "include 'common.gin'\n")
    assert reading.read([top])[-1].value == "beside the file"
    assert reading.read([top], search_paths=[tmp_path / "search"])[-1].value == "search path"
    assert reading.include_folders([tmp_path / "search"], [top]) == [str(tmp_path / "search"), str(top.parent)]


def test_a_missing_include_is_reported_at_the_include_line(tmp_path):
    top = write(tmp_path / "top.gin", "A.x = 1\ninclude 'nowhere.gin'\n")
    with pytest.raises(ConfigError, match="gin file 'nowhere.gin' not found") as caught:
        reading.read([top])
    assert caught.value.location == f"{top}:2"


def test_a_file_that_includes_itself_is_refused(tmp_path):
    write(tmp_path / "a.gin", "include 'b.gin'\n")
    write(tmp_path / "b.gin", "include 'a.gin'\n")
    with pytest.raises(ConfigError, match="includes itself"):
        reading.read([tmp_path / "a.gin"])


def test_references_and_macros_are_found_inside_nested_values(tmp_path):
    path = write(tmp_path / "refs.gin", "S.loaders = {'train': @train/DataLoader(), 'val': [%BATCH, @Identity]}\n")
    (statement,) = reading.read([path])
    assert set(reading.references_in(statement.value)) == {
        Reference("train/DataLoader", True), Macro("BATCH"), Reference("Identity", False)}


def test_resolve_takes_an_absolute_path_as_given_and_names_the_folders_it_searched(tmp_path):
    absolute = write(tmp_path / "x.gin", "A.x = 1\n")
    assert reading.resolve(absolute, [tmp_path / "elsewhere"]) == absolute
    with pytest.raises(ConfigError, match=str(tmp_path)):
        reading.resolve("missing.gin", [tmp_path])


def test_parse_binding_reads_exactly_one_binding_and_locates_what_is_not_one():
    statement = reading.parse_binding("AdamW.lr = [1e-3, %LR]", "the sweep line", "--sweep", "Write one binding.")
    assert (statement.name, statement.param, statement.value, statement.file) == (
        "AdamW", "lr", [1e-3, Macro("LR")], "--sweep")
    for text, says in [("AdamW.lr = [1e-3,", "cannot read the sweep line"),
                       ("A.x = 1\nB.y = 2", "the sweep line is not one binding"),
                       ("import os", "the sweep line is not one binding")]:
        with pytest.raises(ConfigError, match=says) as caught:
            reading.parse_binding(text, "the sweep line", "--sweep", "Write one binding.")
        assert (caught.value.location, caught.value.hint) == ("--sweep", "Write one binding.")


def test_a_block_declares_its_configurable_and_each_value_in_it_keeps_its_own_line(tmp_path):
    base = write(tmp_path / "base.gin",
                 "# base\ntrain/torch.optim.AdamW:\n  lr = 0.003\n\n# decay\n  weight_decay = 0.01\n")
    top = write(tmp_path / "top.gin", "include 'base.gin'\nSystem:\n  optimizer = @torch.optim.AdamW\n")
    statements = reading.read([top])
    assert [(s.kind, s.name, s.param, s.value, s.location) for s in statements] == [
        ("include", "base.gin", None, str(base), f"{top}:1"),
        ("block", "train/torch.optim.AdamW", None, None, f"{base}:2"),
        ("binding", "train/torch.optim.AdamW", "lr", 0.003, f"{base}:3"),
        ("binding", "train/torch.optim.AdamW", "weight_decay", 0.01, f"{base}:6"),
        ("block", "System", None, None, f"{top}:2"),
        ("binding", "System", "optimizer", Reference("torch.optim.AdamW", False), f"{top}:3"),
    ]
    assert statements[3].text == "weight_decay = 0.01"


def test_a_malformed_line_in_a_block_is_an_error_at_its_own_line(tmp_path):
    path = write(tmp_path / "bad.gin", "# header\nAdamW:\n  lr = 0.1\n  # note\n  weight_decay 0.01\nB.y = 2\n")
    with pytest.raises(ConfigError, match="gin syntax error") as caught:
        reading.read([path])
    assert caught.value.location == f"{path}:5"


def test_under_dynamic_registration_names_are_read_by_their_import_path_in_that_file_only(tmp_path):
    write(tmp_path / "plain.gin", "optim.SGD.lr = 1\n")
    top = write(tmp_path / "top.gin", textwrap.dedent("""\
        from __gin__ import dynamic_registration
        import torch.optim as optim
        import torch.nn
        from ginlight import models
        include 'plain.gin'
        models.MLP:
          activation = @torch.nn.ReLU
          hidden = %HIDDEN
        train/optim.AdamW.lr = 0.1
        System.optimizer = {'a': [@train/optim.AdamW, @models.MLP()]}
        HIDDEN = (8,)
        """))
    found = [(s.name, s.param, s.value) for s in reading.read([top]) if s.kind in ("binding", "block")]
    assert found == [
        ("optim.SGD", "lr", 1),  # another file: another parse context, as in gin
        ("ginlight.models.MLP", None, None),
        ("ginlight.models.MLP", "activation", Reference("torch.nn.ReLU", False)),
        ("ginlight.models.MLP", "hidden", Macro("HIDDEN")),
        ("train/torch.optim.AdamW", "lr", 0.1),
        ("System", "optimizer", {"a": [Reference("train/torch.optim.AdamW", False),
                                       Reference("ginlight.models.MLP", True)]}),
        ("HIDDEN", None, (8,)),
    ]


STORED = """\
BATCH = 8
train/DataLoader.batch_size = %BATCH
train/DataLoader.dataset = @ginlight.data.digits()
train/digits.split = 'train'
# ginlight-register: my_lab.Augment
ginlight.data.digits.seed = 0
Normalize.mean = 0.5
ConvNet.channels = (8,)
ginlight.Experiment.trainer = None
System.dataloaders = \\
    {'train': @train/torch.utils.data.DataLoader()}
System.model = @ginlight.models.ConvNet()
# a comment
Trainer.max_epochs = 2
"""
UNBUILT = ["ginlight.Experiment.datamodule", "ginlight.Experiment.trainer", "ginlight.System.dataloaders"]


def test_without_drops_the_parameters_and_what_only_they_reach_keeping_every_line_in_its_place(tmp_path):
    path = write(tmp_path / "stored.gin", STORED)
    text = reading.without(path, UNBUILT)
    kept = [(s.line, s.text) for s in reading.read([write(tmp_path / "kept.gin", text)])]
    assert kept == [(1, "BATCH = 8"), (7, "Normalize.mean = 0.5"), (8, "ConvNet.channels = (8,)"),
                    (12, "System.model = @ginlight.models.ConvNet()"), (14, "Trainer.max_epochs = 2")]
    assert len(text.splitlines()) == len(STORED.splitlines())
    assert text.splitlines()[4:6] == ["# ginlight-register: my_lab.Augment", ""]  # a comment after a dropped one stays
    assert text.splitlines()[12] == "# a comment"


def test_without_keeps_a_configurable_that_something_else_reaches_with_all_it_reaches(tmp_path):
    # The model is handed the loader too: the loader, and the dataset its binding names, stay.
    path = write(tmp_path / "stored.gin", STORED + "ConvNet.activation = @train/DataLoader\n")
    assert reading.without(path, UNBUILT).splitlines() == (STORED + "ConvNet.activation = @train/DataLoader\n") \
        .replace("ginlight.Experiment.trainer = None", "").replace(
        "System.dataloaders = \\\n    {'train': @train/torch.utils.data.DataLoader()}", "\n").splitlines()


def test_without_leaves_a_file_with_blocks_or_includes_whole(tmp_path):
    path = write(tmp_path / "stored.gin",
                 "System:\n    dataloaders = {'train': @DataLoader()}\nDataLoader.batch_size = 2\n")
    assert reading.without(path, UNBUILT) == path.read_text()
