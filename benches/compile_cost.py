#!/usr/bin/env python3
"""Compile cost: `cargo check` of a crate with 200 #[step] methods in 20
#[workflow]s against the same code written by hand, and the cold build
time of workflow-macros.

Two checks of each crate. After touching the file (median of 5, after one
warm-up), incremental compilation reuses every query whose input did not
change, so what is left is mostly the macro's own expansion and the
re-reading of what it wrote. A full check (CARGO_INCREMENTAL=0, median of
3) type-checks everything, which is what an edit to a workflow costs.

The methods' bodies are one expression (`n + 1`), where the macro's share
is largest. The same re-check is made again with bodies of some sixty
tokens (a loop, a branch, an array and a closure), closer to the methods
a workflow has, in both crates."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS, STEPS = 20, 10

# A body as a step's method might have, for the second re-check.
BODY = (
    "let mut acc = n; for i in 0..3 {{ if i % 2 == 0 {{ acc += i; }} "
    "else {{ acc = acc.wrapping_mul(2); }} }} let v = [acc, n, 1]; "
    "v.iter().copied().fold(0, |a, b| a + b) + {s}"
)


def source(mode: str, bodies: bool = False) -> str:
    out = ["use workflow_runtime::prelude::*;", ""]
    if mode == "hand":
        out.insert(1, "use workflow_runtime::StepMeta;")
    for w in range(WORKFLOWS):
        out.append(f"pub struct W{w};")
        if mode == "macro":
            out.append("#[workflow]")
        out.append(f"impl W{w} {{")
        for s in range(STEPS):
            kind = "given" if s == 0 else "when"
            if mode == "macro":
                out.append(f'    #[step({kind} = "step {s}")]')
            asyncness = "async " if s % 2 else ""
            body = BODY.format(s=s) if bodies else f"n + {s}"
            out.append(f"    pub {asyncness}fn s{s}(&self, n: u64) -> u64 {{ {body} }}")
        out.append("}")
        if mode == "hand":
            metas = ", ".join(
                f'StepMeta::new(StepKind::{"Given" if s == 0 else "When"}, "step {s}", "s{s}")'
                f'.input("u64").output("u64").is_async({str(bool(s % 2)).lower()}).fallible(false)'
                for s in range(STEPS)
            )
            chain = 'Workflow::given(ctx, "step 0", move || self.s0(input))'
            for s in range(1, STEPS):
                verb = "when_async" if s % 2 else "when"
                chain += f'.{verb}("step {s}", move |v| self.s{s}(v))'
            out.append(
                f"""impl WorkflowDefinition for W{w} {{
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "W{w}";
    const STEPS: &'static [StepMeta] = &[{metas}];
    fn run<'a>(&'a self, ctx: &'a WorkflowContext, input: u64)
        -> impl Future<Output = Result<u64, WorkflowError>> + Send + 'a {{
        {chain}.result()
    }}
}}"""
            )
    return "\n".join(out) + "\n"


def make_crate(base: str, mode: str, bodies: bool = False) -> str:
    name = f"{mode}_bodies" if bodies else mode
    path = os.path.join(base, name)
    os.makedirs(os.path.join(path, "src"))
    with open(os.path.join(path, "Cargo.toml"), "w") as f:
        f.write(
            f"""[package]
name = "compile_cost_{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
workflow-runtime = {{ path = "{ROOT}/workflow-runtime" }}

[workspace]
"""
        )
    with open(os.path.join(path, "src", "lib.rs"), "w") as f:
        f.write(source(mode, bodies))
    return path


def timed(cmd, cwd, env):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def medians(crates, env, rounds):
    """The median time of `cargo check` of each crate, its file touched
    before each: (macro, hand)."""
    samples = {mode: [] for mode in crates}
    for _ in range(rounds):
        for mode, path in crates.items():
            os.utime(os.path.join(path, "src", "lib.rs"))
            samples[mode].append(timed(["cargo", "check", "-q"], path, env))
    return statistics.median(samples["macro"]), statistics.median(samples["hand"])


def main() -> None:
    base = tempfile.mkdtemp(prefix="workflow-compile-")
    try:
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(base, "target"))
        crates = {mode: make_crate(base, mode) for mode in ("macro", "hand")}
        for path in crates.values():  # dependencies, once
            timed(["cargo", "check", "-q"], path, env)
        macro_s, hand_s = medians(crates, env, 5)

        with_bodies = {mode: make_crate(base, mode, bodies=True) for mode in ("macro", "hand")}
        for path in with_bodies.values():
            timed(["cargo", "check", "-q"], path, env)
        macro_b, hand_b = medians(with_bodies, env, 5)

        macro_full, hand_full = medians(crates, dict(env, CARGO_INCREMENTAL="0"), 3)

        cold_env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(base, "cold"))
        cold = timed(["cargo", "build", "-q", "-p", "workflow-macros"], ROOT, cold_env)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    steps = WORKFLOWS * STEPS
    print(f"compile cost, {steps} #[step] methods in {WORKFLOWS} #[workflow]s")
    print("  `cargo check` after touching the file (incremental, median of 5)")
    print(f"  {'hand-written definitions':<44} {hand_s:>10.2f} s")
    print(f"  {'#[workflow] / #[step]':<44} {macro_s:>10.2f} s   ratio {macro_s / hand_s:.2f}")
    print("  the same, the methods' bodies some sixty tokens each")
    print(f"  {'hand-written definitions':<44} {hand_b:>10.2f} s")
    print(f"  {'#[workflow] / #[step]':<44} {macro_b:>10.2f} s   ratio {macro_b / hand_b:.2f}")
    print("  full `cargo check` (CARGO_INCREMENTAL=0, median of 3)")
    print(f"  {'hand-written definitions':<44} {hand_full:>10.2f} s")
    print(f"  {'#[workflow] / #[step]':<44} {macro_full:>10.2f} s   ratio {macro_full / hand_full:.2f}")
    print(f"  {'cold build of workflow-macros (with syn)':<44} {cold:>10.2f} s")


if __name__ == "__main__":
    sys.exit(main())
