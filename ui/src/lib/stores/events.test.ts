import { afterEach, describe, expect, it, vi } from "vitest";
import { setBackend, type Backend } from "../backend";
import type { EngineEvent } from "../bindings/EngineEvent";
import type { EngineStatus } from "../bindings/EngineStatus";
import { get } from "svelte/store";
import { containers } from "./containers";
import { images } from "./images";
import { networks } from "./networks";
import { volumes } from "./volumes";
import { onEngineEvent, startEvents } from "./events";
import { engine, resetEngine, startEngine, watchEngine } from "./engine";

afterEach(() => {
  setBackend(null);
  vi.restoreAllMocks();
  resetEngine();
});

describe("events", () => {
  it("subscribes once and hands every event to every store and listener", async () => {
    let push: ((e: EngineEvent) => void) | null = null;
    const close = vi.fn(async () => {});
    const watchEvents = vi.fn(async (on: (e: EngineEvent) => void) => {
      push = on;
      return { close };
    });
    setBackend({ watchEvents } as unknown as Backend);
    const spies = [containers, images, volumes, networks].map((s) => vi.spyOn(s, "onEvent").mockImplementation(() => {}));
    const seen: string[] = [];
    const off = onEngineEvent((e) => seen.push(e.action));

    const [stop1, stop2] = await Promise.all([startEvents(), startEvents()]);
    expect(watchEvents).toHaveBeenCalledTimes(1);
    const e: EngineEvent = { kind: "container", action: "die", id: "abc", attributes: {}, time_ms: 1 };
    push!(e);
    for (const s of spies) expect(s).toHaveBeenCalledWith(e);
    expect(seen).toEqual(["die"]);
    off();
    stop1();
    stop2(); // the same subscription: closed once
    await Promise.resolve();
    expect(close).toHaveBeenCalledTimes(1);
  });
});

describe("engine store", () => {
  const status = (state: EngineStatus["state"]): EngineStatus => ({
    state,
    host: "unix:///run/berth/berth.sock",
    version: state === "running" ? "0.1.0" : null,
    message: null,
    can_start: true,
    containers_running: 0,
  });

  it("follows watchEngine and calls back when the engine comes up", async () => {
    let push: ((s: EngineStatus) => void) | null = null;
    setBackend({
      watchEngine: async (on: (s: EngineStatus) => void) => {
        push = on;
        return { close: async () => {} };
      },
      engineStart: async () => status("running"),
    } as unknown as Backend);
    const up = vi.fn();
    const stop = await watchEngine(up);
    expect(get(engine).status).toBeNull();
    push!(status("stopped"));
    expect(get(engine).status?.state).toBe("stopped");
    expect(up).not.toHaveBeenCalled();
    push!(status("starting"));
    push!(status("running"));
    expect(up).toHaveBeenCalledTimes(1);
    push!(status("running"));
    expect(up).toHaveBeenCalledTimes(1);
    push!(status("stopped"));
    await startEngine();
    expect(get(engine).status?.state).toBe("running");
    expect(get(engine).busy).toBe(false);
    expect(up).toHaveBeenCalledTimes(2);
    stop();
  });
});
