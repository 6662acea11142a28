import { describe, expect, it } from "vitest";
import { buildSettings, insecureProblem, mirrorProblem, moveItem, newMirror, registryProblem, withDockerHubFirst } from "./registry-model";

describe("moveItem", () => {
  const l = ["a", "b", "c", "d"];
  it("moves before the target index", () => {
    expect(moveItem(l, 0, 2)).toEqual(["b", "a", "c", "d"]);
    expect(moveItem(l, 3, 0)).toEqual(["d", "a", "b", "c"]);
    expect(moveItem(l, 1, 4)).toEqual(["a", "c", "d", "b"]);
    expect(moveItem(l, 2, 1)).toEqual(["a", "c", "b", "d"]);
  });
  it("leaves the input alone and ignores bad indexes", () => {
    expect(moveItem(l, 5, 0)).toEqual(l);
    expect(moveItem(l, 0, 9)).toEqual(l);
    expect(l).toEqual(["a", "b", "c", "d"]);
  });
});

describe("registries", () => {
  it("puts docker.io first, adding it when missing", () => {
    expect(withDockerHubFirst([{ registry: "ghcr.io", mirrors: [] }]).map((r) => r.registry)).toEqual(["docker.io", "ghcr.io"]);
    expect(
      withDockerHubFirst([
        { registry: "ghcr.io", mirrors: [] },
        { registry: "docker.io", mirrors: [newMirror("docker.io", "https://m")] },
      ])[0].mirrors,
    ).toEqual([{ url: "https://m", resolve_tags: true }]);
    expect(newMirror("ghcr.io", "https://m").resolve_tags).toBe(true);
  });

  it("rejects duplicates and invalid entries", () => {
    expect(mirrorProblem("https://m.example/", [{ url: "https://m.example", resolve_tags: true }])).toMatch(/already listed/);
    expect(mirrorProblem("m.example", [])).toMatch(/http/);
    expect(registryProblem("ghcr.io", [{ registry: "ghcr.io", mirrors: [] }])).toMatch(/already listed/);
    expect(registryProblem("index.docker.io", [])).toMatch(/always listed/);
    expect(registryProblem("registry.local:5000", [])).toBeNull();
    expect(insecureProblem("10.0.0.0/8", ["10.0.0.0/8"])).toMatch(/already/);
  });

  it("builds the settings Save sends, as copies", () => {
    const regs = [
      { registry: "ghcr.io", mirrors: [{ url: "https://g", resolve_tags: false }] },
      { registry: "docker.io", mirrors: [{ url: "http://127.0.0.1:5001", resolve_tags: true }] },
    ];
    const ins = ["127.0.0.1:5000"];
    const s = buildSettings("/etc/berth/daemon.json", regs, ins);
    expect(s).toEqual({
      config_path: "/etc/berth/daemon.json",
      registries: [
        { registry: "docker.io", mirrors: [{ url: "http://127.0.0.1:5001", resolve_tags: true }] },
        { registry: "ghcr.io", mirrors: [{ url: "https://g", resolve_tags: false }] },
      ],
      insecure_registries: ["127.0.0.1:5000"],
    });
    s.registries[0].mirrors[0].url = "changed";
    s.insecure_registries.push("x");
    expect(regs[1].mirrors[0].url).toBe("http://127.0.0.1:5001");
    expect(ins).toEqual(["127.0.0.1:5000"]);
  });
});
