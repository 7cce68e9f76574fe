"""Notebook 09, section 4: a BatchNorm CNN exported to ONNX and run by onnxruntime, in eval mode and in train mode.

onnx, onnxscript and onnxruntime are the optional `deploy` extra: `missing_deploy_packages()` says which are
absent (the notebook then prints `deploy_skip_message` and skips), and they are imported only inside the
functions that use them. onnxruntime runs on the CPU, so models and inputs are copied there.
"""

import copy
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import warnings
from dataclasses import asdict, dataclass

import torch

from bnlib.cache import cached
from bnlib.stats.tolerances import rounding_tolerance

DEPLOY_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # pyproject.toml's `deploy` extra
DEPLOY_INSTALL = 'pip install ".[deploy]"'
BATCHNORM_OP = "BatchNormalization"  # the ONNX operator for nn.BatchNorm1d/2d/3d


def missing_deploy_packages():
    """The packages of the `deploy` extra that are not installed, in DEPLOY_PACKAGES order ([] when all are)."""
    return [name for name in DEPLOY_PACKAGES if importlib.util.find_spec(name) is None]


def deploy_skip_message(missing):
    """One line for a notebook whose `missing` packages keep a section from running: what to install, and how."""
    return f"Skipped: {', '.join(missing)} not installed; `{DEPLOY_INSTALL}` in the project folder installs them."


def _import_deploy_package(name):
    """The module `name` of the deploy extra; a ModuleNotFoundError that names the extra when it is not installed."""
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"{name} is not installed; `{DEPLOY_INSTALL}` installs the deploy extra", name=name)
    return importlib.import_module(name)


def deploy_versions():
    """{package: version} of torch and the deploy extra: the exported graph depends on all of them."""
    return {name: importlib.metadata.version(name) for name in ("torch", *DEPLOY_PACKAGES)}


def default_exporter():
    """The exporter `torch.onnx.export` uses when not told: "dynamo" (torch.export-based) or "torchscript"."""
    dynamo = inspect.signature(torch.onnx.export).parameters.get("dynamo")
    return "dynamo" if dynamo is not None and dynamo.default is True else "torchscript"


def export_program(model, example, *, optimize=True):
    """The torch.onnx.ONNXProgram of `model` traced on `example` (N, ...) by the torch.export-based ("dynamo")
    exporter, for any batch size; `optimize` runs its graph optimizer (as torch.onnx.export does by default)."""
    batch = {0: torch.export.Dim("batch")}
    return torch.onnx.export(model, (example,), dynamo=True, optimize=optimize, dynamic_shapes=(batch,),
                             verbose=False)  # fmt: skip


def export_torchscript(model, example, training):
    """The ONNX ModelProto of `model` traced on `example` by the older TorchScript exporter, BatchNorm in the mode
    `training` (a torch.onnx.TrainingMode) picks, for any batch size."""
    onnx = _import_deploy_package("onnx")
    buffer = io.BytesIO()
    torch.onnx.export(model, (example,), buffer, dynamo=False, training=training, input_names=["images"],
                      dynamic_axes={"images": {0: "batch"}})  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def onnx_nodes(proto):
    """Every node of the ONNX ModelProto `proto`: its graph's, its local functions', and those of nested subgraphs."""
    pending = [*proto.graph.node, *(node for function in proto.functions for node in function.node)]
    while pending:
        node = pending.pop(0)
        yield node
        for attribute in node.attribute:  # If/Loop/Scan bodies
            for graph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                pending.extend(graph.node)


def count_nodes(proto, op_type=BATCHNORM_OP):
    """How many nodes of `proto` (anywhere in it, see `onnx_nodes`) run the operator `op_type`."""
    return sum(node.op_type == op_type for node in onnx_nodes(proto))


def run_onnxruntime(proto, inputs):
    """The first output of `proto` run by onnxruntime on the CPU for `inputs`, as a float32 torch tensor."""
    onnxruntime = _import_deploy_package("onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch: fair to a shared machine
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (name,) = [argument.name for argument in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: inputs.detach().cpu().numpy()})[0])


