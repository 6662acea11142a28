import { describe, expect, it } from "vitest";
import { get } from "svelte/store";
import { resourceStore } from "./resource";

describe("resourceStore", () => {
  it("ensure() joins a running load and does not reload a loaded store; refresh() does", async () => {
    let loads = 0;
    let release: () => void = () => {};
    const s = resourceStore<number>(
      () =>
        new Promise<number[]>((resolve) => {
          loads++;
          release = () => resolve([loads]);
        }),
      ["container"],
    );
    const a = s.ensure();
    const b = s.ensure();
    release();
    await Promise.all([a, b]);
    expect(loads).toBe(1);
    expect(get(s).items).toEqual([1]);
    await s.ensure();
    expect(loads).toBe(1);
    const c = s.refresh();
    release();
    await c;
    expect(loads).toBe(2);
    // a refresh asked for during a load runs once more after it (an event arrived meanwhile)
    const d = s.refresh();
    const e = s.refresh();
    release();
    await new Promise((r) => setTimeout(r, 0));
    release();
    await Promise.all([d, e]);
    expect(loads).toBe(4);
  });
});
