// The state of a pull or push as its ProgressEvents arrive: one entry per layer (in the
// order they first appeared) plus the overall status lines. Pure, so it is tested alone.

import type { ProgressEvent } from "../../bindings/ProgressEvent";

export interface LayerState {
  id: string;
  status: string;
  current: number | null;
  total: number | null;
}

export interface ProgressState {
  reference: string;
  layers: LayerState[];
  /** Overall status lines ("Pulling from library/x", "Digest: …", "Status: …"). */
  lines: string[];
  phase: "running" | "done" | "error";
  /** The done message or the error message. */
  message: string;
}

export function startProgress(reference: string): ProgressState {
  return { reference, layers: [], lines: [], phase: "running", message: "" };
}

const FINISHED = /^(pull complete|already exists|download complete|pushed|layer already exists|mounted from)/i;

/** Whether a layer's status means it has all its bytes. */
export function layerFinished(l: LayerState): boolean {
  return FINISHED.test(l.status) || l.status.toLowerCase().startsWith("extracting");
}

/** 0..1 for a layer, or null when the bytes are unknown (waiting, preparing). */
export function layerFraction(l: LayerState): number | null {
  if (/^(pull complete|already exists|pushed|layer already exists|mounted from)/i.test(l.status)) return 1;
  if (l.current === null || l.total === null || l.total <= 0) return null;
  return Math.max(0, Math.min(1, l.current / l.total));
}

/** Returns the next state (a new object; the input is not changed). */
export function applyProgress(s: ProgressState, e: ProgressEvent): ProgressState {
  switch (e.kind) {
    case "status":
      return s.lines[s.lines.length - 1] === e.message ? s : { ...s, lines: [...s.lines, e.message] };
    case "layer": {
      const i = s.layers.findIndex((l) => l.id === e.id);
      const prev = i >= 0 ? s.layers[i] : null;
      // The engine sends null bytes with status-only updates ("Verifying Checksum"): keep
      // the last known counts so the bar does not jump back.
      const next: LayerState = {
        id: e.id,
        status: e.status,
        current: e.current ?? prev?.current ?? null,
        total: e.total ?? prev?.total ?? null,
      };
      const layers = i >= 0 ? s.layers.map((l, j) => (j === i ? next : l)) : [...s.layers, next];
      return { ...s, layers };
    }
    case "done":
      return { ...s, phase: "done", message: e.message };
    case "error":
      return { ...s, phase: "error", message: e.message };
  }
}

/** Bytes so far and in all, over the layers whose size is known. */
export function progressTotals(s: ProgressState): { current: number; total: number } {
  let current = 0;
  let total = 0;
  for (const l of s.layers) {
    if (l.total === null) continue;
    total += l.total;
    const f = layerFraction(l);
    current += f === null ? (l.current ?? 0) : f * l.total;
  }
  return { current, total };
}

/** Whether an error from a push or pull means the registry wants credentials. */
export function isAuthError(message: string): boolean {
  return /unauthori[sz]ed|authentication required|denied|no basic auth credentials|incorrect username or password|401/i.test(message);
}