@dataclass(frozen=True)
class OnnxComparison:
    """An eval-mode model exported to ONNX and run by onnxruntime, against PyTorch on the same inputs."""

    versions: dict  # package -> version
    exporter: str  # what torch.onnx.export uses by default
    batchnorm_nodes: dict  # "optimize=True"/"optimize=False" -> BatchNormalization nodes in that graph
    max_difference: float  # max |onnxruntime - PyTorch| over every output
    within_tolerance: bool  # every output within its float32 rounding bound (`rounding_tolerance`)
    smallest_bound: float  # the tightest of those bounds
    same_predictions: float  # fraction of inputs whose argmax agrees

    def summary(self):
        """Three lines for the notebook: versions and exporter, the BatchNormalization nodes, the agreement."""
        versions = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        nodes = ", ".join(f"{count} with {setting}" for setting, count in self.batchnorm_nodes.items())
        verdict = "within" if self.within_tolerance else "NOT within"
        return (f"{versions}; torch.onnx.export's default exporter: {self.exporter}\n"
                f"{BATCHNORM_OP} nodes in the exported graph: {nodes}\n"
                f"max |onnxruntime - PyTorch| = {self.max_difference:.1e}, {verdict} the float32 rounding bound of "
                f"every output (the tightest is {self.smallest_bound:.1e}); same prediction for "
                f"{100 * self.same_predictions:.2f} % of the inputs")  # fmt: skip


@torch.no_grad()
def compare_onnx(model, inputs):
    """An OnnxComparison of the eval-mode copy of `model` (an nn.Sequential) exported and run on `inputs` (N, ...).

    BatchNormalization nodes are counted before and after the exporter's optimizer (on by default); the outputs
    compared are the optimized graph's.
    """
    model, inputs = copy.deepcopy(model).cpu().eval(), inputs.cpu()
    program = export_program(model, inputs[:2], optimize=False)
    batchnorm_nodes = {"optimize=False": count_nodes(program.model_proto)}
    program.optimize()  # what torch.onnx.export's default optimize=True does after the export
    batchnorm_nodes["optimize=True"] = count_nodes(program.model_proto)
    exported, expected = run_onnxruntime(program.model_proto, inputs), model(inputs)
    difference, bound = (exported - expected).abs(), rounding_tolerance(model, inputs)
    return OnnxComparison(
        versions=deploy_versions(),
        exporter=default_exporter(),
        batchnorm_nodes=batchnorm_nodes,
        max_difference=difference.max().item(),
        within_tolerance=bool((difference <= bound).all()),
        smallest_bound=bound.min().item(),
        same_predictions=(exported.argmax(1) == expected.argmax(1)).float().mean().item(),
    )


def _export_errors():
    """What a failed export or a graph onnxruntime will not run raises (onnxruntime's errors are not RuntimeErrors)."""
    state = _import_deploy_package("onnxruntime").capi.onnxruntime_pybind11_state
    return RuntimeError, state.Fail, state.InvalidGraph, state.InvalidArgument, state.NotImplemented, \
        state.RuntimeException  # fmt: skip


def _training_mode(node):
    return any(attribute.name == "training_mode" and attribute.i == 1 for attribute in node.attribute)


@dataclass(frozen=True)
class TrainModeExport:
    """A train-mode model exported and run by onnxruntime: what the graph holds and which PyTorch mode it matches."""

    exporter: str  # which exporter, with which settings
    warning: str | None  # what torch warned about training mode while exporting
    batchnorm_nodes: int
    training_mode_nodes: int  # BatchNormalization nodes with training_mode=1: they normalize with batch statistics
    outputs: int  # the graph's outputs: 1 means only the logits, no updated running statistics
    error: str | None  # the first line of what failed (the export, or onnxruntime), else None
    eval_within_bound: bool | None  # onnxruntime's outputs within the rounding bound of PyTorch's eval mode
    difference_to_eval: float | None  # max |onnxruntime - PyTorch in eval mode|
    difference_to_train: float | None  # max |onnxruntime - PyTorch in train mode| (batch statistics, buffers kept)

    def line(self):
        """One readable line: what was exported and what onnxruntime made of it."""
        if self.error is not None:
            return f"{self.exporter}: failed: {self.error}"
        statistics = ("the running statistics, as eval mode" if self.eval_within_bound
                      else "batch statistics, as train mode" if self.difference_to_train < self.difference_to_eval
                      else "neither mode's statistics")  # fmt: skip
        warned = f" torch warned: '{self.warning}'" if self.warning else ""
        return (f"{self.exporter}: {self.batchnorm_nodes} {BATCHNORM_OP} nodes ({self.training_mode_nodes} in "
                f"training mode), {self.outputs} graph output(s); onnxruntime ran it: max difference "
                f"{self.difference_to_eval:.1e} from PyTorch's eval mode, {self.difference_to_train:.1e} from its "
                f"train mode, so it normalizes with {statistics}.{warned}")  # fmt: skip


