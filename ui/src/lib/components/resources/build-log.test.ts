import { describe, expect, it } from "vitest";
import type { BuildEvent } from "../../bindings/BuildEvent";
import { applyBuild, cancelBuild, failBuild, formatElapsed, splitAtColumn, startBuild, stepElapsed } from "./build-log";

/** Applies events at the given times (ms). */
function run(evs: [number, BuildEvent][]) {
  return evs.reduce((s, [t, e]) => applyBuild(s, e, t), startBuild(0));
}

describe("applyBuild", () => {
  it("makes one row per step, timed from its Step to the next, with output and cache hits", () => {
    const s = run([
      [10, { kind: "context", files: 2, bytes: 3072 }],
      [20, { kind: "step", n: 1, total: 3, text: "FROM busybox" }],
      [30, { kind: "step_done", id: "1a2b3c4d5e6f" }],
      [50, { kind: "step", n: 2, total: 3, text: "COPY hello.txt /" }],
      [55, { kind: "cached" }],
      [56, { kind: "step_done", id: "aaaabbbbcccc" }],
      [60, { kind: "step", n: 3, total: 3, text: "RUN cat /hello.txt" }],
      [70, { kind: "running", container: "0123456789ab" }],
      [900, { kind: "output", text: "hello" }],
      [1500, { kind: "step_done", id: "ddddeeeeffff" }],
      [1510, { kind: "status", message: "Successfully built ddddeeeeffff" }],
      [1520, { kind: "done", id: "sha256:dddd", tags: ["hello:1"] }],
    ]);
    expect(s.phase).toBe("done");
    expect(s.context).toEqual({ files: 2, bytes: 3072 });
    expect(s.steps.map((st) => [st.n, st.started, st.ended, st.cached, st.id])).toEqual([
      [1, 20, 50, false, "1a2b3c4d5e6f"],
      [2, 50, 60, true, "aaaabbbbcccc"],
      [3, 60, 1520, false, "ddddeeeeffff"],
    ]);
    expect(s.steps[2].output).toEqual(["Running in 0123456789ab", "hello"]);
    expect(s.lines).toEqual(["Successfully built ddddeeeeffff"]);
    expect(s.image).toEqual({ id: "sha256:dddd", tags: ["hello:1"] });
    expect(stepElapsed(s.steps[2], 99_999)).toBe("1.5s");
    // Events after the end change nothing.
    expect(applyBuild(s, { kind: "output", text: "late" }, 2000)).toBe(s);
  });

  it("times a running step up to now, and output before any step goes to the top lines", () => {
    const s = run([
      [0, { kind: "output", text: "preamble" }],
      [100, { kind: "step", n: 1, total: 1, text: "FROM scratch" }],
    ]);
    expect(s.lines).toEqual(["preamble"]);
    expect(s.steps[0].ended).toBeNull();
    expect(stepElapsed(s.steps[0], 2600)).toBe("2.5s");
  });

  it("keeps a Dockerfile error's place, and ends the running step", () => {
    const s = run([
      [0, { kind: "step", n: 1, total: 2, text: "FROM busybox" }],
      [40, { kind: "failed", message: 'unknown instruction "WORK"', file: "Dockerfile", line: 2, column: 1, source_line: "WORK /app", suggestion: "WORKDIR" }],
    ]);
    expect(s.phase).toBe("failed");
    expect(s.steps[0].ended).toBe(40);
    expect(s.failure).toEqual({ message: 'unknown instruction "WORK"', file: "Dockerfile", line: 2, column: 1, source_line: "WORK /app", suggestion: "WORKDIR" });
  });

  it("records pulls of the base image, cancellation and rejected builds", () => {
    let s = run([[0, { kind: "pull", event: { kind: "layer", id: "l1", status: "Downloading", current: 1, total: 2 } }]]);
    expect(s.pull?.layers.map((l) => l.id)).toEqual(["l1"]);
    s = applyBuild(s, { kind: "step", n: 1, total: 2, text: "FROM x" }, 5);
    const c = cancelBuild(s, 9);
    expect(c.phase).toBe("cancelled");
    expect(c.steps[0].ended).toBe(9);
    const f = failBuild(startBuild(0), "The Berth engine is not running", 3);
    expect(f.phase).toBe("failed");
    expect(f.failure?.message).toBe("The Berth engine is not running");
    expect(f.failure?.line).toBeNull();
  });
});

describe("helpers", () => {
  it("formats elapsed times", () => {
    expect(formatElapsed(0)).toBe("0.0s");
    expect(formatElapsed(12_345)).toBe("12.3s");
    expect(formatElapsed(125_000)).toBe("2m 05s");
    expect(formatElapsed(-5)).toBe("0.0s");
  });

  it("splits the source line around the problem column, marking the word", () => {
    expect(splitAtColumn("WORK /app", 1)).toEqual({ before: "", at: "WORK", after: " /app" });
    expect(splitAtColumn("COPY --frm=a b c", 6)).toEqual({ before: "COPY ", at: "--frm=a", after: " b c" });
    expect(splitAtColumn("RUN  x", 4)).toEqual({ before: "RUN", at: " ", after: " x" });
    expect(splitAtColumn("FROM", null)).toEqual({ before: "FROM", at: "", after: "" });
    expect(splitAtColumn("FROM", 9)).toEqual({ before: "FROM", at: "", after: "" });
  });
});
