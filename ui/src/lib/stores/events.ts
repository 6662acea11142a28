// The one engine-events subscription of the app: started at mount, every event goes to every
// store's onEvent (each store decides whether it cares and debounces its reload).

import { backend, type Subscription } from "../backend";
import type { EngineEvent } from "../bindings/EngineEvent";
import { containers } from "./containers";
import { images } from "./images";
import { networks } from "./networks";
import { volumes } from "./volumes";

export const stores = [containers, images, volumes, networks];

const listeners = new Set<(e: EngineEvent) => void>();

/** Pages that want the raw events too (e.g. a details panel reloading its container). */
export function onEngineEvent(f: (e: EngineEvent) => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function dispatch(e: EngineEvent): void {
  for (const s of stores) s.onEvent(e);
  for (const f of listeners) f(e);
}

let sub: Promise<Subscription> | null = null;

/** Subscribes once (a second call shares the first while it is open); returns the stop function. */
export async function startEvents(): Promise<() => void> {
  if (!sub) {
    const opening = (async () => (await backend()).watchEvents(dispatch))();
    sub = opening;
    opening.catch(() => {
      if (sub === opening) sub = null;
    });
  }
  const mine = sub;
  await mine;
  return () => {
    if (sub !== mine) return;
    sub = null;
    void mine.then((s) => s.close()).catch(() => {});
  };
}

/** The first load of every store (a store already loaded or loading is left alone). */
export async function loadAll(): Promise<void> {
  await containers.ensure();
  await Promise.all(stores.filter((s) => s !== containers).map((s) => s.ensure()));
}

/** Reloads every store: the containers first (the first screen, and the list the others'
 * loads would compete with), then the rest together. */
export async function refreshAll(): Promise<void> {
  await containers.refresh();
  await Promise.all(stores.filter((s) => s !== containers).map((s) => s.refresh()));
}
