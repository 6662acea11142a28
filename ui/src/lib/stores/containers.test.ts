import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { get } from "svelte/store";
import { setBackend, type Backend } from "../backend";
import type { ContainerRow } from "../bindings/ContainerRow";
import type { EngineEvent } from "../bindings/EngineEvent";
import { buildItems, containers, matches, runningIds } from "./containers";

function row(name: string, state: string, extra: Partial<ContainerRow> = {}): ContainerRow {
  return {
    id: `${name}-id`.padEnd(64, "0"),
    name,
    image: "nginx:1.27",
    image_id: "sha256:aa",
    command: "",
    created: 1,
    state,
    status: "",
    ports: [],
    project: null,
    service: null,
    labels: {},
    networks: ["bridge"],
    ...extra,
  };
}

const ev = (kind: string, action = "start"): EngineEvent => ({ kind, action, id: "x", attributes: {}, time_ms: 0 });

describe("containers store", () => {
  let list: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    vi.useFakeTimers();
    list = vi.fn(async () => [row("web", "running")]);
    setBackend({ containersList: list } as unknown as Backend);
  });
  afterEach(() => {
    vi.useRealTimers();
    setBackend(null);
  });

  it("loads on refresh and exposes the rows", async () => {
    await containers.refresh();
    const s = get(containers);
    expect(s.loaded).toBe(true);
    expect(s.error).toBeNull();
    expect(s.items.map((r) => r.name)).toEqual(["web"]);
  });

  it("reloads once for a burst of container events, not for other kinds", async () => {
    await containers.refresh();
    list.mockClear();
    containers.onEvent(ev("image", "pull"));
    containers.onEvent(ev("volume", "create"));
    await vi.advanceTimersByTimeAsync(500);
    expect(list).not.toHaveBeenCalled();

    list.mockResolvedValue([row("web", "exited"), row("db", "running")]);
    for (const a of ["die", "stop", "start", "create"]) containers.onEvent(ev("container", a));
    await vi.advanceTimersByTimeAsync(40);
    expect(list).not.toHaveBeenCalled(); // still debouncing
    await vi.advanceTimersByTimeAsync(200);
    expect(list).toHaveBeenCalledTimes(1);
    expect(get(containers).items.map((r) => `${r.name}:${r.state}`)).toEqual(["web:exited", "db:running"]);
  });

  it("reloads when the engine reconnects and keeps the error of a failed load", async () => {
    list.mockRejectedValueOnce({ code: "engine_unreachable", message: "Cannot connect to the engine" });
    await containers.refresh();
    expect(get(containers).error).toBe("Cannot connect to the engine");
    containers.onEvent(ev("engine", "connected"));
    await vi.advanceTimersByTimeAsync(200);
    expect(get(containers).error).toBeNull();
    expect(get(containers).items).toHaveLength(1);
  });
  // a fresh store module each: the prefetch concerns the first load only
  async function freshStore() {
    vi.resetModules();
    const backendMod = await import("../backend");
    backendMod.setBackend({ containersList: list } as unknown as Backend);
    return import("./containers");
  }

  it("takes the app's prefetched list once, synchronously, and reloads on a container event", async () => {
    const m = await freshStore();
    window.__BERTH_FIRST_LIST__ = [row("early", "created")];
    void m.loadFirst();
    // synchronously: the first frame already has the rows
    expect(get(m.containers).loaded).toBe(true);
    expect(get(m.containers).items.map((r) => r.name)).toEqual(["early"]);
    expect(list).not.toHaveBeenCalled();
    expect(window.__BERTH_FIRST_LIST__).toBeUndefined();

    // the app found the list changed since (src-tauri/src/prefetch.rs)
    m.containers.onEvent(ev("container", "resync"));
    await vi.advanceTimersByTimeAsync(200);
    expect(list).toHaveBeenCalledTimes(1);
    expect(get(m.containers).items.map((r) => r.name)).toEqual(["web"]);
  });

  it("loads from the engine without a prefetched list, and ignores one on a reload", async () => {
    let m = await freshStore();
    await m.loadFirst();
    expect(list).toHaveBeenCalledTimes(1);

    m = await freshStore();
    const nav = vi.spyOn(performance, "getEntriesByType").mockReturnValue([{ type: "reload" } as unknown as PerformanceEntry]);
    window.__BERTH_FIRST_LIST__ = [row("stale", "running")];
    await m.loadFirst();
    nav.mockRestore();
    expect(list).toHaveBeenCalledTimes(2);
    expect(get(m.containers).items.map((r) => r.name)).toEqual(["web"]);
    expect(window.__BERTH_FIRST_LIST__).toBeUndefined();
  });
});

describe("list helpers", () => {
  const rows = [
    row("shop-web-1", "running", { project: "shop", service: "web", ports: [{ host_ip: "0.0.0.0", host_port: 8080, container_port: 80, protocol: "tcp" }] }),
    row("shop-db-1", "exited", { project: "shop", service: "db", image: "postgres:16" }),
    row("alpha-api-1", "paused", { project: "alpha", service: "api" }),
    row("loose", "running", { image: "redis:7" }),
    row("old", "created"),
  ];

  it("matches by name, image, project, port and state", () => {
    const names = (q: string, f: "all" | "running" | "stopped" = "all") => rows.filter((r) => matches(r, q, f)).map((r) => r.name);
    expect(names("")).toHaveLength(5);
    expect(names("WEB")).toEqual(["shop-web-1"]);
    expect(names("postgres")).toEqual(["shop-db-1"]);
    expect(names("shop")).toEqual(["shop-web-1", "shop-db-1"]);
    expect(names("8080")).toEqual(["shop-web-1"]);
    expect(names("", "running")).toEqual(["shop-web-1", "alpha-api-1", "loose"]);
    expect(names("", "stopped")).toEqual(["shop-db-1", "old"]);
    expect(names("shop", "stopped")).toEqual(["shop-db-1"]);
  });

  it("groups compose projects first, sorted, and collapses them", () => {
    const items = buildItems(rows, new Set());
    expect(items.map((i) => (i.kind === "group" ? `[${i.project} ${i.running}/${i.count}]` : i.row.name))).toEqual([
      "[alpha 0/1]",
      "alpha-api-1",
      "[shop 1/2]",
      "shop-db-1",
      "shop-web-1",
      "loose",
      "old",
    ]);
    const collapsed = buildItems(rows, new Set(["shop"]));
    expect(collapsed.map((i) => (i.kind === "group" ? `[${i.project}]` : i.row.name))).toEqual(["[alpha]", "alpha-api-1", "[shop]", "loose", "old"]);
    const shop = collapsed.find((i) => i.kind === "group" && i.project === "shop");
    expect(shop && shop.kind === "group" && shop.collapsed).toBe(true);
  });

  it("runningIds is sorted and only running", () => {
    expect(runningIds(rows)).toEqual([rows[3].id, rows[0].id].sort());
  });
});
