"""bnlib.studies.compilation: torch.compile in train mode updates BatchNorm's running statistics as eager PyTorch
does, the allowed difference rejects a lost update, the backend follows the mode and the machine, and a stored
comparison is read without compiling."""

import shutil

import pytest
import torch

import bnlib
from bnlib.cache import CACHE_DIR_ENV
from bnlib.data import first_images
from bnlib.models import make_cnn
from bnlib.runs import cnn_spec
from bnlib.studies import compilation
from tests.support.notebook_sections import section_code

SPEC = cnn_spec({"channels": (4, 8), "bn": "before"})
LEARNING_RATE, SEED = 0.1, 0


def test_the_backend_is_aot_eager_in_quick_mode_and_inductor_where_a_compiler_is(monkeypatch):
    monkeypatch.setattr(compilation, "memory_limit_mb", lambda: None)
    assert compilation.compile_backend(quick=True, device="cpu") == "aot_eager"
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/g++" if name == "g++" else None)
    assert compilation.compile_backend(quick=False, device="cpu") == "inductor"
    assert compilation.why_not_inductor("cpu") is None
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert compilation.compile_backend(quick=False, device="cpu") == "aot_eager"
    assert compilation.why_not_inductor("cpu") == (
        "inductor needs a C++ compiler for the CPU and found none of g++, c++, clang++")


@pytest.mark.parametrize(("limit_mb", "backend"), [(None, "inductor"), (1_800, "inductor"), (1_799, "aot_eager"),
                                                   (1_500, "aot_eager")])  # fmt: skip
def test_a_memory_limit_too_small_for_the_kernel_and_a_cpp_compiler_compiles_with_aot_eager(limit_mb, backend,
                                                                                          monkeypatch):  # fmt: skip
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/g++")
    monkeypatch.setattr(compilation, "memory_limit_mb", lambda: limit_mb)
    assert compilation.compile_backend(quick=False, device="cpu") == backend
    reason = compilation.why_not_inductor("cpu")
    assert (reason is None) == (backend == "inductor")
    if reason:
        assert reason.startswith(f"this machine's memory limit ({limit_mb:,} MB) is below 1,800 MB")


@pytest.mark.slow  # the first use of torch._dynamo imports it: seconds
def test_inductor_without_a_cpp_compiler_is_named_in_one_line(monkeypatch):
    if not torch._dynamo.is_dynamo_supported():
        pytest.skip("torch.compile is not supported on this Python")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/g++" if name == "g++" else None)
    assert compilation.compile_unavailable("inductor", device="cpu") is None
    assert compilation.compile_unavailable("aot_eager", device="cpu") is None
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert compilation.compile_unavailable("aot_eager", device="cpu") is None  # runs PyTorch's kernels: no compiler
    reason = compilation.compile_unavailable("inductor", device="cpu")
    assert reason == "inductor needs a C++ compiler for the CPU and found none of g++, c++, clang++"


UNSUPPORTED_MESSAGE = "Python 3.15+ not yet supported for torch.compile"


def unsupported():
    raise RuntimeError(UNSUPPORTED_MESSAGE)


@pytest.mark.slow  # imports torch._dynamo
def test_a_platform_without_dynamo_is_named_in_one_line(monkeypatch):
    monkeypatch.setattr(torch._dynamo.eval_frame, "check_if_dynamo_supported", unsupported)
    reason = compilation.compile_unavailable("aot_eager")
    assert reason == f"torch {torch.__version__}: {UNSUPPORTED_MESSAGE}"


def test_an_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend"):
        compilation.compile_unavailable("tvm")


def test_each_batch_statistic_sums_n_h_w_values():
    model = make_cnn(bn="before")
    assert compilation.values_per_statistic(model, torch.rand(5, 1, 28, 28)) == {"1": 5 * 28 * 28, "5": 5 * 14 * 14}
    assert model.training  # the mode is restored


def eager_buffers(batches):
    model = SPEC.build(SEED)
    compilation.train_and_time(model, model, batches, LEARNING_RATE, torch.device("cpu"))
    return compilation.buffers_of(model)


def test_the_allowed_difference_rejects_a_lost_update(mnist):
    batches = compilation.training_batches(mnist, 4, 64)
    assert [images.shape for images, _ in batches] == [(64, 1, 28, 28)] * 4
    with pytest.raises(ValueError, match=r"steps \* batch_size = 2 \* 8 training images needed, the data has 10"):
        compilation.training_batches(first_images(mnist, num_train=10), 2, 8)
    counts = compilation.values_per_statistic(SPEC.build(SEED), batches[0][0])
    full, again, one_lost = eager_buffers(batches), eager_buffers(batches), eager_buffers(batches[:3])
    for name, value in full.items():
        allowed = compilation.allowed_difference(name, value, counts)
        assert (again[name] - value).abs().max() <= allowed  # the same run again (the same numbers)
        assert (one_lost[name].double() - value.double()).abs().max() > allowed, name


