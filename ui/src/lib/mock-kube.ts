// The Deploy-to-Kubernetes part of the mock backend (mock.ts spreads it in), for tests and
// `npm run dev`: a kubeconfig at /home/dev/.kube/config with two contexts (`kind-dev`, the
// current one, and `staging`, whose namespace is `shop`), and a cluster per context that
// remembers what was deployed to which namespace. The rules follow src-tauri's kube
// commands and berth-kube: images are pinned by digest (a built image needs "push" first),
// one Deployment per service, a Service for published ports, a claim per named volume; a
// namespace other than the context's is applied first. A rollout into the namespace
// `crashloop` fails with the pods' events and last logs, as a real failed rollout reports.
//
// In a browser `?kube=none` starts with no kubeconfig (the dialog's empty state).

import type { Backend } from "./backend";
import type { AppError } from "./bindings/AppError";
import type { ComposeProjectInfo } from "./bindings/ComposeProjectInfo";
import type { ComposeTarget } from "./bindings/ComposeTarget";
import type { KubeContexts } from "./bindings/KubeContexts";
import type { KubeDeployResult } from "./bindings/KubeDeployResult";
import type { KubeEvent } from "./bindings/KubeEvent";
import type { KubeObject } from "./bindings/KubeObject";
import type { KubeStatus } from "./bindings/KubeStatus";
import { namespaceProblem } from "./kube";

export type KubeMethods = "kubeContexts" | "kubeDeploy" | "kubeStatus" | "kubeDelete";

export interface KubeHooks {
  delay(ms?: number): Promise<void>;
  /** Reads a compose project (the compose mock's Open). */
  open(target: ComposeTarget): Promise<ComposeProjectInfo>;
}

export interface MockKubeOptions {
  /** No kubeconfig anywhere. */
  none?: boolean;
  /** Milliseconds between rollout polls (default 350; tests pass 0). */
  pollMs?: number;
}

export const MOCK_KUBECONFIG = "/home/dev/.kube/config";

const CONTEXTS = [
  { name: "kind-dev", cluster: "kind-dev", namespace: null, server: "https://127.0.0.1:40123" },
  { name: "staging", cluster: "staging", namespace: "shop", server: "https://k8s.staging.internal:6443" },
];

function fail(code: AppError["code"], message: string): AppError {
  return { code, message };
}

/** A fake digest that stays the same for the same image. */
function digestOf(s: string): string {
  let h = 2166136261;
  let out = "";
  while (out.length < 64) {
    for (const c of s + out.length) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    out += h.toString(16).padStart(8, "0");
  }
  return `sha256:${out.slice(0, 64)}`;
}

/** The repository of a reference, as written (tag and digest removed). */
function repositoryOf(image: string): string {
  const noDigest = image.split("@")[0];
  const slash = noDigest.lastIndexOf("/") + 1;
  const colon = noDigest.slice(slash).lastIndexOf(":");
  return colon < 0 ? noDigest : noDigest.slice(0, slash + colon);
}

interface Deployed {
  project: string;
  namespace: string;
  /** Each Service port: the published one (else the container's) and the container's. */
  services: { name: string; image: string; ports: { port: number; target: number }[] }[];
  volumes: string[];
  serviceType: string;
}

