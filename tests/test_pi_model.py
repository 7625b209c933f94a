"""benchmarks/pi_model.py cuts inner loops out of gcc assembly: the extraction is checked on
hand-written snippets (no cross compiler or llvm-mca needed)."""
from benchmarks.pi_model import function_body, innermost_loops, mca_source

ASM = """\
\t.text
\t.global\tf
\t.type\tf, %function
f:
.LFB1:
\tmov\tx3, 0
.L3:
\tldr\tq1, [x0, x3]
.L4:
\tfmla\tv0.4s, v1.4s, v2.s[0]
\tfmla\tv3.4s, v1.4s, v2.s[1]
\tadd\tx3, x3, 16
\tcmp\tx3, x2
\tbne\t.L4
\tsubs\tx4, x4, 1
\tb.ne\t.L3
// inline assembly
0:
\tfmla\tv5.4s, v6.4s, v7.s[3]
\tfmul\tv8.4s, v6.4s, v7.4s
\tsubs\tx9, x9, 1
\tb.ne\t0b
\tret
\t.size\tf, .-f
g:
.L9:
\tfmla\tv0.4s, v1.4s, v2.4s
\tb\t.L9
\t.size\tg, .-g
"""


def test_innermost_loops_by_label():
    loops = innermost_loops(function_body(ASM, "f"))
    # .L3 contains another label, so it is not innermost; .L4 and the inline-asm 0: are
    assert [lp.label for lp in loops] == [".L4", "0"]
    assert [(lp.fmas, lp.muls) for lp in loops] == [(2, 0), (1, 1)]
    assert loops[0].body[-1].split()[0] == "bne" and loops[1].body[-1] == "b.ne\t0b"


def test_function_body_stops_at_its_size_directive():
    body = function_body(ASM, "f")
    assert body[-1].strip() == "ret" and not any("fmla\tv0.4s, v1.4s, v2.4s" in x for x in body)
    assert [lp.label for lp in innermost_loops(function_body(ASM, "g"))] == [".L9"]


def test_numeric_back_branch_gets_a_named_label():
    # llvm-mca cannot resolve `0b` in a cut-out loop (it drops the branch): the loop is given
    # a named label; GCC's .L labels and the other lines are left as they are
    loop = innermost_loops(function_body(ASM, "f"))[1]
    src = mca_source(loop.body)
    assert src[0] == "tm_mca_loop:" and src[-1] == "b.ne\ttm_mca_loop" and src[1:-1] == loop.body[:-1]
    gcc = innermost_loops(function_body(ASM, "f"))[0]
    assert mca_source(gcc.body) == gcc.body
