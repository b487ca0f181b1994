"""Adapters: each accessor and argument kind, transforms, and the errors a user sees."""

from __future__ import annotations

import pytest
import torch

from ginlight.adapters import AdapterError, BatchAdapter, CriterionAdapter, LoggingAdapter, MetricsAdapter


def record(*args, **kwargs):
    return args, kwargs


class TestBatchAdapter:
    def test_int_accessors_index_tuple_and_list_batches(self):
        adapter = BatchAdapter(0, 1, 2)
        assert adapter(("x", "y", "id")) == ("x", "y", "id")
        assert adapter(["x", "y", "id"]) == ("x", "y", "id")

    def test_str_accessors_key_dict_batches(self):
        adapter = BatchAdapter("image", "label", "id")
        assert adapter({"image": 1, "label": 2, "id": 3}) == (1, 2, 3)

    def test_callable_accessors_get_the_whole_batch(self):
        adapter = BatchAdapter(lambda b: b["a"] + 1, lambda b: b["a"] * 2)
        assert adapter({"a": 3}) == (4, 6, None)

    def test_missing_accessors_give_none(self):
        assert BatchAdapter(0)(("x",)) == ("x", None, None)

    def test_a_missing_key_names_the_keys_the_batch_has(self):
        adapter = BatchAdapter("img", "label")
        adapter.mode = "val"
        with pytest.raises(AdapterError, match=r"BatchAdapter \(val\): input_accessor='img'.*keys \['image', 'label'\]"):
            adapter({"image": 1, "label": 2})

    def test_an_index_past_the_end_says_how_long_the_batch_is(self):
        with pytest.raises(AdapterError, match="target_accessor=3.*a tuple of 2 items"):
            BatchAdapter(0, 3)(("x", "y"))

    def test_a_str_accessor_on_a_tuple_batch_is_explained(self):
        with pytest.raises(AdapterError, match="input_accessor='image'.*a tuple of 2 items"):
            BatchAdapter("image")(("x", "y"))

    def test_an_accessor_of_the_wrong_kind_fails_at_construction(self):
        with pytest.raises(AdapterError, match="input_accessor must be an int.*got 1.5"):
            BatchAdapter(1.5)


class TestArgumentAdapters:
    @pytest.mark.parametrize("cls", [CriterionAdapter, MetricsAdapter])
    def test_default_passes_pred_then_target(self, cls):
        assert cls()(record, "in", "tgt", "pred") == (("pred", "tgt"), {})

    def test_default_without_target_passes_pred_only(self):
        assert CriterionAdapter()(record, "in", None, "pred") == (("pred",), {})

    def test_int_arguments_are_positions(self):
        adapter = CriterionAdapter(input_argument=2, target_argument=0, pred_argument=1)
        assert adapter(record, "in", "tgt", "pred") == (("tgt", "pred", "in"), {})

    def test_str_arguments_are_keywords(self):
        adapter = MetricsAdapter(pred_argument="preds", target_argument="target")
        assert adapter(record, "in", "tgt", "pred") == ((), {"preds": "pred", "target": "tgt"})

    def test_positions_and_keywords_mix(self):
        adapter = CriterionAdapter(pred_argument=0, target_argument="y")
        assert adapter(record, "in", "tgt", "pred") == (("pred",), {"y": "tgt"})

    def test_transforms_apply_in_order(self):
        adapter = MetricsAdapter(pred_transforms=[torch.sigmoid, lambda t: t.round()],
                                 target_transforms=lambda t: t * 2)
        (pred, target), _ = adapter(record, None, torch.tensor([1.0]), torch.tensor([10.0]))
        assert pred.tolist() == [1.0] and target.tolist() == [2.0]

    def test_two_arguments_at_one_position_are_refused(self):
        with pytest.raises(AdapterError, match="two arguments share a position"):
            CriterionAdapter(pred_argument=0, target_argument=0)

    def test_positions_with_a_gap_are_refused(self):
        with pytest.raises(AdapterError, match="without gaps"):
            CriterionAdapter(pred_argument=0, target_argument=2)

    def test_an_argument_of_the_wrong_kind_is_refused(self):
        with pytest.raises(AdapterError, match="pred_argument must be an int"):
            MetricsAdapter(pred_argument=1.0)

    def test_a_transform_that_is_not_callable_is_refused(self):
        with pytest.raises(AdapterError, match="transforms must be callables"):
            MetricsAdapter(pred_transforms=["sigmoid"])


def test_logging_adapter_transforms_what_is_logged():
    adapter = LoggingAdapter(pred_transforms=lambda t: t.argmax(dim=1))
    logged = adapter(torch.zeros(1), torch.tensor([1]), torch.tensor([[0.1, 0.9]]))
    assert logged["pred"].tolist() == [1]
    assert logged["target"].tolist() == [1]
