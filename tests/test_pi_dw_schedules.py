"""benchmarks/pi_dw_schedules.py: the generated multi-row depthwise schedules keep the kernels'
FMA order and register budget (what its llvm-mca figures are worth rests on it), and its check
catches a schedule that does not (no cross compiler or llvm-mca needed)."""
import pytest

from benchmarks.pi_dw_schedules import ALLOWED, Candidate, candidates, check, loop_lines, ops, registers


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 8])
def test_every_candidate_keeps_the_order_and_loads_each_input_once(stride, rows):
    cands = candidates(stride, rows)
    assert cands, "no schedule fits the registers"
    for c in cands:
        lines = loop_lines(c)  # raises if check() finds anything
        body = lines[1:]
        mnemonics = [x.split()[0] for x in body]
        assert set(mnemonics) <= ALLOWED and registers(c)["used"] <= 32
        outputs = 2 * rows * c.pixels                         # two 4-channel halves
        assert mnemonics.count("fmla") == 9 * outputs
        assert mnemonics.count("str") == outputs and mnemonics.count("fmax") == outputs
        seq = ops(c)
        inputs = [op for op in seq if op[0] == "in"]
        # every input row vector under the call loaded exactly once per half
        assert len(inputs) == 2 * c.input_rows * c.columns
        assert body[-1] == "b.ne 0b"


def test_schedules_that_do_not_fit_are_refused():
    c = Candidate(1, 3, 8)
    assert registers(c)["used"] > 32 and ops(c) is None


def _first(seq, pred):
    return next(i for i, op in enumerate(seq) if pred(op))


@pytest.mark.parametrize("c", [Candidate(1, 2, 4), Candidate(2, 2, 3, "per-row", "reloaded")])
def test_check_finds_a_wrong_schedule(c):
    seq = ops(c)
    assert check(seq, c) == []
    # two taps of one accumulator swapped (kx 0 and kx 1 of the first row): a different sum order
    i = _first(seq, lambda op: op[0] == "fma")
    j = _first(seq[i + 1:], lambda op: op[0] == "fma" and op[1] == seq[i][1]) + i + 1
    swapped = list(seq)
    swapped[i], swapped[j] = seq[j], seq[i]
    assert check(swapped, c)
    # a tap register that holds another tap
    wrong_tap = list(seq)
    wrong_tap[i] = ("fma", seq[i][1], seq[i][2], seq[j][3])
    assert check(wrong_tap, c)
    # an input column off by one
    wrong_col = list(seq)
    wrong_col[i] = ("fma", seq[i][1], seq[j][2], seq[i][3])
    assert check(wrong_col, c)
    # a clamp left out, and an output stored twice
    k = _first(seq, lambda op: op[0] == "min")
    assert check(seq[:k] + seq[k + 1:], c)
    s = _first(seq, lambda op: op[0] == "st")
    assert check(seq[:s + 1] + [seq[s]] + seq[s + 1:], c)
    # a bias load missing (the accumulator then still holds the previous output)
    b = [n for n, op in enumerate(seq) if op[0] == "bias"][-1]
    assert check(seq[:b] + seq[b + 1:], c)
