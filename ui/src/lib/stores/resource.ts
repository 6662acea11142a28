// One store per resource kind, loaded once and refreshed when the engine's /events stream
// reports a change to that kind (debounced: a burst of events is one reload). No polling.

import { writable, type Readable } from "svelte/store";
import type { EngineEvent } from "../bindings/EngineEvent";
import { errorMessage } from "../backend";

export interface ResourceState<T> {
  items: T[];
  loading: boolean;
  /** The last load's error, shown in place of the list. */
  error: string | null;
  /** Whether a load has finished at least once. */
  loaded: boolean;
}

export interface ResourceStore<T> extends Readable<ResourceState<T>> {
  /** Loads now (a call made while a load runs schedules one more load after it). */
  refresh(): Promise<void>;
  /** Loads if nothing was loaded yet; joins a load that is running (no second load). */
  ensure(): Promise<void>;
  /** Feed every engine event here; reloads when one concerns `kinds`. */
  onEvent(e: EngineEvent): void;
  /** Takes a list loaded elsewhere (the app's start-up prefetch) as this store's first load;
   * false (and nothing changes) when a load already ran or runs. */
  seed(items: T[]): boolean;
}

export function resourceStore<T>(
  load: () => Promise<T[]>,
  kinds: string[],
  debounceMs = 80,
): ResourceStore<T> {
  const state = writable<ResourceState<T>>({ items: [], loading: false, error: null, loaded: false });
  let running: Promise<void> | null = null;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | null = null;

  async function refresh(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    state.update((s) => ({ ...s, loading: true }));
    running = (async () => {
      do {
        again = false;
        try {
          const items = await load();
          state.set({ items, loading: false, error: null, loaded: true });
        } catch (e) {
          state.update((s) => ({ ...s, loading: false, error: errorMessage(e), loaded: true }));
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  }

  function ensure(): Promise<void> {
    if (running) return running;
    let loaded = false;
    state.subscribe((s) => (loaded = s.loaded))();
    return loaded ? Promise.resolve() : refresh();
  }

  function onEvent(e: EngineEvent): void {
    // "engine" events (connected/disconnected) concern every store.
    if (e.kind !== "engine" && !kinds.includes(e.kind)) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void refresh();
    }, debounceMs);
  }

  function seed(items: T[]): boolean {
    if (running) return false;
    let loaded = false;
    state.subscribe((s) => (loaded = s.loaded))();
    if (loaded) return false;
    state.set({ items, loading: false, error: null, loaded: true });
    return true;
  }

  return { subscribe: state.subscribe, refresh, ensure, onEvent, seed };
}
