// The compose part of the mock backend (mock.ts spreads it in): a few projects "on disk"
// (/home/dev/shop, /home/dev/hello-app, and /home/dev/broken-app whose file does not load),
// Up/Down/Restart/Stop that create, start, stop and remove the mock's containers (so the
// Containers page and the engine events follow), merged logs and the .env editor's save.

import type { Backend, Subscription } from "./backend";
import type { AppError } from "./bindings/AppError";
import type { ComposeContainer } from "./bindings/ComposeContainer";
import type { ComposeEvent } from "./bindings/ComposeEvent";
import type { ComposeLogLine } from "./bindings/ComposeLogLine";
import type { ComposeProjectInfo } from "./bindings/ComposeProjectInfo";
import type { ComposeTarget } from "./bindings/ComposeTarget";
import type { ContainerRow } from "./bindings/ContainerRow";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { EnvEntry } from "./bindings/EnvEntry";
import type { ErrorCode } from "./bindings/ErrorCode";

export type ComposeMethods =
  | "composeProjects"
  | "composeOpen"
  | "composePs"
  | "composeUp"
  | "composeDown"
  | "composeRestart"
  | "composeStop"
  | "composeLogs"
  | "composeEnvSave";

/** What the compose mock needs from the container mock. */
export interface ComposeHooks {
  delay(ms?: number): Promise<void>;
  requireEngine(): void;
  emit(e: EngineEvent): void;
  rows(): ContainerRow[];
  create(spec: { name: string; image: string; project: string; service: string; number: number; ports: [number | null, number][]; workingDir: string; files: string[] }): ContainerRow;
  start(id: string): void;
  stop(id: string): void;
  remove(id: string): void;
  /** The container's log so far (stdout/stderr lines). */
  logs(id: string): { line: string; stream: string }[];
  /** Every line appended to any container from now on; returns the unsubscribe. */
  onLog(f: (row: ContainerRow, lines: { line: string; stream: string }[]) => void): () => void;
}

interface MockService {
  image: string | null;
  build: boolean;
  /** `${VAR:-default}` in a published port is interpolated from the env. */
  ports: string[];
  replicas: number;
  depends_on: string[];
}

interface MockProject {
  name: string;
  dir: string;
  file: string;
  services: Record<string, MockService>;
  volumes: string[];
  env: EnvEntry[] | null;
  /** A load error (the file does not parse). */
  error?: string;
}

function fail(code: ErrorCode, message: string): AppError {
  return { code, message };
}

function projects(): Record<string, MockProject> {
  return {
    "/home/dev/shop": {
      name: "shop",
      dir: "/home/dev/shop",
      file: "/home/dev/shop/compose.yaml",
      services: {
        web: { image: "nginx:1.27-alpine", build: false, ports: ["8080:80/tcp"], replicas: 1, depends_on: ["api"] },
        api: { image: "ghcr.io/acme/shop-api:1.8.2", build: true, ports: ["3000:3000/tcp"], replicas: 1, depends_on: ["db", "cache"] },
        db: { image: "postgres:16-alpine", build: false, ports: ["5432/tcp"], replicas: 1, depends_on: [] },
        cache: { image: "redis:7", build: false, ports: [], replicas: 1, depends_on: [] },
      },
      volumes: ["pgdata"],
      env: [
        { key: "POSTGRES_USER", value: "shop" },
        { key: "POSTGRES_PASSWORD", value: "secret" },
        { key: "API_TAG", value: "1.8.2" },
      ],
    },
    "/home/dev/hello-app": {
      name: "hello-app",
      dir: "/home/dev/hello-app",
      file: "/home/dev/hello-app/compose.yaml",
      services: {
        web: { image: "busybox:latest", build: false, ports: ["${WEB_PORT:-8080}:8080/tcp"], replicas: 1, depends_on: ["db"] },
        db: { image: "busybox:latest", build: false, ports: [], replicas: 1, depends_on: [] },
      },
      volumes: ["data"],
      env: [
        { key: "WEB_PORT", value: "8080" },
        { key: "GREETING", value: "hello from compose" },
      ],
    },
    "/home/dev/broken-app": {
      name: "broken-app",
      dir: "/home/dev/broken-app",
      file: "/home/dev/broken-app/compose.yaml",
      services: {},
      volumes: [],
      env: null,
      error: "/home/dev/broken-app/compose.yaml:7:9: services.web.ports[0]: \"80:80:80\" is not a port: write HOST:CONTAINER, e.g. 8080:80",
    },
  };
}

