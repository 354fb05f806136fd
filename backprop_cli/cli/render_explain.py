"""What ``backprop explain`` prints: the training step in five numbered parts, as plain lines of text."""

from __future__ import annotations

import textwrap

from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..errors import shape_str
from .render import short_number

#: Arrays with at most this many values are shown in full; larger ones by their statistics.
SHOWN_IN_FULL = 16
#: Lines of ``explain`` are kept this short (a 100-column terminal).
EXPLAIN_WIDTH = 98


def _flat(values) -> list:
    if isinstance(values, list):
        return [v for item in values for v in _flat(item)]
    return [values]


def array_lines(label: str, t: dict, indent: int) -> list[str]:
    """An array from ``explain``: every value when it has few (a small batch of rows row by row),
    else its statistics and first values; on one line when that fits, else on the lines below."""
    flat, shape = _flat(t["values"]), t["shape"]
    head = f"{label} {shape_str(shape)}"
    if len(flat) > SHOWN_IN_FULL and len(shape) == 2 and shape[0] <= 8 and shape[1] <= SHOWN_IN_FULL:
        return [" " * indent + head] + [line for i, row in enumerate(t["values"])
                                        for line in _wrapped([short_number(v) for v in row], "", indent + 2, f"{i}: ")]
    if len(flat) > SHOWN_IN_FULL:
        head += f"  min {short_number(t['min'])}  mean {short_number(t['mean'])}  max {short_number(t['max'])}  |.| {short_number(t['norm'])}"
        body, more = [short_number(v) for v in flat[:8]], ", ..."
    else:
        body, more = [short_number(v) for v in flat], ""
    one = f"{head}: {', '.join(body)}{more}"
    if indent + len(one) <= EXPLAIN_WIDTH:
        return [" " * indent + one]
    return [" " * indent + head] + _wrapped(body, more, indent + 2)


def _wrapped(values: list[str], more: str, indent: int, prefix: str = "") -> list[str]:
    """``values`` joined by commas on lines of at most :data:`EXPLAIN_WIDTH` columns."""
    lines, line = [], " " * indent + prefix
    for i, text in enumerate(values):
        piece = text + (", " if i + 1 < len(values) else more)
        if len(line) + len(piece) > EXPLAIN_WIDTH and line.strip():
            lines.append(line.rstrip())
            line = " " * (indent + len(prefix))
        line += piece
    return lines + [line.rstrip()]


def explanation(r: dict):
    """What ``explain`` prints: the training step in five numbered parts, as plain lines of text (no
    markup is read from the values), at most :data:`EXPLAIN_WIDTH` columns wide (prose is wrapped)."""
    out: list = []

    def say(text: str, style: str = "", indent: int = 0, wrap: bool = True) -> None:
        lines = (textwrap.wrap(text, EXPLAIN_WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2),
                               break_on_hyphens=False) if wrap else [" " * indent + text]) or [""]
        out.extend(Text(line, style=style) for line in lines)

    def array(label: str, t: dict, indent: int) -> None:
        out.extend(Text(line) for line in array_lines(label, t, indent))

    def part(title: str) -> None:
        out.extend([Text(""), Text(title, style="bold")])

    first, stop = r["samples"]
    which = f"sample {first}" if stop - first == 1 else f"samples {first} to {stop - 1}"
    say(f"explain {r['name']}: training {which} of {r['of']} in {r['data']}", "bold")
    say(f"weights: {r['weights']}", indent=2)
    array("target", r["target"], 2)

    part("1. forward: output = layer.forward(input), first layer first (training mode)")
    array("input", r["input"], 2)
    for f in r["forward"]:
        say(f"{f['index']} {f['layer']}   {shape_str(f['input_shape'])} -> {shape_str(f['output']['shape'])}", "bold cyan", 2)
        say(f["formula"], "dim", 4)
        array("output", f["output"], 4)
        for note in f["notes"]:
            say(note["text"], "yellow", 4)

    c = r["criterion"]
    part("2. loss = criterion.forward(output, target); grad_output = criterion.backward(output, target)")
    say(f"{c['name']}: {c['formula']}", "dim", 2)
    say(f"loss = {c['loss']:.6g} (reduction: {c['reduction']})", "bold", 2)
    array("grad_output = dLoss/dOutput", c["grad_output"], 2)
    say(f"the criterion's formula: {c['gradient_formula']}", "dim", 4)
    say(f"its values: {c['reading']}", "", 4)
    say("This is what Torch7 calls df_do: the derivative of this loss with respect to the output "
        "(not target - output).", "", 2)

    part("3. backward, last layer first: grad_input = layer.update_grad_input(input, grad_output)")
    say("grad_input is dLoss/dInput, the next grad_output down: a derivative, not new weights. Then "
        "layer.acc_grad_parameters(input, grad_output, scale=1) adds dLoss/dW into grad_weight, grad_bias.",
        "", 2)
    for b in r["backward"]:
        say(f"{b['index']} {b['layer']}", "bold cyan", 2)
        say(b["formula"], "dim", 4)
        array("grad_output", b["grad_output"], 4)
        array("grad_input ", b["grad_input"], 4)
        shown = set()
        for p in b["parameters"]:
            if p["formula"] not in shown:
                shown.add(p["formula"])
                say(p["formula"], "dim", 4)
            array(f"{p['name']} gradient", p["grad"], 4)
    unchanged = r["weights_unchanged_by_backward"]
    say("weights after backward: " + ("unchanged: backward computes derivatives, it never changes a weight"
                                      if unchanged else "CHANGED: a layer's backward wrote to its weights"),
        "green" if unchanged else "bold red", 2)

    s = r["step"]
    part("4. step: optimizer.step(), the only place weights change")
    say(s["module"], "", 2)
    for text in s["rule"].splitlines():
        say(text, "dim", 2, wrap=False)
    if s["clipping"]:
        say(s["clipping"], "yellow", 2)
    table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
    for name in ("parameter", "|W_new - W_old|", f"|lr * grad|, lr {s['lr']:.3g}", "max |step + lr*grad|", "|dW|/|W|"):
        table.add_column(name, justify="left" if name == "parameter" else "right")
    for p in s["parameters"]:
        table.add_row(p["name"], short_number(p["step"]["norm"]), short_number(p["minus_lr_grad"]["norm"]),
                      f"{p['max_difference']:.2g}", f"{p['update_ratio']:.3g}")
    out.append(Padding(table, (0, 0, 0, 1), expand=False))
    verdict = ("the step is -lr * grad for every weight (to rounding)" if s["equals_minus_lr_grad"]
               else "the step is not -lr * grad")
    say(f"{verdict}: {s['why']}", "bold", 2)
    say("|grad| and |dW|/|W| are what training.log_gradients: true averages over each epoch's steps into "
        "gradients.csv (see the README, Gradient flow)", "", 2)

    if r["gradcheck"] is not None:
        part("5. finite differences: gradcheck of this batch's gradients (float64, central differences)")
        for g in r["gradcheck"]:
            skipped = f", {g['skipped']} at kinks" if g["skipped"] else ""
            status = "pass" if g["passed"] else "FAIL"
            say(f"{status:4}  {g['layer']:<24} {g['checked']:>6} compared{skipped}, max rel err "
                f"{g['max_rel_err']:.1e}", "green" if g["passed"] else "bold red", 2)
            for failure in g["failures"]:
                say(failure, "red", 8)
    return out
