"""Which ukernel ran each layer (the benchmark's per-layer profile): every operator names the
function its table runs, and on the VNNI ISAs the integer layers name the vpdpbusd kernels."""
import numpy as np
import pytest

from conftest import F32_ISAS, QU8_ISA_PARAMS
from tinymobile import benchmark, build, kernels
from tinymobile import quantized_reference as qr
from tinymobile.operators import (AveragePoolOp, Conv3x3Op, Depthwise3x3Op, PointwiseOp,
                                  kernel_table)

#: The integer ukernels each x86 ISA runs: (GEMM, depthwise).
X86_QU8 = {"avx2": ("tm_qu8_gemm_6x16__avx2", "tm_qu8_dwconv3x3_row__avx2"),
           "avx512": ("tm_qu8_gemm_6x16__avx2", "tm_qu8_dwconv3x3_row__avx512"),
           "avxvnni": ("tm_qu8_gemm_6x16__avxvnni", "tm_qu8_dwconv3x3_row__avx2"),
           "avx512vnni": ("tm_qu8_gemm_8x32__avx512vnni", "tm_qu8_dwconv3x3_row__avx512vnni"),
           "scalar": ("tm_qu8_gemm_4x4__scalar", "tm_qu8_dwconv3x3_row__scalar")}

#: The float GEMV (batch-1 rows) each x86 vector ISA runs.
X86_F32_GEMV = {"avx2": "tm_f32_gemv_4x16__avx2", "avxvnni": "tm_f32_gemv_4x16__avx2",
                "avx512": "tm_f32_gemv_4x32__avx512", "avx512vnni": "tm_f32_gemv_4x32__avx512"}


def requant(c):
    return qr.Requant(3, np.zeros(c, np.int32), np.full(c, 1 << 30, np.int32),
                      np.full(c, -3, np.int32), 5, (0, 255), "uint8")


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
def test_integer_layers_name_their_ukernels(isa):
    kern, pool = kernel_table(isa, "uint8"), kernels.create_pool(1)
    w = np.ones((3, 3, 4, 8), np.uint8)
    paths = [PointwiseOp(kern, pool, w[0, 0], np.zeros(8, np.int32), rq=requant(8)).kernel_path(),
             Conv3x3Op(kern, pool, w, np.zeros(8, np.int32), 2, "tf_same", rq=requant(8)).kernel_path(),
             Depthwise3x3Op(kern, pool, w[:, :, 0, :], np.zeros(8, np.int32), 1, "tf_same",
                            rq=requant(8)).kernel_path()]
    assert all(p.startswith("tm_qu8_") for p in paths), paths
    if isa == "avx512":  # the AVX-512 depthwise only where the CPU has AVX-512 BW and VL too
        assert paths[2] in ("tm_qu8_dwconv3x3_row__avx512", "tm_qu8_dwconv3x3_row__avx2")
        paths[2] = X86_QU8[isa][1]
    if isa in X86_QU8:  # 8 output channels: avx512vnni's narrow 16x8 tile for the 3x3
        conv = "tm_qu8_gemm_16x8__avx512vnni" if isa == "avx512vnni" else X86_QU8[isa][0]
        assert paths == [X86_QU8[isa][0], conv, X86_QU8[isa][1]]
    assert AveragePoolOp(kern).kernel_path() == "plain C (avgpool_op.c)"


@pytest.mark.parametrize("isa", F32_ISAS)
def test_float_layers_name_their_ukernels(isa):
    kern, pool = kernel_table(isa), kernels.create_pool(1)
    op = PointwiseOp(kern, pool, np.ones((4, 8), np.float32), np.zeros(8, np.float32))
    assert op.kernel_path().split(" + ")[0] == kernels.gemm_kernel(isa)
    if isa in X86_F32_GEMV:  # a lone row (fully connected at batch 1) runs the table's GEMV
        assert op.kernel_path() == f"{kernels.gemm_kernel(isa)} + {X86_F32_GEMV[isa]}"
    dw = Depthwise3x3Op(kern, pool, np.ones((3, 3, 8), np.float32), np.zeros(8, np.float32), 1,
                        "tf_same").kernel_path()
    assert dw.startswith("tm_f32_dwconv3x3_row__")
    if isa in ("avx2", "avxvnni", "avx512", "avx512vnni"):  # the float table's own depthwise row
        assert dw == ("tm_f32_dwconv3x3_row__avx512" if "avx512" in isa else
                      "tm_f32_dwconv3x3_row__avx2")
    assert AveragePoolOp(kern).kernel_path().startswith("tm_f32_avgpool__")


