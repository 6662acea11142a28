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

export function refreshAll(): Promise<void[]> {
  return Promise.all(stores.map((s) => s.refresh()));
}
