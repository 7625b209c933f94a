"""Modelled Raspberry Pi speed of the ARM kernels: llvm-mca on the compiled inner loops.

    python -m benchmarks.pi_model [--out DIR] [--keep-asm DIR]      (make pi-model)

For every float kernel the aarch64 and ARMv7 builds run, the C file is cross-compiled to assembly
with the flags the package itself is built with on a Pi (csrc/build_ffi.compile_args: -O3, and
-march=armv7-a -mfpu=neon-vfpv4 for 32-bit), its innermost loops are cut out by label (a label
followed, without another label in between, by a branch back to it) and each is run through
llvm-mca (LLVM 14) on the cortex-a53 and cortex-a72 scheduling models. A loop's share of the FMA
peak is FMAs per iteration x the model's cycles per FMA (measured on a block of independent
128-bit FMAs on the same model) / cycles per iteration.

From those cycle counts and each layer's shape it models the per-layer and whole-network time of
MobileNet v1 on a Pi 3 (Cortex-A53, 1.4 GHz), Pi 4 (Cortex-A72, 1.8 GHz) and Pi 5 (Cortex-A76,
2.4 GHz). It is a MODEL that ignores memory stalls (caches, DRAM), the code outside the inner
loops and threading: a lower bound on one core's time, not a measurement. LLVM 14 has no
Cortex-A76 model (`-mcpu=cortex-a76` is scheduled with the Cortex-A57 model, the same one as
cortex-a72), so the A72 cycles stand in for the Pi 5 at its clock; the real A76 has two 128-bit
FMA pipes, so that part errs slow. LLVM 14's 32-bit ARM backend has no Cortex-A53 model.

It also reports benchmarks/pi_dw_schedules.py: the best generated depthwise schedule with 1 to 16
output rows per call on both models (checked to keep the kernels' FMA order; not compiled into the
package), what several output rows per call would give the in-order depthwise kernel.

Writes pi-model.json and pi-model.md under benchmarks/results/ (or --out).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODELS = ("cortex-a53", "cortex-a72")
# Pi boards: (name, core, GHz, llvm-mca model that stands for the core)
BOARDS = (("Pi 3", "Cortex-A53", 1.4, "cortex-a53"),
          ("Pi 4", "Cortex-A72", 1.8, "cortex-a72"),
          ("Pi 5", "Cortex-A76", 2.4, "cortex-a72"))
# Published MobileNet v1 1.0_224 float figures (../shared/docs/FIELD.md): one thread unless noted.
PUBLISHED = {
    "Pi 3": [("ncnn fp32, Pi 3B+, 1 thread", 206.0)],
    "Pi 4": [("ncnn fp32, 1 thread", 124.0), ("ncnn fp32, 4 threads", 61.0),
             ("XNNPACK fp32, 4 threads (2020)", 75.0)],
    "Pi 5": [],
}

ARCHS = {
    # arch: (compiler, llvm-mca triple, machine and pointer size for build_ffi.compile_args)
    "aarch64": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu", ("aarch64", 8)),
    "armv7": ("arm-linux-gnueabihf-gcc", "armv7-linux-gnueabihf", ("armv7l", 4)),
}


@dataclass
class Kernel:
    """One ukernel source and what its loops are used for in the model."""
    arch: str
    path: str            # relative to csrc/
    function: str
    role: str            # "gemm", "ppmm" (GEMM on A packed by a "pack" kernel) or "dwconv"
    core: str = "any"    # the cores the dispatch picks it for: "in-order", "out-of-order", "any"
    tile: Tuple[int, int] = (0, 0)
    # further functions of the same file whose loops count (the depthwise per-stride helpers)
    helpers: Tuple[Tuple[str, str], ...] = ()


DW_HELPERS = (("tm_dw_group_s1", "stride 1"), ("tm_dw_group_s2", "stride 2"))
DW_A53_HELPERS = (("tm_dw_a53_s1", "stride 1"), ("tm_dw_a53_s2", "stride 2"))

KERNELS = [
    Kernel("aarch64", "f32-igemm/tm_f32_igemm_8x8__aarch64_neonfma.c",
           "tm_f32_igemm_8x8__aarch64_neonfma", "gemm", "out-of-order", (8, 8)),
    Kernel("aarch64", "f32-igemm/tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53.c",
           "tm_f32_igemm_8x8__aarch64_neonfma_cortex_a53", "gemm", "in-order", (8, 8)),
    # in-order cores run the pointwise layers on A packed once per row block (pointwise_op.c)
    Kernel("aarch64", "f32-ppmm/tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53.c",
           "tm_f32_ppmm_8x8__aarch64_neonfma_cortex_a53", "ppmm", "in-order", (8, 8)),
    Kernel("aarch64", "f32-ppmm/tm_f32_ppmm_pack_8__aarch64_neon.c",
           "tm_f32_ppmm_pack_8__aarch64_neon", "pack", "in-order", (8, 4)),
    Kernel("aarch64", "f32-dwconv/tm_f32_dwconv3x3_row__neon.c",
           "tm_f32_dwconv3x3_row__neon", "dwconv", "out-of-order", helpers=DW_HELPERS),
    Kernel("aarch64", "f32-dwconv/tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53.c",
           "tm_f32_dwconv3x3_row__aarch64_neonfma_cortex_a53", "dwconv", "in-order",
           helpers=DW_A53_HELPERS),
    Kernel("armv7", "f32-igemm/tm_f32_igemm_4x12__neonfma.c",
           "tm_f32_igemm_4x12__neonfma", "gemm", "any", (4, 12)),
    Kernel("armv7", "f32-dwconv/tm_f32_dwconv3x3_row__neon.c",
           "tm_f32_dwconv3x3_row__neon", "dwconv", helpers=DW_HELPERS),
]

LABEL_RE = re.compile(r"^\s*(\.L\w+|\d+):")
FMA_RE = re.compile(r"^\s*(fmla\s+v\d+\.4s|vfma\.f32\s+q\d+)", re.I)
MUL_RE = re.compile(r"^\s*(fmul\s+v\d+\.4s|vmul\.f32\s+q\d+)", re.I)
BRANCH_RE = re.compile(r"^\s*(b\.\w+|b(?:ne|eq|cc|cs|hi|ls|lo|hs|ge|gt|le|lt|mi|pl)(?:\.w)?|"
                       r"cbnz|cbz|tbnz|tbz|b)\s+(?:[^,]*,\s*)*([.\w]+)\s*$")


def sh(cmd: List[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def compile_flags(arch: str) -> List[str]:
    import runpy
    build = runpy.run_path(os.path.join(ROOT, "csrc", "build_ffi.py"), run_name="pi_model")
    return build["compile_args"]()  # the same on every machine: the NEON files carry their target


def function_body(asm: str, function: str) -> List[str]:
    """The instruction lines of `function` in gcc -S output (directives dropped)."""
    lines = asm.splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith(function + ":"):
            inside = True
            continue
        if inside:
            if line.strip().startswith(".size") and function in line:
                break
            s = line.split("//")[0].split("@")[0].rstrip() if not line.lstrip().startswith("#") else ""
            if not s.strip():
                continue
            if s.strip().startswith(".") and not LABEL_RE.match(s):
                continue  # directive
            out.append(s)
    return out


@dataclass
class Loop:
    label: str
    body: List[str]
    fmas: int = 0
    muls: int = 0
    cycles: Dict[str, Optional[float]] = field(default_factory=dict)


def innermost_loops(body: List[str]) -> List[Loop]:
    """Straight-line loops: a label, then instructions without another label, then a branch
    back to it (numeric local labels of inline asm, `0:` ... `b.ne 0b`, included)."""
    loops = []
    for i, line in enumerate(body):
        m = LABEL_RE.match(line)
        if not m:
            continue
        label = m.group(1)
        for j in range(i + 1, len(body)):
            if LABEL_RE.match(body[j]):
                break
            b = BRANCH_RE.match(body[j])
            if b and b.group(2) in (label, label + "b"):
                insns = [x.strip() for x in body[i + 1:j + 1]]
                loops.append(Loop(label, insns, sum(bool(FMA_RE.match(x)) for x in insns),
                                  sum(bool(MUL_RE.match(x)) for x in insns)))
                break
    return loops


NUMERIC_TARGET_RE = re.compile(r"\b\d+[bf]\s*$")


def mca_source(asm_lines: List[str]) -> List[str]:
    """A cut-out loop as llvm-mca takes it: a back branch to a numeric local label of inline
    assembly (`b.ne 2b`) is pointed at a named label put at the top; left as it is, llvm-mca
    reports "directional label undefined", drops the branch and counts the loop a few cycles
    short (the in-order model makes a branch after FMLAs wait for them to write back)."""
    if not asm_lines or not NUMERIC_TARGET_RE.search(asm_lines[-1]):
        return list(asm_lines)
    return (["tm_mca_loop:"] + list(asm_lines[:-1]) +
            [NUMERIC_TARGET_RE.sub("tm_mca_loop", asm_lines[-1])])


def mca_cycles(asm_lines: List[str], triple: str, cpu: str, iterations: int = 400) -> Optional[float]:
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        if triple.startswith("armv7"):
            f.write(".syntax unified\n.thumb\n")
        f.write("\n".join(mca_source(asm_lines)) + "\n")
        name = f.name
    try:
        out = subprocess.run(["llvm-mca", f"-mtriple={triple}", f"-mcpu={cpu}",
                              f"-iterations={iterations}", name],
                             capture_output=True, text=True)
    finally:
        os.unlink(name)
    m = re.search(r"Total Cycles:\s+(\d+)", out.stdout)
    return int(m.group(1)) / iterations if m and out.returncode == 0 else None


def fma_peak(triple: str, cpu: str) -> Optional[float]:
    """Cycles per 128-bit FMA on the model: 16 independent ones (no chain), best case."""
    if triple.startswith("aarch64"):
        block = [f"fmla v{i}.4s, v20.4s, v21.4s" for i in range(16)]
    else:
        block = [f"vfma.f32 q{i % 8}, q8, q9" for i in range(16)]
        block = [f"vfma.f32 q{i}, q8, q9" for i in range(8)] * 2
    c = mca_cycles(block, triple, cpu)
    return c / len(block) if c else None


def llvm_mca_version() -> str:
    out = subprocess.run(["llvm-mca", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"LLVM version ([\d.]+)", out)
    return m.group(1) if m else "?"


def analyse(keep_asm: Optional[str], csrc: str = os.path.join(ROOT, "csrc")) -> dict:
    result = {"kernels": [], "peaks": {}}
    for arch, (cc, triple, _) in ARCHS.items():
        if shutil.which(cc) is None:
            raise SystemExit(f"pi-model: {cc} not found (sh tests/arm/install_deps.sh installs it)")
        flags = compile_flags(arch)
        result["peaks"][arch] = {cpu: fma_peak(triple, cpu) for cpu in MODELS}
        for k in (k for k in KERNELS if k.arch == arch):
            src = os.path.join(csrc, k.path)
            if not os.path.exists(src):
                continue
            cmd = [cc, "-std=c99", *flags, "-I", csrc, "-S", "-o", "-", src]
            asm = sh(cmd)
            if keep_asm:
                os.makedirs(keep_asm, exist_ok=True)
                open(os.path.join(keep_asm, f"{arch}-{k.function}.s"), "w").write(asm)
            entry = {"arch": arch, "file": "csrc/" + k.path, "function": k.function,
                     "role": k.role, "core": k.core, "tile": list(k.tile),
                     "compile": " ".join([cc, "-std=c99", *flags, "-S"]), "loops": []}
            found = []
            for fn, what in ((k.function, "main"),) + k.helpers:
                found += [(fn, what, lp) for lp in innermost_loops(function_body(asm, fn))
                          if lp.fmas or k.role == "pack"]
            for fn, what, lp in found:
                rec = {"function": fn, "what": what, "label": lp.label,
                       "instructions": len(lp.body), "fmas": lp.fmas, "muls": lp.muls,
                       "cycles": {}, "fma_share": {}}
                for cpu in MODELS:
                    cyc = mca_cycles(lp.body, triple, cpu)
                    peak = result["peaks"][arch][cpu]
                    rec["cycles"][cpu] = cyc
                    rec["fma_share"][cpu] = (lp.fmas * peak / cyc) if cyc and peak and lp.fmas else None
                entry["loops"].append(rec)
            result["kernels"].append(entry)
    return result


def main_loop(entry: dict, kind: str) -> Optional[dict]:
    """The loop the model uses: for a GEMM the one with the most FMAs (the main channel loop;
    "tail" = the one with the fewest, for the leftover channels); for depthwise ("stride 1",
    "stride 2") the interior-pixel loop of that stride's helper, else the loop with the most
    FMAs."""
    loops = sorted(entry["loops"], key=lambda r: r["fmas"], reverse=True)
    if not loops:
        return None
    if kind == "tail":
        return loops[-1] if len(loops) > 1 else None
    if kind.startswith("stride"):
        return next((r for r in loops if r["what"] == kind), loops[0])
    return loops[0]


def layer_times(result: dict, alpha: float = 1.0, resolution: int = 224) -> dict:
    """Modelled per-layer milliseconds on each board for the kernels the dispatch picks there."""
    from tinymobile.network import mobilenet_v1, conv_output
    net = mobilenet_v1(alpha, resolution)
    rows = net.summary_rows()
    by = {(e["arch"], e["function"]): e for e in result["kernels"]}

    def pick(arch: str, role: str, core: str, strict: bool = False) -> Optional[dict]:
        cands = [e for e in result["kernels"] if e["arch"] == arch and e["role"] == role]
        for e in cands:
            if e["core"] == core:
                return e
        return cands[0] if cands and not strict else None

    def gemm_cost(entry: dict, cpu: str):
        """Cycles of one tile over k channels (one tap) for a GEMM kernel's loops, or None: the
        main loop per its channels, leftover channels at the tail loop's cost per channel (it
        may take several a turn)."""
        g_main, g_tail = main_loop(entry, "main"), main_loop(entry, "tail")
        gc = g_main["cycles"][cpu] if g_main else None
        tc = g_tail["cycles"][cpu] if g_tail else None
        if gc is None:
            return None
        mr, nr = entry["tile"]
        k_per_iter = g_main["fmas"] * 4 // (mr * nr)       # channels per main-loop iteration
        tail_k = g_tail["fmas"] * 4 // (mr * nr) if g_tail else 0

        def cost(k: int) -> float:
            main_iters, tail = divmod(k, k_per_iter)
            return main_iters * gc + tail * (tc / tail_k if tc and tail_k else gc / k_per_iter)
        return cost

    out = {}
    for arch in ARCHS:
        for board, core_name, ghz, cpu in BOARDS:
            inorder = cpu == "cortex-a53"
            core = "in-order" if inorder else "out-of-order"
            gemm = pick(arch, "gemm", core)
            dw = pick(arch, "dwconv", core)
            if gemm is None or dw is None:
                continue
            # the pointwise layers' packed-A GEMM and its pack loop, where the dispatch has them
            ppmm, pack = pick(arch, "ppmm", core, True), pick(arch, "pack", core, True)
            d_loops = {s: main_loop(dw, f"stride {s}") for s in (1, 2)}
            g_cost = gemm_cost(gemm, cpu)
            p_cost = gemm_cost(ppmm, cpu) if ppmm else None
            # the pack's 4-channel loop: its longest (the leftover channels' loop is shorter)
            pack_loop = max(pack["loops"], key=lambda r: r["instructions"]) if pack and pack["loops"] else None
            pack_cycles = pack_loop["cycles"][cpu] if pack_loop else None
            if ppmm and (p_cost is None or pack_cycles is None):
                continue
            if g_cost is None or any(d is None or d["cycles"][cpu] is None for d in d_loops.values()):
                continue
            mr, nr = gemm["tile"]
            layers, total = [], 0.0
            h = w = resolution
            for r in rows:
                cyc = 0.0
                if r.kind in ("pointwise", "conv3x3", "fc"):
                    pixels = r.output_shape[1] * r.output_shape[2] if len(r.output_shape) == 4 else 1
                    layer = next(L for L in net.layers if L.name == r.name)
                    taps = 9 if r.kind == "conv3x3" else 1
                    k, n = layer.cin, layer.cout
                    tiles = -(-pixels // mr) * -(-n // nr)
                    if ppmm and r.kind != "conv3x3":
                        # each row tile packed once (one thread: one column block), k / 4 turns
                        # of the pack loop (its 8 rows x 4 channels), then every panel over it
                        pk_rows, pk_k = pack["tile"]
                        cyc = (tiles * p_cost(k) +
                               -(-pixels // pk_rows) * -(-k // pk_k) * pack_cycles)
                    else:
                        cyc = tiles * taps * g_cost(k)
                elif r.kind == "depthwise3x3":
                    layer = next(L for L in net.layers if L.name == r.name)
                    d = d_loops[1 if layer.stride == 1 else 2]
                    work = (d["fmas"] + d["muls"]) * 4 / 9      # pixel-channels per iteration
                    pixels = r.output_shape[1] * r.output_shape[2]
                    c = r.output_shape[3]
                    cyc = pixels * -(-c // 4) * 4 / work * d["cycles"][cpu]
                ms = cyc / (ghz * 1e6)
                total += ms
                layers.append({"layer": r.name, "kind": r.kind, "macs": r.macs, "ms": ms})
            out[f"{arch} {board}"] = {"arch": arch, "board": board, "core": core_name, "ghz": ghz,
                                      "mca_model": cpu, "gemm": gemm["function"],
                                      "gemm_share": main_loop(gemm, "main")["fma_share"][cpu],
                                      "ppmm": ppmm["function"] if ppmm else None,
                                      "ppmm_share": main_loop(ppmm, "main")["fma_share"][cpu] if ppmm else None,
                                      "pack": pack["function"] if pack else None,
                                      "dwconv_share": {f"stride {s}": d["fma_share"][cpu]
                                                       for s, d in d_loops.items()},
                                      "dwconv": dw["function"], "layers": layers, "total_ms": total,
                                      "macs": sum(r.macs for r in rows)}
    return out


def fmt(x: Optional[float], spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def markdown(result: dict) -> str:
    lines = ["# Modelled Raspberry Pi speed (llvm-mca; a model that ignores memory stalls)", "",
             f"Generated by `make pi-model` ({result['generated']}), llvm-mca {result['llvm_mca']}, "
             f"compilers: {', '.join(result['compilers'])}.",
             "Share = FMAs per iteration x model cycles per FMA / cycles per iteration. LLVM 14 has "
             "no Cortex-A76 model: the Cortex-A72 (A57) model stands in for the Pi 5; its 32-bit "
             "ARM backend has no Cortex-A53 model, and its A57 model issues two 128-bit VFMAs a "
             "cycle where the AArch64 one issues one FMLA, so an armv7 share is against twice the "
             "aarch64 peak (0.50 there = one FMA a cycle).", "",
             "## Inner loops", "",
             "| arch | kernel (function) | loop | FMAs | a53 cycles | a53 share | a72 cycles | a72 share |",
             "|---|---|---|---|---|---|---|---|"]
    for e in result["kernels"]:
        for lp in e["loops"]:
            fn = e["function"] + ("" if lp["function"] == e["function"] else f" ({lp['function']}, {lp['what']})")
            lines.append(f"| {e['arch']} | {fn} | {lp['label']} | {lp['fmas']} | "
                         f"{fmt(lp['cycles']['cortex-a53'], '.1f')} | {fmt(lp['fma_share']['cortex-a53'])} | "
                         f"{fmt(lp['cycles']['cortex-a72'], '.1f')} | {fmt(lp['fma_share']['cortex-a72'])} |")
    lines += ["", f"## MobileNet v1 {result['network']} float, one core, modelled", "",
              "| arch | board | GEMM kernel | modelled ms | published (same board) |", "|---|---|---|---|---|"]
    for key, t in result["boards"].items():
        pub = "; ".join(f"{n} {ms:g} ms" for n, ms in PUBLISHED.get(t["board"], [])) or "–"
        lines.append(f"| {t['arch']} | {t['board']} ({t['core']} {t['ghz']} GHz, model {t['mca_model']}) | "
                     f"{t['gemm']}{' (3x3); ' + t['ppmm'] + ' on A packed by ' + t['pack'] + ' (pointwise)' if t.get('ppmm') else ''} | {t['total_ms']:.1f} | {pub} |")
    lines += ["", "Per layer (ms, aarch64):", ""]
    a64 = [t for t in result["boards"].values() if t["arch"] == "aarch64"]
    if a64:
        lines.append("| layer | kind | MMACs | " + " | ".join(t["board"] for t in a64) + " |")
        lines.append("|---|---|---|" + "---|" * len(a64))
        for i, L in enumerate(a64[0]["layers"]):
            lines.append(f"| {L['layer']} | {L['kind']} | {L['macs'] / 1e6:.1f} | " +
                         " | ".join(f"{t['layers'][i]['ms']:.2f}" for t in a64) + " |")
    if result.get("dw_schedules"):
        from benchmarks.pi_dw_schedules import markdown as dw_markdown
        lines += [""] + dw_markdown(result["dw_schedules"])
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--keep-asm", default=None, help="also write the compiled assembly here")
    ap.add_argument("--csrc", default=os.path.join(ROOT, "csrc"),
                    help="the C sources to model (another checkout's csrc/, for a before/after)")
    ap.add_argument("--no-dw-schedules", action="store_true",
                    help="leave out the generated multi-row depthwise schedules (about 20 s)")
    args = ap.parse_args(argv)
    if shutil.which("llvm-mca") is None:
        print("pi-model: llvm-mca not found (LLVM 14's llvm-mca is expected on PATH)", file=sys.stderr)
        return 2
    result = analyse(args.keep_asm, args.csrc)
    result["generated"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result["llvm_mca"] = llvm_mca_version()
    result["compilers"] = sorted({sh([cc, "-dumpfullversion"]).strip() and
                                  f"{cc} {sh([cc, '-dumpfullversion']).strip()}"
                                  for cc, _, _ in ARCHS.values()})
    result["network"] = "1.0_224"
    result["note"] = ("A model: llvm-mca cycles of the inner loops only, no memory stalls, no code "
                      "outside the inner loops, one core. The cortex-a72 model stands in for the "
                      "Pi 5's Cortex-A76 (LLVM 14 schedules -mcpu=cortex-a76 with the A57 model).")
    result["published"] = PUBLISHED
    result["boards"] = layer_times(result)
    if not args.no_dw_schedules:
        from benchmarks.pi_dw_schedules import survey
        result["dw_schedules"] = survey()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pi-model.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    md = markdown(result)
    with open(os.path.join(args.out, "pi-model.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
