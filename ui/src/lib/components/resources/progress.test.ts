import { describe, expect, it } from "vitest";
import { applyProgress, isAuthError, layerFraction, progressTotals, startProgress } from "./progress";
import type { ProgressEvent } from "../../bindings/ProgressEvent";

describe("applyProgress", () => {
  it("keeps one entry per layer in first-seen order, and the status lines", () => {
    const evs: ProgressEvent[] = [
      { kind: "status", message: "latest: Pulling from library/busybox" },
      { kind: "layer", id: "a", status: "Pulling fs layer", current: null, total: null },
      { kind: "layer", id: "b", status: "Pulling fs layer", current: null, total: null },
      { kind: "layer", id: "b", status: "Downloading", current: 50, total: 100 },
      { kind: "layer", id: "a", status: "Downloading", current: 10, total: 40 },
      { kind: "layer", id: "b", status: "Verifying Checksum", current: null, total: null },
      { kind: "status", message: "Digest: sha256:1" },
    ];
    const s = evs.reduce(applyProgress, startProgress("busybox"));
    expect(s.layers.map((l) => l.id)).toEqual(["a", "b"]);
    expect(s.layers[1]).toEqual({ id: "b", status: "Verifying Checksum", current: 50, total: 100 });
    expect(s.lines).toEqual(["latest: Pulling from library/busybox", "Digest: sha256:1"]);
    expect(s.phase).toBe("running");
    expect(progressTotals(s)).toEqual({ current: 60, total: 140 });
  });

  it("ends with done or error and does not mutate its input", () => {
    const s0 = startProgress("x");
    const s1 = applyProgress(s0, { kind: "error", message: "denied" });
    expect(s0.phase).toBe("running");
    expect(s1).toMatchObject({ phase: "error", message: "denied" });
    expect(applyProgress(s0, { kind: "done", message: "ok" }).phase).toBe("done");
  });

  it("computes layer fractions", () => {
    expect(layerFraction({ id: "a", status: "Downloading", current: 25, total: 100 })).toBe(0.25);
    expect(layerFraction({ id: "a", status: "Waiting", current: null, total: null })).toBeNull();
    expect(layerFraction({ id: "a", status: "Pull complete", current: null, total: null })).toBe(1);
  });

  it("recognises auth errors", () => {
    expect(isAuthError("unauthorized: authentication required")).toBe(true);
    expect(isAuthError("denied: requested access to the resource is denied")).toBe(true);
    expect(isAuthError("dial tcp: connection refused")).toBe(false);
  });
});
