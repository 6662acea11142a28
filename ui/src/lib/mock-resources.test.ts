import { describe, expect, it } from "vitest";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { ProgressEvent } from "./bindings/ProgressEvent";
import { mockResources } from "./mock-resources";

function setup(opts: Parameters<typeof mockResources>[1] = { speed: 0 }) {
  const events: EngineEvent[] = [];
  const m = mockResources((e) => events.push(e), opts);
  return { m, events };
}

describe("mockResources: images", () => {
  it("lists realistic images, one row per tag, with a dangling one", async () => {
    const { m } = setup();
    const rows = await m.imagesList();
    const refs = rows.map((r) => `${r.repository}:${r.tag}`);
    expect(refs).toEqual(expect.arrayContaining(["busybox:latest", "python:3.12-slim", "postgres:16", "127.0.0.1:5000/app:dev", "<none>:<none>"]));
    for (const r of rows) expect(r.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(rows.find((r) => r.repository === "nginx")?.containers).toBe(2);
  });

  it("pulls with three layers reporting current/total, then done, and emits an image pull event", async () => {
    const { m, events } = setup();
    const seen: ProgressEvent[] = [];
    await m.imagePull("alpine:3.21", (e) => seen.push(e));
    const layers = seen.filter((e): e is Extract<ProgressEvent, { kind: "layer" }> => e.kind === "layer");
    const ids = [...new Set(layers.map((l) => l.id))];
    expect(ids).toHaveLength(3);
    for (const id of ids) {
      const sized = layers.filter((l) => l.id === id && l.current !== null && l.total !== null);
      expect(sized.length).toBeGreaterThan(2);
      // the bytes only grow, and reach the total
      const cur = sized.map((l) => l.current!);
      expect([...cur].sort((a, b) => a - b)).toEqual(cur);
      expect(cur[cur.length - 1]).toBe(sized[0].total);
      expect(layers.filter((l) => l.id === id).pop()?.status).toBe("Pull complete");
    }
    expect(seen[seen.length - 1]).toMatchObject({ kind: "done" });
    expect(events).toContainEqual(expect.objectContaining({ kind: "image", action: "pull", id: "alpine:3.21" }));
    expect((await m.imagesList()).some((r) => r.repository === "alpine" && r.tag === "3.21")).toBe(true);
    // and the pull is recorded with the endpoint of each blob: the first answering docker.io mirror
    const rec = (await m.pullRecords())[0];
    expect(rec.reference).toBe("alpine:3.21");
    expect(rec.blobs).toHaveLength(4);
    expect(rec.blobs[0].endpoint).toBe("http://127.0.0.1:5001");
  });

  it("takes about two seconds at normal speed", async () => {
    const { m } = setup({ speed: 1 });
    const t = Date.now();
    await m.imagePull("busybox", () => {});
    const took = Date.now() - t;
    expect(took).toBeGreaterThan(1500);
    expect(took).toBeLessThan(3500);
  });

  it("rejects a missing repository with not_found after an error event", async () => {
    const { m, events } = setup();
    const seen: ProgressEvent[] = [];
    await expect(m.imagePull("nosuch", (e) => seen.push(e))).rejects.toMatchObject({ code: "not_found", message: expect.stringContaining("nosuch") });
    expect(seen[seen.length - 1]).toMatchObject({ kind: "error" });
    expect(events).toHaveLength(0);
    await expect(m.imagePull("Bad Ref", () => {})).rejects.toMatchObject({ code: "invalid_input" });
  });

  it("pushes only after a login, and untags/removes/prunes", async () => {
    const { m, events } = setup();
    await expect(m.imagePush("127.0.0.1:5000/app:dev", () => {})).rejects.toMatchObject({ message: expect.stringMatching(/unauthorized/) });
    await expect(m.registryLogin({ server: "127.0.0.1:5000", username: "u", password: "wrong" })).rejects.toMatchObject({ code: "engine" });
    expect(await m.registryLogin({ server: "127.0.0.1:5000", username: "u", password: "p" })).toBe("Login Succeeded");
    const seen: ProgressEvent[] = [];
    await m.imagePush("127.0.0.1:5000/app:dev", (e) => seen.push(e));
    expect(seen.some((e) => e.kind === "layer" && e.status === "Pushed")).toBe(true);
    expect(seen[seen.length - 1].kind).toBe("done");

    await m.imageTag("busybox", "busybox:mine");
    let rows = await m.imagesList();
    const bb = rows.filter((r) => r.repository === "busybox");
    expect(bb.map((r) => r.tag).sort()).toEqual(["latest", "mine"]);
    expect(new Set(bb.map((r) => r.id)).size).toBe(1);
    await m.imageRemove("busybox:mine", false); // untag only
    rows = await m.imagesList();
    expect(rows.filter((r) => r.repository === "busybox").map((r) => r.tag)).toEqual(["latest"]);

    // in use: refused without force
    await expect(m.imageRemove("nginx:1.27-alpine", false)).rejects.toMatchObject({ code: "conflict" });
    await m.imageRemove("nginx:1.27-alpine", true);
    expect((await m.imagesList()).some((r) => r.repository === "nginx")).toBe(false);
    expect(events.some((e) => e.kind === "image" && e.action === "delete")).toBe(true);

    const dangling = await m.imagesPrune(false);
    expect(dangling.deleted.filter((d) => d.startsWith("deleted"))).toHaveLength(1);
    const all = await m.imagesPrune(true);
    expect(all.space_reclaimed).toBeGreaterThan(0);
    expect((await m.imagesList()).every((r) => r.containers > 0)).toBe(true);
  });

  it("follows the mock's containers for in-use counts when given", async () => {
    let list = [{ id: "c1", name: "one", image: "busybox" }];
    const { m } = setup({ speed: 0, containers: () => list });
    expect((await m.imagesList()).find((r) => r.repository === "busybox")?.containers).toBe(1);
    list = [];
    expect((await m.imagesList()).find((r) => r.repository === "busybox")?.containers).toBe(0);
  });

  it("has history and inspect", async () => {
    const { m } = setup();
    const h = await m.imageHistory("python:3.12-slim");
    expect(h.length).toBeGreaterThan(3);
    expect(h[0].tags).toEqual(["python:3.12-slim"]);
    const j = JSON.parse(await m.imageInspect("python:3.12-slim"));
    expect(j.RepoTags).toEqual(["python:3.12-slim"]);
    await expect(m.imageHistory("nope")).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("mockResources: volumes and networks", () => {
  it("creates, refuses to remove in-use volumes, prunes", async () => {
    const { m, events } = setup();
    const v = await m.volumeCreate("data1");
    expect(v).toMatchObject({ name: "data1", driver: "local", used_by: [] });
    expect(events.pop()).toMatchObject({ kind: "volume", action: "create", id: "data1" });
    await expect(m.volumeCreate("bad name")).rejects.toMatchObject({ code: "invalid_input" });
    await expect(m.volumeRemove("shop_pgdata", false)).rejects.toMatchObject({ code: "conflict" });
    await m.volumeRemove("data1", false);
    expect((await m.volumesList()).some((x) => x.name === "data1")).toBe(false);
    const r = await m.volumesPrune();
    expect(r.deleted.length).toBeGreaterThan(0);
    expect((await m.volumesList()).every((x) => x.used_by.length > 0)).toBe(true);
  });

  it("creates networks with subnets, checks overlaps, connects and disconnects", async () => {
    const { m, events } = setup();
    const names = (await m.networksList()).map((n) => n.name);
    expect(names).toEqual(expect.arrayContaining(["bridge", "host", "none", "shop_default"]));
    const n = await m.networkCreate({ name: "lan", subnet: "10.50.0.0/24", gateway: "", internal: false });
    expect(n).toMatchObject({ subnet: "10.50.0.0/24", gateway: "10.50.0.1", builtin: false });
    await expect(m.networkCreate({ name: "lan2", subnet: "10.50.0.128/25", gateway: "", internal: false })).rejects.toMatchObject({ code: "conflict" });
    await expect(m.networkCreate({ name: "lan", subnet: "", gateway: "", internal: false })).rejects.toMatchObject({ code: "conflict" });
    const auto = await m.networkCreate({ name: "auto", subnet: "", gateway: "", internal: true });
    expect(auto.subnet).toBe("172.19.0.0/16");
    await m.networkConnect("lan", "scratchpad");
    let lan = (await m.networksList()).find((x) => x.name === "lan")!;
    expect(lan.containers).toEqual([expect.objectContaining({ name: "scratchpad", ipv4: "10.50.0.2" })]);
    await expect(m.networkRemove("lan")).rejects.toMatchObject({ code: "conflict" });
    await m.networkDisconnect("lan", "scratchpad");
    lan = (await m.networksList()).find((x) => x.name === "lan")!;
    expect(lan.containers).toEqual([]);
    await expect(m.networkRemove("bridge")).rejects.toMatchObject({ message: expect.stringMatching(/pre-defined/) });
    await m.networkRemove("lan");
    expect(events.filter((e) => e.kind === "network").map((e) => e.action)).toEqual(["create", "create", "connect", "disconnect", "destroy"]);
    const pr = await m.networksPrune();
    expect(pr.deleted).toEqual(expect.arrayContaining(["auto"]));
  });
});

describe("mockResources: registry settings", () => {
  it("saves valid settings and refuses invalid ones", async () => {
    const { m } = setup();
    const s = await m.registrySettings();
    expect(s.registries[0].registry).toBe("docker.io");
    s.registries[0].mirrors.reverse();
    const rep = await m.saveRegistrySettings(s);
    expect(rep).toMatchObject({ config_path: s.config_path, reloaded: true });
    expect(rep.message).toContain(s.config_path);
    expect((await m.registrySettings()).registries[0].mirrors.map((x) => x.url)).toEqual(s.registries[0].mirrors.map((x) => x.url));
    s.registries[0].mirrors.push({ url: "mirror.example", resolve_tags: true });
    await expect(m.saveRegistrySettings(s)).rejects.toMatchObject({ code: "invalid_input" });
  });

  it("probes endpoints", async () => {
    const { m } = setup();
    expect(await m.probeEndpoint("http://127.0.0.1:5001")).toMatchObject({ ok: true, status: 200, scheme: "http", tls: null, auth: "none" });
    expect(await m.probeEndpoint("https://mirror.gcr.io")).toMatchObject({ ok: true, status: 401, tls: "verified" });
    expect(await m.probeEndpoint("http://mirror-down.local")).toMatchObject({ ok: false, status: null });
    await expect(m.probeEndpoint("nope")).rejects.toMatchObject({ code: "invalid_input" });
  });

  it("records skipped mirrors in pulls", async () => {
    const { m } = setup();
    const s = await m.registrySettings();
    s.registries[0].mirrors.unshift({ url: "http://offline-mirror.local:5000", resolve_tags: true });
    await m.saveRegistrySettings(s);
    await m.imagePull("redis:7.4", () => {});
    const rec = (await m.pullRecords())[0];
    expect(rec.skipped).toEqual([{ endpoint: "http://offline-mirror.local:5000", reason: expect.stringContaining("refused") }]);
    expect(rec.blobs.every((b) => b.endpoint !== "http://offline-mirror.local:5000")).toBe(true);
  });
});
