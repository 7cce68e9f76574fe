"""bnlib.studies.onnx_export: the eval-mode CNN in onnxruntime equals PyTorch within the rounding bound, the
BatchNormalization count is what walking the graph finds, a train-mode export is reported as it behaves, and
without the deploy extra the section says what to install.

The deploy extra (onnx, onnxscript, onnxruntime) is optional: these tests skip without it, except in CI (CI=true),
where a missing package is a failure, as for the browser test.
"""

import copy
import importlib.util
import sys

import pytest
import torch

from bnlib.config import env_flag
from bnlib.models import make_cnn
from bnlib.stats.tolerances import rounding_tolerance
from bnlib.studies import onnx_export
from tests.support.notebook_sections import section_code


@pytest.fixture(scope="module")
def deploy():
    """The deploy extra's modules; skips without them, fails in CI."""
    missing = onnx_export.missing_deploy_packages()
    if missing:
        message = onnx_export.deploy_skip_message(missing)
        if env_flag("CI"):
            pytest.fail(f"{message} (CI must run the ONNX tests)", pytrace=False)
        pytest.skip(message)
    import onnx
    import onnxruntime

    return onnx, onnxruntime


@pytest.fixture(scope="module")
def cnn_and_inputs():
    """make_cnn(bn="before") whose running statistics moved away from 0 and 1, in eval mode, and 64 inputs."""
    torch.manual_seed(0)
    model = make_cnn(bn="before").train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, 1, 28, 28) * 2 + 0.5)
    return model.eval(), torch.rand(64, 1, 28, 28)


@pytest.fixture(scope="module")
def exported(deploy, cnn_and_inputs):
    """{optimize: ModelProto} of the CNN exported by the default (dynamo) exporter, with and without its optimizer."""
    model, inputs = cnn_and_inputs
    return {optimize: onnx_export.export_program(model, inputs[:2], optimize=optimize).model_proto
            for optimize in (False, True)}  # fmt: skip


def batchnorm_nodes_listed(proto):
    """The BatchNormalization nodes of a graph without functions or subgraphs, counted by a plain listing."""
    assert not proto.functions
    assert not any(attribute.g.node for node in proto.graph.node for attribute in node.attribute)
    return [node.op_type for node in proto.graph.node].count("BatchNormalization")


def test_count_nodes_walks_functions_and_subgraphs(deploy):
    onnx, _ = deploy
    helper = onnx.helper

    def batchnorm(name):
        return helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], [name])

    then_branch = helper.make_graph([batchnorm("t")], "then", [], [helper.make_tensor_value_info("t", 1, None)])
    else_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", 1, None)])  # fmt: skip
    branch = helper.make_node("If", ["condition"], ["y"], then_branch=then_branch, else_branch=else_branch)
    function = helper.make_function("local", "block", ["x"], ["f"], [batchnorm("f")], [helper.make_opsetid("", 20)])
    graph = helper.make_graph([batchnorm("a"), branch, helper.make_node("block", ["x"], ["b"], domain="local")],
                              "g", [], [])  # fmt: skip
    model = helper.make_model(graph, functions=[function])
    assert onnx_export.count_nodes(model) == 3  # the graph's, the If's then-branch's, the local function's
    assert onnx_export.count_nodes(model, "Relu") == 1


@pytest.mark.slow  # exporting takes seconds
def test_the_count_is_what_the_exported_graph_holds(exported):
    for proto in exported.values():
        assert onnx_export.count_nodes(proto) == batchnorm_nodes_listed(proto)


@pytest.mark.slow
def test_the_eval_model_in_onnxruntime_equals_pytorch_within_the_rounding_bound(deploy, cnn_and_inputs, exported):
    model, inputs = cnn_and_inputs
    before = copy.deepcopy(model.state_dict())
    result = onnx_export.compare_onnx(model, inputs)
    assert result.within_tolerance and result.same_predictions == 1.0
    bound = rounding_tolerance(model, inputs)
    assert 0 <= result.max_difference <= bound.max().item() and result.smallest_bound == bound.min().item()
    assert result.batchnorm_nodes == {f"optimize={optimize}": batchnorm_nodes_listed(proto)
                                      for optimize, proto in exported.items()}  # fmt: skip
    assert result.versions["onnxruntime"] == deploy[1].__version__
    torch.testing.assert_close(model.state_dict(), before, rtol=0, atol=0)  # the model is left as it was


