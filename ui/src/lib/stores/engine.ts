// The engine's status as one readable store, from backend.watchEngine (pushed on every change,
// also when the tray starts or stops it). When the engine becomes running, every resource
// store reloads.

import { writable, type Readable } from "svelte/store";
import { backend, errorMessage, type Subscription } from "../backend";
import type { EngineStatus } from "../bindings/EngineStatus";

export interface EngineView {
  /** null until the first status arrived. */
  status: EngineStatus | null;
  /** A start/stop the user asked for is in flight. */
  busy: boolean;
  /** Why the last start/stop (or the watch itself) failed. */
  error: string | null;
}

const state = writable<EngineView>({ status: null, busy: false, error: null });
export const engine: Readable<EngineView> = { subscribe: state.subscribe };

let sub: Subscription | null = null;
let lastState: string | null = null;
let onRunning: (() => void) | null = null;

function apply(s: EngineStatus): void {
  const was = lastState;
  lastState = s.state;
  state.update((v) => ({ ...v, status: s }));
  if (s.state === "running" && was !== null && was !== "running") onRunning?.();
}

/** Starts watching; `whenRunning` runs each time the engine goes to running (after the first status). */
export async function watchEngine(whenRunning: () => void): Promise<() => void> {
  onRunning = whenRunning;
  try {
    const b = await backend();
    sub = await b.watchEngine(apply);
  } catch (e) {
    state.update((v) => ({ ...v, error: errorMessage(e) }));
  }
  return () => {
    void sub?.close().catch(() => {});
    sub = null;
    onRunning = null;
    lastState = null;
  };
}

async function run(op: "engineStart" | "engineStop"): Promise<void> {
  state.update((v) => ({ ...v, busy: true, error: null }));
  try {
    const b = await backend();
    const s = await b[op]();
    apply(s);
  } catch (e) {
    state.update((v) => ({ ...v, error: errorMessage(e) }));
    throw e;
  } finally {
    state.update((v) => ({ ...v, busy: false }));
  }
}

export const startEngine = () => run("engineStart");
export const stopEngine = () => run("engineStop");

/** Tests: forget the watched state. */
export function resetEngine(): void {
  state.set({ status: null, busy: false, error: null });
  lastState = null;
}
