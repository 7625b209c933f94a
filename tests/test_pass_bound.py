"""benchmarks/pass_bound.py: a layer's time in a pass beside the layer run alone."""
import re

from benchmarks import pass_bound


def test_pass_bound_prints_every_layer_and_sums_them(capsys):
    assert pass_bound.main(["--alpha", "0.25", "--resolution", "128", "--runs", "3"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(\S+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+([+-]\d+\.\d+)$", out, re.M)
    names = [r[0] for r in rows]
    assert names[0] == "conv0" and names[-1] == "fc" and "pw13" in names
    whole = re.search(r"^whole pass\s+(\d+\.\d+)\s+(\d+\.\d+)", out, re.M)
    assert whole, out
    alone_sum = sum(float(r[2]) for r in rows)
    assert abs(alone_sum - float(whole.group(2))) < 1e-3 * len(rows)
    for _, in_pass, alone, gap in rows:
        assert abs(float(in_pass) - float(alone) - float(gap)) < 2e-4