@pytest.mark.slow
def test_the_rounding_bound_rejects_a_model_left_in_train_mode(cnn_and_inputs, exported):
    model, inputs = cnn_and_inputs
    in_onnxruntime = onnx_export.run_onnxruntime(exported[True], inputs)
    with torch.no_grad():
        assert ((in_onnxruntime - model(inputs)).abs() <= rounding_tolerance(model, inputs)).all()
        forgotten = copy.deepcopy(model).train()(inputs)  # `model.eval()` forgotten: batch statistics
    assert ((in_onnxruntime - forgotten).abs() > rounding_tolerance(model, inputs)).any()


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_a_train_mode_export_is_reported_as_onnxruntime_runs_it(deploy, cnn_and_inputs, dynamo):
    model, inputs = cnn_and_inputs
    before = copy.deepcopy(model.state_dict())
    result = onnx_export.export_in_train_mode(model, inputs, dynamo=dynamo)
    torch.testing.assert_close(model.state_dict(), before, rtol=0, atol=0)
    assert "\n" not in result.line()
    if result.error is not None:  # the export failed, or this onnxruntime build refuses training-mode nodes
        assert result.line().endswith(result.error)
        return
    assert result.training_mode_nodes or result.eval_within_bound  # batch statistics, or eval mode's
    with torch.no_grad():
        train_output = copy.deepcopy(model).train()(inputs)
    if result.training_mode_nodes:  # batch statistics: float32 rounding of sums of 64 * 28 * 28 values
        assert result.difference_to_train <= 1e-4 * train_output.abs().max().item()
        assert "batch statistics, as train mode" in result.line()
    if result.eval_within_bound:  # a training-mode node would not match eval mode
        assert result.training_mode_nodes == 0 and "the running statistics, as eval mode" in result.line()
        assert result.difference_to_eval <= rounding_tolerance(model, inputs).max().item()


def test_the_study_is_read_from_the_run_cache_without_exporting(cnn_and_inputs, tmp_path, monkeypatch):
    model, inputs = cnn_and_inputs
    comparison = onnx_export.OnnxComparison({"torch": "x"}, "dynamo", {"optimize=False": 2}, 1e-7, True, 1e-3, 1.0)
    exports = [onnx_export.TrainModeExport(f"exporter {dynamo}", None, 2, 0, 1, None, True, 1e-7, 1.5)
               for dynamo in (True, False)]  # fmt: skip
    calls = []
    monkeypatch.setattr(onnx_export, "deploy_versions", lambda: {"torch": "x", "onnx": "y"})
    monkeypatch.setattr(onnx_export, "compare_onnx", lambda *args: calls.append(args) or comparison)
    monkeypatch.setattr(onnx_export, "export_in_train_mode", lambda *args, dynamo: exports[not dynamo])
    first = onnx_export.study_onnx_export(model, inputs, cache_dir=tmp_path, verbose=False)
    again = onnx_export.study_onnx_export(model, inputs, cache_dir=tmp_path, verbose=False)
    assert (first.cached, again.cached, len(calls)) == (False, True, 1)
    assert again.comparison == comparison and again.train_mode == tuple(exports)  # through JSON and back
    other = copy.deepcopy(model)
    other[1].running_mean.add_(0.5)  # other weights: another key
    assert not onnx_export.study_onnx_export(other, inputs, cache_dir=tmp_path, verbose=False).cached
    monkeypatch.setattr(onnx_export, "deploy_versions", lambda: {"torch": "x", "onnx": "z"})  # another onnx
    assert not onnx_export.study_onnx_export(model, inputs, cache_dir=tmp_path, verbose=False).cached


@pytest.fixture
def deploy_hidden(monkeypatch):
    """The deploy extra made invisible: find_spec finds none of it and importing it fails."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name.split(".")[0] in onnx_export.DEPLOY_PACKAGES
                        else real_find_spec(name, *args))  # fmt: skip
    for name in onnx_export.DEPLOY_PACKAGES:
        monkeypatch.setitem(sys.modules, name, None)  # `import onnx` raises ImportError


def test_without_the_deploy_extra_the_section_names_the_install_command(deploy_hidden, cnn_and_inputs):
    assert onnx_export.missing_deploy_packages() == list(onnx_export.DEPLOY_PACKAGES)
    message = onnx_export.deploy_skip_message(onnx_export.missing_deploy_packages())
    assert 'pip install ".[deploy]"' in message and "\n" not in message and "onnxruntime" in message
    model, inputs = cnn_and_inputs
    with pytest.raises(ModuleNotFoundError, match=r'onnxruntime is not installed; `pip install "\.\[deploy\]"`'):
        onnx_export.run_onnxruntime(None, inputs)


def test_notebook_09_section_4_prints_one_install_line_without_the_deploy_extra(deploy_hidden, cnn_and_inputs, capsys):
    cells = section_code("09_batchnorm2d_and_deployment.ipynb", "## 4. Export", "## 5.")
    assert len(cells) >= 2, "notebook 09 has no code under '## 4. Export' (run insert_sections_4_5.py)"
    model, inputs = cnn_and_inputs
    namespace = {"onnx_export": onnx_export, "cnn": model, "test_images": inputs}
    for source in cells:
        exec(source, namespace)  # the notebook's own cells, with the deploy extra hidden
    assert capsys.readouterr().out == onnx_export.deploy_skip_message(list(onnx_export.DEPLOY_PACKAGES)) + "\n"
