"""Whether a function is still an exercise stub, judged by its structure: its body is only an optional docstring
(and comments) and `raise NotImplementedError(...)`. Both `make student`'s `raise NotImplementedError("your code
here")` and nbgrader's `# YOUR CODE HERE` + `raise NotImplementedError()` are stubs; a written function that
raises NotImplementedError somewhere is not (the check reports that as an error of its code)."""

import ast
import dis
import inspect
import textwrap

SKIPPED = {"RESUME", "NOP", "CACHE", "PRECALL", "PUSH_NULL", "COPY_FREE_VARS", "MAKE_CELL", "EXTENDED_ARG",
           "KW_NAMES", "NOT_TAKEN"}
LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST_AND_CLEAR"}
CALLS = {"CALL", "CALL_FUNCTION", "CALL_KW", "CALL_FUNCTION_KW"}
NAME = "NotImplementedError"


def function_code(fn):
    """The code object behind `fn` (a function, a bound method or a wrapper of one), or None."""
    fn = inspect.unwrap(fn) if callable(fn) else fn
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__code__", None)


def is_stub(fn):
    """True when `fn` is a stub: from its source with `ast` where the source is available, else its bytecode."""
    code = function_code(fn)
    if code is None or code.co_name == "<lambda>":  # a lambda cannot hold a raise statement
        return False
    verdict = _stub_by_source(fn, code)
    return _stub_by_bytecode(code) if verdict is None else verdict


def _stub_by_source(fn, code):
    """True/False from the function's source, or None where the source cannot be read or parsed."""
    try:
        source = textwrap.dedent(inspect.getsource(code))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
            return _is_stub_body(node.body)
    return None


def _is_stub_body(body):
    statements = list(body)
    if statements and isinstance(statements[0], ast.Expr) and isinstance(statements[0].value, ast.Constant) \
            and isinstance(statements[0].value.value, str):
        statements = statements[1:]  # the docstring
    if len(statements) != 1 or not isinstance(statements[0], ast.Raise) or statements[0].cause is not None:
        return False
    raised = statements[0].exc
    if isinstance(raised, ast.Call):
        if not all(isinstance(argument, ast.Constant) for argument in raised.args) or raised.keywords:
            return False
        raised = raised.func
    return isinstance(raised, ast.Name) and raised.id == NAME


def _stub_by_bytecode(code):
    """Load NotImplementedError, optionally call it with constants, raise it: nothing else."""
    instructions = [step for step in dis.get_instructions(code) if step.opname not in SKIPPED]
    if not instructions or instructions[0].opname not in LOADS or instructions[0].argval != NAME:
        return False
    rest = [step.opname for step in instructions[1:]]
    while rest and rest[0] == "LOAD_CONST":
        rest.pop(0)
    if rest and rest[0] in CALLS:
        rest.pop(0)
    elif len(rest) != len(instructions) - 1:  # constants loaded but never passed to a call
        return False
    return rest[:1] == ["RAISE_VARARGS"] and all(name in {"LOAD_CONST", "RETURN_VALUE", "RETURN_CONST"}
                                                 for name in rest[1:])