@pytest.mark.slow  # compiling takes seconds
def test_the_compiled_model_updates_the_running_statistics_as_eager_does(mnist, tmp_path, monkeypatch):
    if compilation.compile_unavailable("aot_eager", device="cpu"):
        pytest.skip(compilation.compile_unavailable("aot_eager", device="cpu"))
    options = {"backend": "aot_eager", "steps": 3, "batch_size": 64, "learning_rate": LEARNING_RATE, "seed": SEED,
               "device": "cpu", "cache_dir": tmp_path, "verbose": False}  # fmt: skip
    result = compilation.compare_compiled_training(SPEC, mnist, **options)
    assert not result.cached and result.within_tolerance
    assert [row["buffer"] for row in result.rows] == list(compilation.buffers_of(SPEC.build(SEED)))
    counts = {row["buffer"]: row["max |compiled - eager|"] for row in result.rows}
    assert counts["1.num_batches_tracked"] == counts["5.num_batches_tracked"] == 0
    expected = eager_buffers(compilation.training_batches(mnist, 3, 64))  # the eager half is plain training
    assert {row["buffer"]: row["largest |value|"] for row in result.rows} == {
        name: value.abs().max().item() for name, value in expected.items()}
    monkeypatch.setattr(torch, "compile", lambda *args, **kwargs: pytest.fail("compiled again"))
    again = compilation.compare_compiled_training(SPEC, mnist, **options)
    assert again.cached and again.rows == result.rows and "nothing compiled now" in again.summary()


@pytest.mark.slow  # imports torch._dynamo
def test_notebook_09_says_in_one_line_that_torch_cannot_compile_here(mnist, monkeypatch, capsys, tmp_path):
    cells = section_code("09_batchnorm2d_and_deployment.ipynb", "## 5. Compile and mixed precision", "## ")
    assert cells, "notebook 09 has no section 5 (run insert_sections_4_5.py)"
    monkeypatch.setattr(torch._dynamo.eval_frame, "check_if_dynamo_supported", unsupported)
    monkeypatch.setattr(torch, "compile", lambda *args, **kwargs: pytest.fail("compiled"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))  # an empty run cache: the cell must compile
    namespace = {"compilation": compilation, "cfg": bnlib.settings(quick=True), "device": torch.device("cpu"),
                 "cnn_spec": cnn_spec, "variants": {"BatchNorm2d": {"channels": (4, 8), "bn": "before"}}, "data": mnist}
    exec(cells[0], namespace)  # the notebook's compile cell
    assert capsys.readouterr().out == f"Skipped: torch {torch.__version__}: {UNSUPPORTED_MESSAGE}.\n"


@pytest.mark.slow  # dynamo traces the model before the backend fails
def test_a_backend_that_fails_to_build_is_reported_in_one_line(mnist, monkeypatch, tmp_path):
    def broken_backend(graph, example_inputs):  # what inductor does where the C++ compiler cannot build
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, backend: real_compile(model, backend=broken_backend))
    with pytest.raises(compilation.CompileUnavailable, match="^aot_eager failed: .*InvalidCxxCompiler: No working C"):
        compilation.compare_compiled_training(SPEC, mnist, backend="aot_eager", batch_size=8, learning_rate=0.1,
                                              seed=SEED, steps=1, device="cpu", cache_dir=tmp_path)  # fmt: skip


@pytest.mark.slow  # imports torch._dynamo
def test_inductor_builds_one_file_at_a_time_while_the_model_compiles(mnist, monkeypatch, tmp_path):
    """Each C++ compiler process holds about 250 MB: two at once would take notebook 09 past a class's 1.5 GB."""
    threads, real_compile = [], torch.compile

    def compile_and_note(model, backend):
        threads.append(torch._inductor.config.compile_threads)
        return real_compile(model, backend=backend)

    monkeypatch.setattr(torch, "compile", compile_and_note)
    before = torch._inductor.config.compile_threads
    compilation.compare_compiled_training(SPEC, mnist, backend="aot_eager", batch_size=8, learning_rate=0.1,
                                          seed=SEED, steps=1, device="cpu", cache_dir=tmp_path,
                                          verbose=False)  # fmt: skip
    assert threads == [compilation.COMPILE_THREADS] == [1]
    assert torch._inductor.config.compile_threads == before  # the setting holds for the comparison only
