import { afterEach, describe, expect, it } from "vitest";
import type { KubeEvent } from "./bindings/KubeEvent";
import {
  applyKubeEvent,
  finishDeploy,
  KUBE_KEY,
  namespaceProblem,
  rememberChoice,
  rememberedChoice,
  rolloutFraction,
  rolloutText,
  startDeploy,
} from "./kube";

afterEach(() => localStorage.clear());

describe("namespaceProblem", () => {
  it("accepts DNS-1123 labels only, as typed", () => {
    for (const ok of ["default", "my-app", "a", "a1-b2", "x".repeat(63)]) expect(namespaceProblem(ok), ok).toBeNull();
    expect(namespaceProblem("")).toBe("enter a namespace");
    expect(namespaceProblem("Shop")).toBe("use lowercase letters: namespaces are lowercase");
    expect(namespaceProblem("my_app")).toBe('"_" is not allowed: use lowercase letters, digits and -');
    expect(namespaceProblem("my.app")).toBe('"." is not allowed: use lowercase letters, digits and -');
    // not trimmed: a space is a mistake the user sees
    expect(namespaceProblem(" shop")).toBe("spaces are not allowed: use letters, digits and -");
    expect(namespaceProblem("-shop")).toBe("start and end with a letter or digit");
    expect(namespaceProblem("shop-")).toBe("start and end with a letter or digit");
    expect(namespaceProblem("x".repeat(64))).toBe("at most 63 characters (this is 64)");
  });
});

describe("a deploy's progress", () => {
  it("folds pins, applies and rollouts in order", () => {
    const events: KubeEvent[] = [
      { event: "warning", service: "web", key: "services.web.depends_on", message: "starts at once" },
      { event: "push", service: "api", image: "reg/api:1", status: "Pushing" },
      { event: "pinned", service: "api", image: "reg/api:1", reference: "reg/api@sha256:aa" },
      { event: "pinned", service: "web", image: "busybox", reference: "busybox@sha256:bb" },
      { event: "applied", kind: "Service", name: "web", namespace: "default" },
      { event: "applied", kind: "Deployment", name: "api", namespace: "default" },
      { event: "applied", kind: "Deployment", name: "web", namespace: "default" },
      { event: "progress", deployment: "web", namespace: "default", observed: false, desired: 2, updated: 2, ready: 2, available: 2 },
    ];
    let s = startDeploy(1000);
    for (const e of events) s = applyKubeEvent(s, e);
    expect(s.warnings).toEqual([{ key: "services.web.depends_on", service: "web", message: "starts at once" }]);
    expect(s.pushes).toEqual([{ service: "api", status: "Pushing" }]);
    expect(s.images.map((i) => [i.service, i.reference])).toEqual([
      ["api", "reg/api@sha256:aa"],
      ["web", "busybox@sha256:bb"],
    ]);
    expect(s.applied.map((o) => `${o.kind}/${o.name}`)).toEqual(["Service/web", "Deployment/api", "Deployment/web"]);
    // a Deployment gets its bar when applied; an unobserved status says nothing about it
    const web = s.rollouts.find((r) => r.name === "web")!;
    expect(web).toMatchObject({ state: "waiting", desired: null, ready: 0 });
    expect(rolloutFraction(web)).toBeNull();
    expect(rolloutText(web)).toBe("Waiting for the controller");

    s = applyKubeEvent(s, { event: "progress", deployment: "web", namespace: "default", observed: true, desired: 2, updated: 2, ready: 1, available: 1 });
    const half = s.rollouts.find((r) => r.name === "web")!;
    expect(rolloutFraction(half)).toBe(0.5);
    expect(rolloutText(half)).toBe("1/2 ready · 2 updated");
    s = applyKubeEvent(s, { event: "available", deployment: "web", namespace: "default" });
    const done = s.rollouts.find((r) => r.name === "web")!;
    expect(done.state).toBe("available");
    expect(rolloutFraction(done)).toBe(1);
    expect(rolloutText(done)).toBe("Available · 2/2 ready");
    // a late progress event does not take an available rollout back
    s = applyKubeEvent(s, { event: "progress", deployment: "web", namespace: "default", observed: true, desired: 2, updated: 2, ready: 1, available: 1 });
    expect(s.rollouts.find((r) => r.name === "web")!.state).toBe("available");

    s = applyKubeEvent(s, { event: "rollout_failed", reason: "rollout of deployment api failed", deployments: ["api"], report: "pod api-1: CrashLoopBackOff\n" });
    expect(s.rollouts.map((r) => `${r.name}:${r.state}`)).toEqual(["api:failed", "web:available"]);
    expect(s.failure?.report).toContain("CrashLoopBackOff");
    s = finishDeploy(s, 4000, null, "rollout of deployment api failed\npod api-1: CrashLoopBackOff");
    expect(s).toMatchObject({ phase: "error", ended: 4000, result: null });
  });
});

describe("remembered choices", () => {
  it("round-trips per project and ignores malformed entries", () => {
    expect(rememberedChoice("shop")).toBeNull();
    rememberChoice("shop", { kubeconfig: null, context: "staging", namespace: "shop", service_type: "NodePort", push: true });
    expect(rememberedChoice("shop")).toEqual({ kubeconfig: null, context: "staging", namespace: "shop", service_type: "NodePort", push: true });
    expect(rememberedChoice("other")).toBeNull();
    localStorage.setItem(KUBE_KEY, JSON.stringify({ shop: { context: "x", namespace: "y", service_type: "Bogus" }, bad: { context: 3 } }));
    expect(rememberedChoice("shop")).toEqual({ kubeconfig: null, context: "x", namespace: "y", service_type: "ClusterIP", push: false });
    expect(rememberedChoice("bad")).toBeNull();
    localStorage.setItem(KUBE_KEY, "not json");
    expect(rememberedChoice("shop")).toBeNull();
  });
});
