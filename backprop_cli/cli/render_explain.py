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


class _Lines(list):
    """The lines ``explain`` prints, with the ways of adding them."""

    def say(self, text: str, style: str = "", indent: int = 0, wrap: bool = True) -> None:
        lines = (textwrap.wrap(text, EXPLAIN_WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2),
                               break_on_hyphens=False) if wrap else [" " * indent + text]) or [""]
        self.extend(Text(line, style=style) for line in lines)

    def array(self, label: str, t: dict, indent: int) -> None:
        self.extend(Text(line) for line in array_lines(label, t, indent))

    def part(self, title: str) -> None:
        self.extend([Text(""), Text(title, style="bold")])


def explanation(r: dict, brief: bool = False) -> list:
    """What ``explain`` prints: the training step in five numbered parts, as plain lines of text (no
    markup is read from the values), at most :data:`EXPLAIN_WIDTH` columns wide (prose is wrapped).
    ``brief`` (``-q``): the loss in place of parts 1 to 3, and the step's table without its prose."""
    out = _Lines()
    first, stop = r["samples"]
    which = f"sample {first}" if stop - first == 1 else f"samples {first} to {stop - 1}"
    out.say(f"explain {r['name']}: training {which} of {r['of']} in {r['data']}", "bold")
    if brief:
        out.say(_loss_line(r["criterion"]), "bold", 2)
    else:
        _forward(out, r)
        _loss(out, r["criterion"])
        _backward(out, r)
    _step(out, r["step"], brief)
    if r["gradcheck"] is not None:
        _check(out, r["gradcheck"])
    return out


def _loss_line(c: dict) -> str:
    return f"loss = {c['loss']:.6g} (reduction: {c['reduction']})"


def _forward(out: _Lines, r: dict) -> None:
    out.say(f"weights: {r['weights']}", indent=2)
    out.array("target", r["target"], 2)
    out.part("1. forward: output = layer.forward(input), first layer first (training mode)")
    out.array("input", r["input"], 2)
    for f in r["forward"]:
        out.say(f"{f['index']} {f['layer']}   {shape_str(f['input_shape'])} -> {shape_str(f['output']['shape'])}",
                "bold cyan", 2)
        out.say(f["formula"], "dim", 4)
        out.array("output", f["output"], 4)
        for note in f["notes"]:
            out.say(note["text"], "yellow", 4)


def _loss(out: _Lines, c: dict) -> None:
    out.part("2. loss = criterion.forward(output, target); grad_output = criterion.backward(output, target)")
    out.say(f"{c['name']}: {c['formula']}", "dim", 2)
    out.say(_loss_line(c), "bold", 2)
    out.array("grad_output = dLoss/dOutput", c["grad_output"], 2)
    out.say(f"the criterion's formula: {c['gradient_formula']}", "dim", 4)
    out.say(f"its values: {c['reading']}", "", 4)
    out.say("This is what Torch7 calls df_do: the derivative of this loss with respect to the output "
            "(not target - output).", "", 2)


def _backward(out: _Lines, r: dict) -> None:
    out.part("3. backward, last layer first: grad_input = layer.update_grad_input(input, grad_output)")
    out.say("grad_input is dLoss/dInput, the next grad_output down: a derivative, not new weights. Then "
            "layer.acc_grad_parameters(input, grad_output, scale=1) adds dLoss/dW into grad_weight, grad_bias.",
            "", 2)
    for b in r["backward"]:
        out.say(f"{b['index']} {b['layer']}", "bold cyan", 2)
        out.say(b["formula"], "dim", 4)
        out.array("grad_output", b["grad_output"], 4)
        out.array("grad_input ", b["grad_input"], 4)
        shown = set()
        for p in b["parameters"]:
            if p["formula"] not in shown:
                shown.add(p["formula"])
                out.say(p["formula"], "dim", 4)
            out.array(f"{p['name']} gradient", p["grad"], 4)
    unchanged = r["weights_unchanged_by_backward"]
    out.say("weights after backward: " + ("unchanged: backward computes derivatives, it never changes a weight"
                                          if unchanged else "CHANGED: a layer's backward wrote to its weights"),
            "green" if unchanged else "bold red", 2)


def _step(out: _Lines, s: dict, brief: bool) -> None:
    out.part("4. step: optimizer.step(), the only place weights change")
    if not brief:
        out.say(s["module"], "", 2)
        for text in s["rule"].splitlines():
            out.say(text, "dim", 2, wrap=False)
    if s["clipping"]:
        out.say(s["clipping"], "yellow", 2)
    table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
    for name in ("parameter", "|W_new - W_old|", f"|lr * grad|, lr {s['lr']:.3g}", "max |step + lr*grad|", "|dW|/|W|"):
        table.add_column(name, justify="left" if name == "parameter" else "right")
    for p in s["parameters"]:
        table.add_row(p["name"], short_number(p["step"]["norm"]), short_number(p["minus_lr_grad"]["norm"]),
                      f"{p['max_difference']:.2g}", f"{p['update_ratio']:.3g}")
    out.append(Padding(table, (0, 0, 0, 1), expand=False))
    verdict = ("the step is -lr * grad for every weight (to rounding)" if s["equals_minus_lr_grad"]
               else "the step is not -lr * grad")
    out.say(f"{verdict}: {s['why']}", "bold", 2)
    if not brief:
        out.say("|grad| and |dW|/|W| are what training.log_gradients: true averages over each epoch's steps into "
                "gradients.csv (see the README, Gradient flow)", "", 2)


def _check(out: _Lines, checks: list[dict]) -> None:
    out.part("5. finite differences: gradcheck of this batch's gradients (float64, central differences)")
    for g in checks:
        skipped = f", {g['skipped']} at kinks" if g["skipped"] else ""
        status = "pass" if g["passed"] else "FAIL"
        out.say(f"{status:4}  {g['layer']:<24} {g['checked']:>6} compared{skipped}, max rel err "
                f"{g['max_rel_err']:.1e}", "green" if g["passed"] else "bold red", 2)
        for failure in g["failures"]:
            out.say(failure, "red", 8)