@torch.no_grad()
def export_in_train_mode(model, inputs, *, dynamo=True):
    """A TrainModeExport of a train-mode copy of `model` (an nn.Sequential) exported and run on `inputs` (N, ...).

    `dynamo=True` is the default exporter, without its optimizer (so that BatchNorm nodes stay visible);
    `dynamo=False` the TorchScript one with training=TrainingMode.TRAINING, which keeps BatchNorm in training mode.
    Whatever fails (the export, or onnxruntime, whose standard build may not run training-mode nodes) comes back
    as `error`; `model` is left as it was.
    """
    model, inputs = copy.deepcopy(model).cpu().train(), inputs.cpu()
    exporter = "dynamo exporter, optimize=False" if dynamo else "TorchScript exporter, training=TrainingMode.TRAINING"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:  # a copy: tracing in train mode may update the running statistics
            traced = copy.deepcopy(model)
            proto = (export_program(traced, inputs[:2], optimize=False).model_proto if dynamo  # BatchNorm nodes kept
                     else export_torchscript(traced, inputs[:2], torch.onnx.TrainingMode.TRAINING))  # fmt: skip
            exported = run_onnxruntime(proto, inputs)
        except _export_errors() as error:
            proto, exported, failure = None, None, (str(error).strip().splitlines() or [type(error).__name__])[0]
    warning = next((str(item.message) for item in caught if "training mode" in str(item.message)), None)
    if proto is None:
        return TrainModeExport(exporter, warning, 0, 0, 0, failure, None, None, None)
    nodes = [node for node in onnx_nodes(proto) if node.op_type == BATCHNORM_OP]
    train_output = copy.deepcopy(model)(inputs)  # batch statistics (a copy: its running statistics move)
    model.eval()
    eval_gap = (exported - model(inputs)).abs()
    return TrainModeExport(
        exporter, warning, len(nodes), sum(map(_training_mode, nodes)), len(proto.graph.output), None,
        eval_within_bound=bool((eval_gap <= rounding_tolerance(model, inputs)).all()),
        difference_to_eval=eval_gap.max().item(),
        difference_to_train=(exported - train_output).abs().max().item(),
    )


def fingerprint_tensors(tensors):
    """The sha256 of named tensors ({name: tensor}): names, dtypes, shapes and bytes, for a cache key."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@dataclass(frozen=True)
class OnnxStudy:
    """Section 4's results: the eval-mode comparison, and the train-mode exports (the default exporter first)."""

    comparison: OnnxComparison
    train_mode: tuple  # TrainModeExport per exporter
    cached: bool  # read from the run cache


def study_onnx_export(model, inputs, *, cache_dir=None, verbose=True):
    """An OnnxStudy of `model` (an nn.Sequential) on `inputs` (N, ...), read from the run cache when stored.

    Keyed by the model's structure and weights, the inputs and the versions of torch and the deploy extra: exporting
    takes seconds, and a warm notebook should not import the exporter at all.
    """
    key = {"procedure": "study_onnx_export", "structure": str(model), "inputs": fingerprint_tensors({"": inputs}),
           "weights": fingerprint_tensors(model.state_dict()), "versions": deploy_versions()}  # fmt: skip

    def compute():
        exports = [export_in_train_mode(model, inputs, dynamo=dynamo) for dynamo in (True, False)]
        return {"comparison": asdict(compare_onnx(model, inputs)), "train_mode": list(map(asdict, exports))}, {}

    entry = cached(key, compute, device="cpu", description="ONNX export checks", cache_dir=cache_dir,
                   verbose=verbose)  # fmt: skip
    exports = tuple(TrainModeExport(**export) for export in entry.record["train_mode"])
    return OnnxStudy(OnnxComparison(**entry.record["comparison"]), exports, entry.cached)
