// The state of a build as its BuildEvents arrive: one entry per Dockerfile step with its
// output, whether the cache served it and how long it took (measured here, from its Step to
// the next Step or the end), plus the outcome. Pure (the clock is passed in), so it is
// tested alone.

import type { BuildEvent } from "../../bindings/BuildEvent";
import { applyProgress, startProgress, type ProgressState } from "./progress";

export interface BuildStep {
  n: number;
  total: number;
  /** `RUN make`, as the engine echoed it. */
  text: string;
  /** Milliseconds (the caller's clock) when the step began and ended; ended null while it runs. */
  started: number;
  ended: number | null;
  cached: boolean;
  /** The step's output lines (command output, `Running in …`). */
  output: string[];
  /** The image the step made (short id), when it said. */
  id: string | null;
}

export interface BuildFailure {
  message: string;
  file: string | null;
  line: number | null;
  column: number | null;
  source_line: string | null;
  suggestion: string | null;
}

export interface BuildState {
  phase: "running" | "done" | "failed" | "cancelled";
  started: number;
  ended: number | null;
  context: { files: number; bytes: number } | null;
  steps: BuildStep[];
  /** Lines before the first step, and status lines (`Successfully tagged …`). */
  lines: string[];
  /** A base image's pull, while the build pulls one. */
  pull: ProgressState | null;
  /** Done: the image id (sha256:…) and its tags. */
  image: { id: string; tags: string[] } | null;
  failure: BuildFailure | null;
}

export function startBuild(now: number): BuildState {
  return { phase: "running", started: now, ended: null, context: null, steps: [], lines: [], pull: null, image: null, failure: null };
}

function closeLast(steps: BuildStep[], now: number): BuildStep[] {
  const last = steps[steps.length - 1];
  if (!last || last.ended !== null) return steps;
  return [...steps.slice(0, -1), { ...last, ended: now }];
}

function updateLast(s: BuildState, f: (st: BuildStep) => BuildStep): BuildState {
  const last = s.steps[s.steps.length - 1];
  if (!last) return s;
  return { ...s, steps: [...s.steps.slice(0, -1), f(last)] };
}

/** The state after event `e`, at `now` (ms). */
export function applyBuild(s: BuildState, e: BuildEvent, now: number): BuildState {
  if (s.phase !== "running") return s;
  switch (e.kind) {
    case "context":
      return { ...s, context: { files: e.files, bytes: e.bytes } };
    case "step":
      return {
        ...s,
        steps: [...closeLast(s.steps, now), { n: e.n, total: e.total, text: e.text, started: now, ended: null, cached: false, output: [], id: null }],
      };
    case "cached":
      return updateLast(s, (st) => ({ ...st, cached: true }));
    case "running":
      return updateLast(s, (st) => ({ ...st, output: [...st.output, `Running in ${e.container}`] }));
    case "output":
      if (s.steps.length === 0) return { ...s, lines: [...s.lines, e.text] };
      return updateLast(s, (st) => ({ ...st, output: [...st.output, e.text] }));
    case "step_done":
      return updateLast(s, (st) => ({ ...st, id: e.id }));
    case "pull":
      return { ...s, pull: applyProgress(s.pull ?? startProgress("base image"), e.event) };
    case "status":
      return { ...s, lines: [...s.lines, e.message] };
    case "done":
      return { ...s, phase: "done", ended: now, steps: closeLast(s.steps, now), image: { id: e.id, tags: e.tags } };
    case "failed": {
      const { message, file, line, column, source_line, suggestion } = e;
      return { ...s, phase: "failed", ended: now, steps: closeLast(s.steps, now), failure: { message, file, line, column, source_line, suggestion } };
    }
  }
}

/** The user stopped watching. */
export function cancelBuild(s: BuildState, now: number): BuildState {
  if (s.phase !== "running") return s;
  return { ...s, phase: "cancelled", ended: now, steps: closeLast(s.steps, now) };
}

/** A build that ended with a rejected promise (the engine unreachable, bad input). */
export function failBuild(s: BuildState, message: string, now: number): BuildState {
  return applyBuild(s, { kind: "failed", message, file: null, line: null, column: null, source_line: null, suggestion: null }, now);
}

/** A step's time: `0.4s`, `12.3s`, `2m 05s`; while it runs, up to `now`. */
export function stepElapsed(st: BuildStep, now: number): string {
  return formatElapsed((st.ended ?? now) - st.started);
}

export function formatElapsed(ms: number): string {
  const v = Math.max(0, ms);
  if (v < 60_000) return `${(v / 1000).toFixed(1)}s`;
  const m = Math.floor(v / 60_000);
  const s = Math.floor((v % 60_000) / 1000);
  return `${m}m ${String(s).padStart(2, "0")}s`;
}

/** The source line split around the problem column (1-based), for highlighting. */
export function splitAtColumn(line: string, column: number | null): { before: string; at: string; after: string } {
  if (column === null || column < 1 || column > line.length) return { before: line, at: "", after: "" };
  const i = column - 1;
  // The word the column points at (up to the next space), so `WORK` is marked, not just `W`.
  let j = i;
  while (j < line.length && line[j] !== " " && line[j] !== "\t") j++;
  if (j === i) j = i + 1;
  return { before: line.slice(0, i), at: line.slice(i, j), after: line.slice(j) };
}
