// Test helpers for the resource pages: the resource mock installed as the backend (with
// spies on every method), and answering the app's confirmation dialog.
import { vi, type Mock } from "vitest";
import { setBackend, type Backend } from "../lib/backend";
import type { EngineEvent } from "../lib/bindings/EngineEvent";
import { mockResources, type MockResourceOptions } from "../lib/mock-resources";
import { confirmation, type ConfirmRequest } from "../lib/ui";

export type Spied = { [K in keyof ReturnType<typeof mockResources>]: Mock<ReturnType<typeof mockResources>[K]> } & {
  containersList: Mock<Backend["containersList"]>;
};

export function installMock(opts: MockResourceOptions = { speed: 0 }): { b: Spied; events: EngineEvent[] } {
  const events: EngineEvent[] = [];
  const m = mockResources((e) => events.push(e), opts);
  const spied: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(m)) spied[k] = vi.fn(f as (...a: unknown[]) => unknown);
  spied.containersList = vi.fn(async () => [
    { id: "c".repeat(64), name: "scratchpad", image: "alpine:3.20", image_id: "", command: "sh", created: 0, state: "created", status: "Created", ports: [], project: null, service: null, labels: {}, networks: ["bridge"] },
  ]);
  setBackend(spied as unknown as Backend);
  return { b: spied as unknown as Spied, events };
}

/** Answers the next confirmation with `ok`; resolves with the request that was shown. */
export function answerConfirm(ok: boolean): Promise<ConfirmRequest> {
  return new Promise((resolve) => {
    const unsub = confirmation.subscribe((req) => {
      if (!req) return;
      queueMicrotask(() => {
        unsub();
        req.resolve(ok);
        resolve(req);
      });
    });
  });
}
