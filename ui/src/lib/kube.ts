// Deploy to Kubernetes (the Compose page's dialog): the pure parts — the namespace check
// run as the user types, the deploy's progress folded from its events, and the choices
// remembered per project (in localStorage, like the page's other settings).

import type { KubeDeployResult } from "./bindings/KubeDeployResult";
import type { KubeEvent } from "./bindings/KubeEvent";
import type { KubeObject } from "./bindings/KubeObject";
import type { KubeServiceType } from "./bindings/KubeServiceType";

/** Why `ns` is not a Kubernetes namespace name (a DNS-1123 label), or null. As typed:
 * nothing is trimmed or lowercased first. */
export function namespaceProblem(ns: string): string | null {
  if (ns === "") return "enter a namespace";
  const bad = [...ns].find((c) => !/[a-z0-9-]/.test(c));
  if (bad !== undefined) {
    if (/[A-Z]/.test(bad)) return "use lowercase letters: namespaces are lowercase";
    return bad === " " ? "spaces are not allowed: use letters, digits and -" : `"${bad}" is not allowed: use lowercase letters, digits and -`;
  }
  if (ns.length > 63) return `at most 63 characters (this is ${ns.length})`;
  if (ns.startsWith("-") || ns.endsWith("-")) return "start and end with a letter or digit";
  return null;
}

export type RolloutState = "waiting" | "progressing" | "available" | "failed";

/** One Deployment's rollout as the dialog draws it. */
export interface Rollout {
  name: string;
  namespace: string;
  /** null until the first progress event (the bar is indeterminate). */
  desired: number | null;
  ready: number;
  updated: number;
  available: number;
  state: RolloutState;
}

export interface DeployState {
  phase: "running" | "done" | "error";
  started: number;
  ended: number | null;
  warnings: { key: string; service: string | null; message: string }[];
  /** Push steps, in order (the last few hundred). */
  pushes: { service: string; status: string }[];
  /** Pinned images, by service, in the order they came. */
  images: { service: string; image: string; reference: string }[];
  applied: KubeObject[];
  rollouts: Rollout[];
  failure: { reason: string; deployments: string[]; report: string } | null;
  result: KubeDeployResult | null;
  /** The failed deploy's message (a rollout's carries the pods' events and last logs). */
  error: string | null;
}

const MAX_PUSH_LINES = 300;

export function startDeploy(now: number): DeployState {
  return { phase: "running", started: now, ended: null, warnings: [], pushes: [], images: [], applied: [], rollouts: [], failure: null, result: null, error: null };
}

function upsertRollout(list: Rollout[], name: string, namespace: string, f: (r: Rollout) => Rollout): Rollout[] {
  const i = list.findIndex((r) => r.name === name && r.namespace === namespace);
  const base: Rollout = i < 0 ? { name, namespace, desired: null, ready: 0, updated: 0, available: 0, state: "waiting" } : list[i];
  const next = f(base);
  return i < 0 ? [...list, next] : list.map((r, j) => (j === i ? next : r));
}

export function applyKubeEvent(s: DeployState, e: KubeEvent): DeployState {
  switch (e.event) {
    case "warning":
      return { ...s, warnings: [...s.warnings, { key: e.key, service: e.service, message: e.message }] };
    case "push":
      return { ...s, pushes: [...s.pushes, { service: e.service, status: e.status }].slice(-MAX_PUSH_LINES) };
    case "pinned":
      return { ...s, images: [...s.images.filter((i) => i.service !== e.service), { service: e.service, image: e.image, reference: e.reference }] };
    case "applied": {
      const applied = [...s.applied, { kind: e.kind, name: e.name, namespace: e.namespace }];
      if (e.kind !== "Deployment") return { ...s, applied };
      return { ...s, applied, rollouts: upsertRollout(s.rollouts, e.name, e.namespace ?? "", (r) => r) };
    }
    case "progress":
      return {
        ...s,
        rollouts: upsertRollout(s.rollouts, e.deployment, e.namespace, (r) =>
          r.state === "available" || r.state === "failed"
            ? r
            : e.observed
              ? { ...r, desired: e.desired, ready: e.ready, updated: e.updated, available: e.available, state: "progressing" }
              : { ...r, state: "waiting" },
        ),
      };
    case "available":
      return {
        ...s,
        rollouts: upsertRollout(s.rollouts, e.deployment, e.namespace, (r) => {
          const desired = r.desired ?? Math.max(r.available, 1);
          return { ...r, desired, ready: Math.max(r.ready, desired), available: Math.max(r.available, desired), updated: Math.max(r.updated, desired), state: "available" };
        }),
      };
    case "rollout_failed":
      return {
        ...s,
        failure: { reason: e.reason, deployments: e.deployments, report: e.report },
        rollouts: s.rollouts.map((r) => (e.deployments.includes(r.name) && r.state !== "available" ? { ...r, state: "failed" } : r)),
      };
  }
}

export function finishDeploy(s: DeployState, now: number, result: KubeDeployResult | null, error: string | null = null): DeployState {
  return { ...s, phase: error === null ? "done" : "error", ended: now, result, error };
}

/** The fraction of a rollout's bar: ready of desired; null while unknown (indeterminate). */
export function rolloutFraction(r: Rollout): number | null {
  if (r.state === "available") return 1;
  if (r.desired === null) return null;
  if (r.desired <= 0) return 1;
  return Math.min(1, Math.max(0, r.ready / r.desired));
}

/** The words under a rollout's bar. */
export function rolloutText(r: Rollout): string {
  switch (r.state) {
    case "available":
      return `Available · ${r.desired ?? r.ready}/${r.desired ?? r.ready} ready`;
    case "failed":
      return `Failed · ${r.ready}/${r.desired ?? "?"} ready`;
    case "waiting":
      return "Waiting for the controller";
    case "progressing":
      return `${r.ready}/${r.desired ?? "?"} ready · ${r.updated} updated`;
  }
}

// ---------------------------------------------------------------- remembered choices

export const KUBE_KEY = "berth.kube.targets";

/** What the dialog remembers per project. */
export interface KubeChoice {
  kubeconfig: string | null;
  context: string;
  namespace: string;
  service_type: KubeServiceType;
  push: boolean;
}

const SERVICE_TYPES: KubeServiceType[] = ["ClusterIP", "NodePort", "LoadBalancer"];

function readAll(): Record<string, KubeChoice> {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(KUBE_KEY) ?? "{}");
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, KubeChoice>) : {};
  } catch {
    return {};
  }
}

/** The last choice made for `project`, if it is well-formed. */
export function rememberedChoice(project: string): KubeChoice | null {
  const c = readAll()[project] as Partial<KubeChoice> | undefined;
  if (!c || typeof c.context !== "string" || typeof c.namespace !== "string") return null;
  return {
    kubeconfig: typeof c.kubeconfig === "string" ? c.kubeconfig : null,
    context: c.context,
    namespace: c.namespace,
    service_type: SERVICE_TYPES.includes(c.service_type as KubeServiceType) ? (c.service_type as KubeServiceType) : "ClusterIP",
    push: c.push === true,
  };
}

export function rememberChoice(project: string, c: KubeChoice): void {
  const all = readAll();
  all[project] = { ...c };
  try {
    localStorage.setItem(KUBE_KEY, JSON.stringify(all));
  } catch {
    // private mode: remembered for this session only
  }
}