@pytest.mark.parametrize("isa", F32_ISAS)
@pytest.mark.parametrize("cout", [8, 16, 24, 32, 40])
def test_first_layer_names_its_tiles(isa, cout):
    """A full 3x3 layer names every tile its panels run: on avx512 a panel of at most 16 output
    channels (8 and 16: alpha 0.25 and 0.5; the 8 left of 40) runs the 16x16 tile, wider ones the
    8x32 GEMM tile; tables without a narrow tile name their GEMM tile alone."""
    w = np.ones((3, 3, 3, cout), np.float32)
    path = Conv3x3Op(kernel_table(isa), kernels.create_pool(1), w, np.zeros(cout, np.float32), 2,
                     "tf_same").kernel_path()
    if isa in ("avx512", "avx512vnni"):
        gemm, narrow = "tm_f32_igemm_8x32__avx512", "tm_f32_igemm_16x16__avx512"
        assert path == {8: narrow, 16: narrow, 24: gemm, 32: gemm, 40: f"{gemm} + {narrow}"}[cout]
    else:
        assert path == kernels.gemm_kernel(isa)


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
@pytest.mark.parametrize("cout", [7, 8, 9, 16, 32, 40])
def test_integer_first_layer_names_its_tiles(isa, cout):
    """An integer 3x3 layer on avx512vnni runs a panel of at most 8 output channels (alpha
    0.25's first layer; the 8 left of 40) on the 16x8 tile, wider ones on the 8x32 tile; the
    other tables name their GEMM tile alone."""
    w = np.ones((3, 3, 3, cout), np.uint8)
    path = Conv3x3Op(kernel_table(isa, "uint8"), kernels.create_pool(1), w,
                     np.zeros(cout, np.int32), 2, "tf_same", rq=requant(cout)).kernel_path()
    if isa == "avx512vnni":
        gemm, narrow = "tm_qu8_gemm_8x32__avx512vnni", "tm_qu8_gemm_16x8__avx512vnni"
        assert path == {7: narrow, 8: narrow, 9: gemm, 16: gemm, 32: gemm,
                        40: f"{gemm} + {narrow}"}[cout]
    elif isa in X86_QU8:
        assert path == X86_QU8[isa][0]


@pytest.mark.parametrize("isa", QU8_ISA_PARAMS)
def test_integer_pointwise_names_its_short_tile(isa):
    """avx512vnni runs integer pointwise layers of 49 and 196 rows (and 25) on its 7x32 tile,
    those the 8-row tile fits exactly (16, 64, 784) on the 8x32 one, a lone row (batch-1 fully
    connected) on its 4x32 GEMV; other tables always their GEMM."""
    op = PointwiseOp(kernel_table(isa, "uint8"), kernels.create_pool(1), np.ones((16, 32), np.uint8),
                     np.zeros(32, np.int32), rq=requant(32))
    for rows in (1, 16, 25, 49, 64, 196, 784):
        path = op.kernel_path(rows=rows)
        if isa == "avx512vnni":
            short = rows in (25, 49, 196)  # the rows it pads less
            assert path == ("tm_qu8_gemv_4x32__avx512vnni" if rows == 1 else
                            "tm_qu8_gemm_7x32__avx512vnni" if short else
                            "tm_qu8_gemm_8x32__avx512vnni"), rows
        elif isa in X86_QU8:
            assert path == X86_QU8[isa][0]


def test_profile_rows_carry_the_kernel():
    model = build(0.25, 64, threads=1)
    rows = benchmark.profile(model, warmup=1, runs=2)
    assert len(rows) == len(model.network.layers)
    assert all(isinstance(r["kernel"], str) and r["kernel"].startswith("tm_f32_") for r in rows)
    text = benchmark.format_profile(rows)
    assert rows[0]["kernel"] in text.splitlines()[1]


@pytest.mark.skipif("avx512" not in F32_ISAS, reason="this CPU has no AVX-512")
def test_avx512_pointwise_names_the_tile_its_rows_run_on():
    """Rows the 7-row tile pads no more than the 8-row one (49, 196, 12544: the layers of a
    224-pixel model) run on the 7x32 tile; multiples of 8 that 7 pads more, on the 8x32 one."""
    kern, pool = kernel_table("avx512"), kernels.create_pool(1)
    op = PointwiseOp(kern, pool, np.ones((4, 8), np.float32), np.zeros(8, np.float32))
    assert op.kernel_path(rows=49).startswith("tm_f32_igemm_7x32__avx512")
    assert op.kernel_path(rows=196).startswith("tm_f32_igemm_7x32__avx512")
    assert op.kernel_path(rows=12544).startswith("tm_f32_igemm_7x32__avx512")
    assert op.kernel_path(rows=64).startswith("tm_f32_igemm_8x32__avx512")
    assert op.kernel_path(rows=16) == "tm_f32_igemm_8x32__avx512"  # no lone row
    assert op.kernel_path(rows=1) == "tm_f32_gemv_4x32__avx512"  # batch-1 classifier: GEMV only
    assert op.kernel_path(rows=57) == "tm_f32_igemm_7x32__avx512 + tm_f32_gemv_4x32__avx512"