const SERVICE_LOGS: Record<string, string[]> = {
  web: ['GET / HTTP/1.1" 200 615', 'GET /favicon.ico HTTP/1.1" 404 153', 'GET /api/health HTTP/1.1" 200 2'],
  api: ["listening on :3000", "GET /orders 200 8.4ms", "WARN slow query 412ms"],
  db: ["database system is ready to accept connections", "checkpoint starting: time", "checkpoint complete"],
  cache: ["Ready to accept connections tcp", "1 changes in 3600 seconds. Saving..."],
};

export function mockCompose(h: ComposeHooks): Pick<Backend, ComposeMethods> {
  const fs = projects();
  const byName = () => new Map(Object.values(fs).map((p) => [p.name, p]));

  function resolve(target: ComposeTarget): MockProject {
    if (target.files.length === 0) throw fail("invalid_input", "No compose file given: enter the path of a compose.yaml or of the folder holding one");
    const f = target.files[0].trim().replace(/\/+$/, "");
    if (!f.startsWith("/")) throw fail("invalid_input", `"${f}" is not an absolute path: write it from / (e.g. /home/me/app/compose.yaml)`);
    const dir = /\.ya?ml$/.test(f) ? f.slice(0, f.lastIndexOf("/")) : f;
    const p = fs[dir];
    if (!p || (f !== dir && f !== p.file)) {
      if (f === dir && (dir === "/home/dev" || dir === "/home" || dir === "/"))
        throw fail("invalid_input", `No compose file in ${dir}: it needs a compose.yaml (or compose.yml, docker-compose.yaml, docker-compose.yml)`);
      throw fail("invalid_input", `The compose file ${f} cannot be opened (No such file or directory (os error 2))`);
    }
    if (p.error) throw fail("invalid_input", p.error);
    return p;
  }

  function envOf(p: MockProject, overrides: ComposeTarget["environment"]): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of p.env ?? []) env[e.key] = e.value;
    for (const [k, v] of Object.entries(overrides)) if (v !== undefined) env[k] = v;
    return env;
  }

  function interpolate(s: string, env: Record<string, string>): string {
    return s.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, k: string, d: string | undefined) => env[k] || d || "");
  }

  function info(p: MockProject, target: ComposeTarget): ComposeProjectInfo {
    const env = envOf(p, target.environment);
    return {
      name: target.project_name || p.name,
      working_dir: p.dir,
      files: [p.file],
      services: Object.entries(p.services)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, s]) => ({ name, image: s.image, build: s.build, ports: s.ports.map((x) => interpolate(x, env)), replicas: s.replicas, depends_on: s.depends_on })),
      networks: ["default"],
      volumes: p.volumes,
      env: { path: `${p.dir}/.env`, exists: p.env !== null, entries: (p.env ?? []).map((e) => ({ ...e })) },
      warnings: [],
    };
  }

  const containersOf = (project: string) => h.rows().filter((r) => r.project === project);

  function withDeps(p: MockProject, services: string[], noDeps: boolean): string[] {
    const all = Object.keys(p.services);
    if (services.length === 0) return order(p, all);
    if (noDeps) return services;
    const want = new Set<string>();
    const visit = (s: string) => {
      if (want.has(s)) return;
      want.add(s);
      for (const d of p.services[s]?.depends_on ?? []) visit(d);
    };
    services.forEach(visit);
    return order(p, [...want]);
  }

  /** Dependencies first. */
  function order(p: MockProject, services: string[]): string[] {
    const out: string[] = [];
    const visit = (s: string) => {
      if (out.includes(s)) return;
      for (const d of p.services[s]?.depends_on ?? []) if (services.includes(d)) visit(d);
      out.push(s);
    };
    [...services].sort().forEach(visit);
    return out;
  }

  function checkServices(p: MockProject, services: string[]): void {
    for (const s of services)
      if (!p.services[s]) throw fail("invalid_input", `No service "${s}" in project ${p.name}: it has ${Object.keys(p.services).sort().join(", ")}`);
  }

  const step = async (on: (e: ComposeEvent) => void, resource: string, name: string, doing: string, done: string) => {
    on({ kind: "resource", resource, name, status: doing, done: false });
    await h.delay(40);
    on({ kind: "resource", resource, name, status: done, done: true });
  };

  return {
    async composeProjects() {
      await h.delay();
      h.requireEngine();
      const groups = new Map<string, ContainerRow[]>();
      for (const r of h.rows()) if (r.project) groups.set(r.project, [...(groups.get(r.project) ?? []), r]);
      const known = byName();
      return [...groups.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, rows]) => {
          const counts = new Map<string, number>();
          for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
          const p = known.get(name);
          const wd = rows[0].labels["com.docker.compose.project.working_dir"] ?? p?.dir ?? "";
          const files = rows[0].labels["com.docker.compose.project.config_files"] ?? p?.file ?? "";
          return {
            name,
            status: [...counts.entries()].map(([s, n]) => `${s}(${n})`).join(", "),
            config_files: files ? files.split(",") : [],
            working_dir: wd,
            running: counts.get("running") ?? 0,
            total: rows.length,
          };
        });
    },

    async composeOpen(target) {
      await h.delay();
      return info(resolve(target), target);
    },

    async composePs(project) {
      await h.delay(10);
      h.requireEngine();
      return containersOf(project)
        .map(
          (r): ComposeContainer => ({
            id: r.id,
            name: r.name,
            service: r.service ?? r.name,
            number: Number(r.labels["com.docker.compose.container-number"] ?? "1"),
            image: r.image,
            command: r.command,
            state: r.state,
            status: r.status,
            health: r.service === "db" && r.state === "running" ? "healthy" : null,
            exit_code: /^Exited \((\d+)\)/.exec(r.status)?.[1] ? Number(/^Exited \((\d+)\)/.exec(r.status)![1]) : 0,
            ports: r.ports,
            created: r.created,
          }),
        )
        .sort((a, b) => a.service.localeCompare(b.service) || a.number - b.number);
    },

    async composeUp(req, on) {
      await h.delay();
      h.requireEngine();
      const p = resolve(req.target);
      checkServices(p, req.services);
      const name = req.target.project_name || p.name;
      const env = envOf(p, req.target.environment);
      const existing = containersOf(name);
      if (existing.length === 0 || !h.rows().some((r) => r.networks.includes(`${name}_default`))) await step(on, "Network", `${name}_default`, "Creating", "Created");
      for (const v of p.volumes) if (existing.length === 0) await step(on, "Volume", `${name}_${v}`, "Creating", "Created");
      for (const svc of withDeps(p, req.services, req.no_deps)) {
        const s = p.services[svc];
        const cname = `${name}-${svc}-1`;
        const ports = s.ports
          .map((x) => /^(?:(\d+):)?(\d+)\/tcp$/.exec(interpolate(x, env)))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m): [number | null, number] => [m[1] ? Number(m[1]) : null, Number(m[2])]);
        let row = containersOf(name).find((r) => r.service === svc);
        const rebuild = req.build && req.services.includes(svc);
        if (rebuild && s.build) {
          on({ kind: "build", service: svc, line: "Step 1/3 : FROM node:22-alpine" });
          await step(on, "Image", s.image ?? `${name}-${svc}`, "Building", "Built");
        }
        const portsChanged = row !== undefined && JSON.stringify(row.ports.map((x) => [x.host_port, x.container_port])) !== JSON.stringify(ports);
        const recreate = row !== undefined && (rebuild || req.force_recreate || portsChanged);
        if (row && recreate) {
          on({ kind: "resource", resource: "Container", name: cname, status: "Recreate", done: false });
          h.remove(row.id);
          row = undefined;
        } else if (!row) on({ kind: "resource", resource: "Container", name: cname, status: "Creating", done: false });
        if (!row) {
          await h.delay(30);
          row = h.create({ name: cname, image: s.image ?? `${name}-${svc}`, project: name, service: svc, number: 1, ports, workingDir: p.dir, files: [p.file] });
          on({ kind: "resource", resource: "Container", name: cname, status: recreate ? "Recreated" : "Created", done: true });
        }
        if (row.state === "running") {
          on({ kind: "resource", resource: "Container", name: cname, status: "Running", done: true });
          continue;
        }
        on({ kind: "resource", resource: "Container", name: cname, status: "Starting", done: false });
        await h.delay(30);
        h.start(row.id);
        on({ kind: "resource", resource: "Container", name: cname, status: "Started", done: true });
      }
    },

    async composeDown(req, on) {
      await h.delay();
      h.requireEngine();
      const p = resolve(req.target);
      const name = req.target.project_name || p.name;
      for (const r of containersOf(name)) {
        if (r.state === "running" || r.state === "paused") {
          on({ kind: "resource", resource: "Container", name: r.name, status: "Stopping", done: false });
          await h.delay(30);
          h.stop(r.id);
          on({ kind: "resource", resource: "Container", name: r.name, status: "Stopped", done: true });
        }
        on({ kind: "resource", resource: "Container", name: r.name, status: "Removing", done: false });
        h.remove(r.id);
        on({ kind: "resource", resource: "Container", name: r.name, status: "Removed", done: true });
      }
      if (req.volumes) for (const v of p.volumes) await step(on, "Volume", `${name}_${v}`, "Removing", "Removed");
      await step(on, "Network", `${name}_default`, "Removing", "Removed");
    },

    async composeRestart(target, services, on) {
      await h.delay();
      h.requireEngine();
      const p = resolve(target);
      checkServices(p, services);
      const name = target.project_name || p.name;
      for (const r of containersOf(name).filter((r) => services.length === 0 || services.includes(r.service ?? ""))) {
        on({ kind: "resource", resource: "Container", name: r.name, status: "Restarting", done: false });
        h.stop(r.id);
        await h.delay(30);
        h.start(r.id);
        on({ kind: "resource", resource: "Container", name: r.name, status: "Started", done: true });
      }
    },

    async composeStop(target, services, on) {
      await h.delay();
      h.requireEngine();
      const p = resolve(target);
      checkServices(p, services);
      const name = target.project_name || p.name;
      for (const r of containersOf(name).filter((r) => (services.length === 0 || services.includes(r.service ?? "")) && r.state === "running")) {
        on({ kind: "resource", resource: "Container", name: r.name, status: "Stopping", done: false });
        await h.delay(30);
        h.stop(r.id);
        on({ kind: "resource", resource: "Container", name: r.name, status: "Stopped", done: true });
      }
    },

    async composeLogs(project, services, tail, on): Promise<Subscription> {
      await h.delay(10);
      h.requireEngine();
      const want = (r: ContainerRow) => r.project === project && (services.length === 0 || services.includes(r.service ?? ""));
      const line = (r: ContainerRow, l: { line: string; stream: string }): ComposeLogLine => ({
        service: r.service ?? r.name,
        container: r.name,
        number: Number(r.labels["com.docker.compose.container-number"] ?? "1"),
        stderr: l.stream === "stderr",
        text: l.line,
      });
      const backlog: ComposeLogLine[] = [];
      for (const r of h.rows().filter(want)) {
        const ls = h.logs(r.id);
        for (const l of tail != null ? ls.slice(-tail) : ls) backlog.push(line(r, l));
      }
      if (backlog.length) on(backlog);
      const off = h.onLog((r, lines) => {
        if (want(r)) on(lines.map((l) => line(r, l)));
      });
      // running services keep talking while someone listens
      let n = 0;
      const timer = setInterval(() => {
        const running = h.rows().filter((r) => want(r) && r.state === "running");
        if (!running.length) return;
        const r = running[n % running.length];
        const samples = SERVICE_LOGS[r.service ?? ""] ?? ["tick"];
        on([line(r, { line: samples[n++ % samples.length], stream: "stdout" })]);
      }, 1500);
      let closed = false;
      return {
        close: async () => {
          if (closed) return;
          closed = true;
          clearInterval(timer);
          off();
        },
      };
    },

    async composeEnvSave(path, entries) {
      await h.delay();
      const p = Object.values(fs).find((x) => `${x.dir}/.env` === path);
      if (!path.endsWith("/.env")) throw fail("invalid_input", `${path} is not a .env file: only a project's .env is written`);
      const seen = new Set<string>();
      for (const e of entries) {
        if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(e.key.trim()))
          throw fail("invalid_input", `"${e.key.trim()}" is not a variable name: use letters, digits and _ (not starting with a digit)`);
        if (seen.has(e.key.trim())) throw fail("invalid_input", `${e.key.trim()} is set twice: keep one row for it`);
        seen.add(e.key.trim());
      }
      if (!p) throw fail("system", `Cannot write ${path} (No such file or directory (os error 2))`);
      p.env = entries.map((e) => ({ key: e.key.trim(), value: e.value }));
      return { path, exists: true, entries: p.env.map((e) => ({ ...e })) };
    },
  };
}
