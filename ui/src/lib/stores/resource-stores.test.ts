import { afterEach, describe, expect, it, vi } from "vitest";
import { get } from "svelte/store";
import { setBackend, type Backend } from "../backend";
import type { EngineEvent } from "../bindings/EngineEvent";
import { mockResources } from "../mock-resources";
import { images } from "./images";
import { networks } from "./networks";
import { volumes } from "./volumes";

const ev = (kind: string, action = "x"): EngineEvent => ({ kind, action, id: "i", attributes: {}, time_ms: 0 });

function install() {
  const m = mockResources(() => {}, { speed: 0 });
  const spies = {
    imagesList: vi.fn(m.imagesList),
    volumesList: vi.fn(m.volumesList),
    networksList: vi.fn(m.networksList),
  };
  setBackend({ ...m, ...spies } as unknown as Backend);
  return { m, spies };
}

afterEach(() => {
  setBackend(null);
  vi.useRealTimers();
});

describe("resource stores", () => {
  it("load through the backend", async () => {
    install();
    await Promise.all([images.refresh(), volumes.refresh(), networks.refresh()]);
    expect(get(images)).toMatchObject({ loaded: true, error: null });
    expect(get(images).items.some((r) => r.repository === "busybox")).toBe(true);
    expect(get(volumes).items.map((v) => v.name)).toContain("shop_pgdata");
    expect(get(networks).items.map((n) => n.name)).toContain("bridge");
  });

  it("reload on their own kinds (and container events), not on others", async () => {
    vi.useFakeTimers();
    const { spies } = install();
    images.onEvent(ev("volume"));
    volumes.onEvent(ev("image"));
    networks.onEvent(ev("volume"));
    await vi.advanceTimersByTimeAsync(200);
    expect(spies.imagesList).not.toHaveBeenCalled();
    expect(spies.volumesList).not.toHaveBeenCalled();
    expect(spies.networksList).not.toHaveBeenCalled();

    images.onEvent(ev("image", "pull"));
    images.onEvent(ev("container", "destroy"));
    volumes.onEvent(ev("volume", "create"));
    volumes.onEvent(ev("container", "destroy"));
    networks.onEvent(ev("network", "connect"));
    networks.onEvent(ev("container", "start"));
    await vi.advanceTimersByTimeAsync(200);
    // a burst is one reload
    expect(spies.imagesList).toHaveBeenCalledTimes(1);
    expect(spies.volumesList).toHaveBeenCalledTimes(1);
    expect(spies.networksList).toHaveBeenCalledTimes(1);
  });

  it("keep the engine's message when a load fails", async () => {
    setBackend({ imagesList: () => Promise.reject({ code: "engine_unreachable", message: "cannot reach berthd" }) } as unknown as Backend);
    await images.refresh();
    expect(get(images)).toMatchObject({ loaded: true, error: "cannot reach berthd" });
  });
});