export function mockKube(h: KubeHooks, opts: MockKubeOptions = {}): Pick<Backend, KubeMethods> {
  const pollMs = opts.pollMs ?? 350;
  /** What each context's cluster holds, by `namespace/project`. */
  const clusters = new Map<string, Map<string, Deployed>>(CONTEXTS.map((c) => [c.name, new Map()]));

  function contextOf(name: string | null) {
    const n = name ?? "kind-dev";
    const c = CONTEXTS.find((x) => x.name === n);
    if (!c)
      throw fail("invalid_input", `context "${n}" is not in kubeconfig ${MOCK_KUBECONFIG} (its contexts: ${CONTEXTS.map((x) => x.name).join(", ")}); pick one with --context`);
    return c;
  }

  function checkKubeconfig(path: string | null) {
    if (opts.none) throw fail("invalid_input", `no kubeconfig: /home/dev/.kube/config does not exist and KUBECONFIG is not set`);
    if (path !== null && path !== MOCK_KUBECONFIG) throw fail("invalid_input", `kubeconfig ${path}: no such file`);
  }

  function namespaceFor(ns: string | null, ctx: { namespace: string | null }): string {
    if (ns === null || ns === "") return ctx.namespace ?? "default";
    const p = namespaceProblem(ns);
    if (p) throw fail("invalid_input", `"${ns}" is not a valid namespace: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (like my-app)`);
    return ns;
  }

  function statusOf(ctx: (typeof CONTEXTS)[number], project: string, namespace: string): KubeStatus {
    const d = clusters.get(ctx.name)!.get(`${namespace}/${project}`);
    const st: KubeStatus = { project, context: ctx.name, server: ctx.server, namespace, deployments: [], services: [], volumes: [], pods: [] };
    if (!d) return st;
    d.services.forEach((s, i) => {
      st.deployments.push({ name: s.name, service: s.name, desired: 1, ready: 1, updated: 1, available: 1, images: [s.image], rolled_out: true });
      st.pods.push({ name: `${s.name}-7d9f8b6c5-${["x4k2p", "m8q1z", "t7v3c", "b2n6w"][i % 4]}`, service: s.name, phase: "Running", ready: 1, containers: 1, restarts: 0, reason: null });
      if (s.ports.length)
        st.services.push({
          name: s.name,
          service_type: d.serviceType,
          cluster_ip: `10.96.${12 + i}.${40 + i * 3}`,
          external: d.serviceType === "LoadBalancer" ? [`172.18.255.${200 + i}`] : [],
          ports: s.ports.map((p, j) => ({ name: `p${p.port}`, port: p.port, target_port: String(p.target), protocol: "TCP", node_port: d.serviceType === "ClusterIP" ? null : 30000 + i * 10 + j })),
        });
    });
    st.deployments.sort((a, b) => a.name.localeCompare(b.name));
    st.services.sort((a, b) => a.name.localeCompare(b.name));
    st.pods.sort((a, b) => a.name.localeCompare(b.name));
    st.volumes = d.volumes.map((v) => ({ name: `${project}-${v}`, phase: "Bound", size: "1Gi", storage_class: "standard" }));
    return st;
  }

  return {
    async kubeContexts(kubeconfig): Promise<KubeContexts> {
      await h.delay();
      const path = kubeconfig?.trim() || null;
      if (path !== null && !path.startsWith("/") && !path.startsWith("~"))
        throw fail("invalid_input", `The kubeconfig "${path}" is not an absolute path: write it from / (e.g. /home/me/.kube/config)`);
      const file = path === "~/.kube/config" ? MOCK_KUBECONFIG : path;
      const searched = [file ?? MOCK_KUBECONFIG];
      if (opts.none || (file !== null && file !== MOCK_KUBECONFIG)) return { kubeconfig: null, searched, current: null, contexts: [] };
      return { kubeconfig: MOCK_KUBECONFIG, searched, current: "kind-dev", contexts: CONTEXTS.map((c) => ({ ...c })) };
    },

    async kubeDeploy(req, on): Promise<KubeDeployResult> {
      await h.delay();
      if (req.timeout_secs < 1 || req.timeout_secs > 86400) throw fail("invalid_input", `The rollout timeout must be 1 to 86400 seconds, not ${req.timeout_secs}`);
      checkKubeconfig(req.kubeconfig);
      const ctx = contextOf(req.context);
      const namespace = namespaceFor(req.namespace, ctx);
      const p = await h.open(req.target);
      const ownNs = ctx.namespace ?? "default";

      // images by digest
      const images: Record<string, string> = {};
      for (const s of p.services) {
        if (s.image === null)
          throw fail("invalid_input", `services.${s.name} has no image: its build is tagged ${p.name}-${s.name} locally, which a cluster cannot pull; set \`image:\` to a registry reference (like registry.example.com/${p.name}/${s.name}:1) and deploy with --push`);
        const repo = repositoryOf(s.image);
        if (s.build && !req.push)
          throw fail("invalid_input", `services.${s.name}: image ${s.image} has no registry digest (it was built or tagged here and never pushed to ${repo}), so the cluster cannot pull it: push it with --push (or berth push ${s.image})`);
        const digest = digestOf(s.image);
        if (s.build) {
          on({ event: "push", service: s.name, image: s.image, status: "Pushing" });
          await h.delay(20);
          on({ event: "push", service: s.name, image: s.image, status: "Pushed" });
          on({ event: "push", service: s.name, image: s.image, status: `${s.image.slice(repo.length + 1) || "latest"}: digest: ${digest} size: 1573` });
        }
        images[s.name] = `${repo}@${digest}`;
        on({ event: "pinned", service: s.name, image: s.image, reference: images[s.name] });
      }
      for (const s of p.services)
        if (s.depends_on.length)
          on({
            event: "warning",
            service: s.name,
            key: `services.${s.name}.depends_on`,
            message: `the cluster starts every service at once, not after ${s.depends_on.join(", ")}: readiness probes (from healthchecks) keep traffic away until a service is ready, so make ${s.name} retry its connections`,
          });

      // apply, in berth-kube's order
      const applied: KubeObject[] = [];
      const apply = async (kind: string, name: string, ns: string | null) => {
        await h.delay(15);
        applied.push({ kind, name, namespace: ns });
        on({ event: "applied", kind, name, namespace: ns });
      };
      if (namespace !== ownNs) await apply("Namespace", namespace, null);
      for (const v of p.volumes) await apply("PersistentVolumeClaim", `${p.name}-${v}`, namespace);
      const ports = (s: (typeof p.services)[number]) =>
        s.ports
          .map((x) => /(?:(\d+):)?(\d+)\/\w+$/.exec(x))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => ({ port: Number(m[1] ?? m[2]), target: Number(m[2]) }));
      for (const s of p.services) if (ports(s).length) await apply("Service", s.name, namespace);
      for (const s of p.services) await apply("Deployment", s.name, namespace);

      // rollouts: observed, then one replica at a time
      const wait = () => (pollMs > 0 ? new Promise<void>((r) => setTimeout(r, pollMs)) : h.delay(0));
      if (namespace === "crashloop") {
        const bad = p.services[0];
        for (const s of p.services) on({ event: "progress", deployment: s.name, namespace, observed: false, desired: s.replicas, updated: 0, ready: 0, available: 0 });
        await wait();
        on({ event: "progress", deployment: bad.name, namespace, observed: true, desired: bad.replicas, updated: bad.replicas, ready: 0, available: 0 });
        await wait();
        const pod = `${bad.name}-7d9f8b6c5-x4k2p`;
        const report = [
          `deployment ${bad.name} (0/${bad.replicas} ready, ${bad.replicas} updated): ProgressDeadlineExceeded: ReplicaSet "${bad.name}-7d9f8b6c5" has timed out progressing.`,
          `  pod ${pod}: Running, CrashLoopBackOff, last exit code 1, 4 restarts`,
          `    back-off 40s restarting failed container=${bad.name} pod=${pod}_crashloop`,
          `    events:`,
          `      Normal  Pulled  Container image "${images[bad.name]}" already present on machine (x5)`,
          `      Warning  BackOff  Back-off restarting failed container ${bad.name} in pod ${pod} (x9)`,
          `    last logs of ${bad.name} (previous container):`,
          `      starting ${bad.name}`,
          `      error: cannot connect to db:5432: connection refused`,
          "",
        ].join("\n");
        const reason = `rollout of deployment ${bad.name} failed: ProgressDeadlineExceeded: ReplicaSet "${bad.name}-7d9f8b6c5" has timed out progressing.`;
        on({ event: "rollout_failed", reason, deployments: [bad.name], report });
        throw fail("kubernetes", `${reason}\n${report.trimEnd()}`);
      }
      for (const s of p.services) on({ event: "progress", deployment: s.name, namespace, observed: false, desired: s.replicas, updated: 0, ready: 0, available: 0 });
      await wait();
      const max = Math.max(1, ...p.services.map((s) => s.replicas));
      for (let ready = 0; ready <= max; ready++) {
        for (const s of p.services) {
          if (ready > s.replicas) continue;
          on({ event: "progress", deployment: s.name, namespace, observed: true, desired: s.replicas, updated: s.replicas, ready, available: ready });
          if (ready === s.replicas) on({ event: "available", deployment: s.name, namespace });
        }
        if (ready < max) await wait();
      }
      clusters.get(ctx.name)!.set(`${namespace}/${p.name}`, {
        project: p.name,
        namespace,
        services: p.services.map((s) => ({ name: s.name, image: images[s.name], ports: ports(s) })),
        volumes: [...p.volumes],
        serviceType: req.service_type,
      });
      return { context: ctx.name, server: ctx.server, namespace, images, applied };
    },

    async kubeStatus(req): Promise<KubeStatus> {
      await h.delay();
      if (req.project.trim() === "") throw fail("invalid_input", "The project name is empty");
      checkKubeconfig(req.kubeconfig);
      const ctx = contextOf(req.context);
      return statusOf(ctx, req.project.trim(), namespaceFor(req.namespace, ctx));
    },

    async kubeDelete(req) {
      await h.delay();
      if (req.project.trim() === "") throw fail("invalid_input", "The project name is empty");
      checkKubeconfig(req.kubeconfig);
      const ctx = contextOf(req.context);
      const namespace = namespaceFor(req.namespace, ctx);
      const key = `${namespace}/${req.project.trim()}`;
      const d = clusters.get(ctx.name)!.get(key);
      if (!d) return { deleted: [], kept: [] };
      const st = statusOf(ctx, d.project, namespace);
      const obj = (kind: string, name: string): KubeObject => ({ kind, name, namespace });
      const deleted = [...st.deployments.map((x) => obj("Deployment", x.name)), ...st.services.map((x) => obj("Service", x.name))];
      const claims = st.volumes.map((x) => obj("PersistentVolumeClaim", x.name));
      if (req.volumes || claims.length === 0) clusters.get(ctx.name)!.delete(key);
      else clusters.get(ctx.name)!.set(key, { ...d, services: [] });
      return req.volumes ? { deleted: [...deleted, ...claims], kept: [] } : { deleted, kept: claims };
    },
  };
}
