// An in-memory Backend for `npm run dev` in a plain browser and for the unit tests: realistic
// containers, events emitted on every change, logs and stats streamed while subscribed (no
// timers run while nothing is open), exec echoing what is typed. Images, volumes, networks
// and registry settings come from mock-resources.ts.
//
// In a browser the query string tunes it: `?mockContainers=1000` seeds that many containers,
// `?engine=stopped` starts with the engine stopped.

import type { Backend, ExecSession, Subscription } from "./backend";
import type { AppError } from "./bindings/AppError";
import type { ContainerDetails } from "./bindings/ContainerDetails";
import type { ContainerRow } from "./bindings/ContainerRow";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { EngineStatus } from "./bindings/EngineStatus";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { ExecEvent } from "./bindings/ExecEvent";
import type { LogChunk } from "./bindings/LogChunk";
import type { PortBinding } from "./bindings/PortBinding";
import type { RunRequest } from "./bindings/RunRequest";
import type { StatsSample } from "./bindings/StatsSample";
import { mockResources } from "./mock-resources";
import { mockCompose } from "./mock-compose";
import { mockKube } from "./mock-kube";
import { mockVm } from "./mock-vm";

export interface MockOptions {
  /** Seed this many containers instead of the hand-written set. */
  containers?: number;
  engine?: "running" | "stopped";
  /** Milliseconds each call takes (default 60; tests pass 0). */
  latency?: number;
  /** "none": no kubeconfig (Deploy to Kubernetes shows its empty state). */
  kube?: "none";
}

interface MockContainer {
  row: ContainerRow;
  startedAt: number; // ms, 0 = never
  finishedAt: number;
  exitCode: number;
  env: string[];
  cmd: string[];
  restart: string;
  mounts: { kind: string; source: string; destination: string; read_only: boolean }[];
  logs: LogChunk[];
  autoRemove: boolean;
  cpuBase: number;
  memBase: number;
  net: { rx: number; tx: number };
}

function appError(code: ErrorCode, message: string): AppError {
  return { code, message };
}

function hexId(seed: number): string {
  let h = (seed * 2654435761) >>> 0;
  let out = "";
  while (out.length < 64) {
    h ^= h << 13;
    h >>>= 0;
    h ^= h >>> 17;
    h ^= h << 5;
    h >>>= 0;
    out += h.toString(16).padStart(8, "0");
  }
  return out.slice(0, 64);
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function b64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function uptimeText(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return "Less than a second";
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m < 60) return m === 1 ? "About a minute" : `${m} minutes`;
  const h = Math.floor(m / 60);
  if (h < 48) return h === 1 ? "About an hour" : `${h} hours`;
  return `${Math.floor(h / 24)} days`;
}

function statusText(c: MockContainer, now: number): string {
  switch (c.row.state) {
    case "running":
      return `Up ${uptimeText(now - c.startedAt)}`;
    case "paused":
      return `Up ${uptimeText(now - c.startedAt)} (Paused)`;
    case "exited":
      return `Exited (${c.exitCode}) ${uptimeText(now - c.finishedAt)} ago`;
    case "created":
      return "Created";
    default:
      return c.row.state;
  }
}

const LOG_SAMPLES: Record<string, string[]> = {
  nginx: [
    '172.17.0.1 - - "GET / HTTP/1.1" 200 615 "-" "Mozilla/5.0"',
    '172.17.0.1 - - "GET /favicon.ico HTTP/1.1" 404 153 "-" "Mozilla/5.0"',
    '172.17.0.1 - - "GET /api/health HTTP/1.1" 200 2 "-" "curl/8.5.0"',
    '172.17.0.1 - - "POST /api/orders HTTP/1.1" 201 87 "-" "Mozilla/5.0"',
  ],
  postgres: [
    "LOG:  checkpoint starting: time",
    "LOG:  checkpoint complete: wrote 12 buffers (0.1%); 0 WAL file(s) added",
    "LOG:  automatic vacuum of table \"shop.public.orders\": index scans: 0",
  ],
  redis: ["* 1 changes in 3600 seconds. Saving...", "* Background saving started by pid 42", "* Background saving terminated with success"],
  default: [
    "INFO  request handled method=GET path=/healthz status=200 duration=1.2ms",
    "INFO  request handled method=GET path=/api/items status=200 duration=8.4ms",
    "WARN  slow query duration=412ms table=items",
    "ERROR upstream timeout after 5s host=payments:8080",
    "DEBUG cache hit ratio=0.93",
  ],
};

function sampleFor(image: string): string[] {
  if (image.includes("nginx")) return LOG_SAMPLES.nginx;
  if (image.includes("postgres")) return LOG_SAMPLES.postgres;
  if (image.includes("redis")) return LOG_SAMPLES.redis;
  return LOG_SAMPLES.default;
}

function startupLogs(image: string, at: number): LogChunk[] {
  const lines: string[] = image.includes("nginx")
    ? [
        "/docker-entrypoint.sh: Configuration complete; ready for start up",
        "nginx/1.27.3 start worker processes",
        "start worker process 29",
        "start worker process 30",
      ]
    : image.includes("postgres")
      ? [
          "PostgreSQL init process complete; ready for start up.",
          'LOG:  starting PostgreSQL 16.4 on x86_64-pc-linux-musl',
          'LOG:  listening on IPv4 address "0.0.0.0", port 5432',
          "LOG:  database system is ready to accept connections",
        ]
      : image.includes("redis")
        ? ["# Server initialized", "* Ready to accept connections tcp"]
        : ["INFO  starting service version=1.8.2", "INFO  listening addr=0.0.0.0:8080", "INFO  connected to database"];
  return lines.map((line, i) => ({
    stream: line.startsWith("ERROR") ? "stderr" : "stdout",
    line,
    timestamp: rfc3339(at + i * 37),
  }));
}

interface Seed {
  name: string;
  image: string;
  state: string;
  ports?: [number | null, number][];
  project?: string;
  service?: string;
  cmd?: string[];
  env?: string[];
  mounts?: MockContainer["mounts"];
  network?: string;
  agoS: number;
  restart?: string;
}

const SEEDS: Seed[] = [
  { name: "shop-web-1", image: "nginx:1.27-alpine", state: "running", ports: [[8080, 80]], project: "shop", service: "web", agoS: 7200, cmd: ["nginx", "-g", "daemon off;"], network: "shop_default", restart: "unless-stopped", mounts: [{ kind: "bind", source: "/home/dev/shop/nginx.conf", destination: "/etc/nginx/nginx.conf", read_only: true }] },
  { name: "shop-api-1", image: "ghcr.io/acme/shop-api:1.8.2", state: "running", ports: [[3000, 3000]], project: "shop", service: "api", agoS: 7190, cmd: ["node", "server.js"], env: ["NODE_ENV=production", "DATABASE_URL=postgres://shop@db/shop"], network: "shop_default", restart: "unless-stopped" },
  { name: "shop-db-1", image: "postgres:16-alpine", state: "running", ports: [[null, 5432]], project: "shop", service: "db", agoS: 7210, cmd: ["postgres"], env: ["POSTGRES_USER=shop", "POSTGRES_PASSWORD=secret", "PGDATA=/var/lib/postgresql/data"], network: "shop_default", restart: "unless-stopped", mounts: [{ kind: "volume", source: "shop_pgdata", destination: "/var/lib/postgresql/data", read_only: false }] },
  { name: "shop-cache-1", image: "redis:7", state: "paused", project: "shop", service: "cache", agoS: 7205, cmd: ["redis-server"], network: "shop_default" },
  { name: "dev-proxy", image: "nginx:1.27-alpine", state: "running", ports: [[8443, 443], [8081, 80]], agoS: 86400 * 3, cmd: ["nginx", "-g", "daemon off;"], restart: "always" },
  { name: "metrics", image: "prom/prometheus:v2.53.0", state: "running", ports: [[9090, 9090]], agoS: 3600 * 5, cmd: ["/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml"], mounts: [{ kind: "volume", source: "prometheus-data", destination: "/prometheus", read_only: false }] },
  { name: "migrate-2024", image: "ghcr.io/acme/shop-api:1.8.2", state: "exited", agoS: 86400, cmd: ["node", "migrate.js"], project: "shop", service: "migrate" },
  { name: "pg-old", image: "postgres:15", state: "exited", ports: [[null, 5432]], agoS: 86400 * 12, cmd: ["postgres"], env: ["POSTGRES_PASSWORD=example"] },
  { name: "scratchpad", image: "alpine:3.20", state: "created", agoS: 300, cmd: ["sh"] },
];

function readOptions(): MockOptions {
  if (typeof location === "undefined") return {};
  const q = new URLSearchParams(location.search);
  const n = Number(q.get("mockContainers"));
  return {
    containers: Number.isFinite(n) && n > 0 ? n : undefined,
    engine: q.get("engine") === "stopped" ? "stopped" : "running",
    kube: q.get("kube") === "none" ? "none" : undefined,
  };
}

export function mockBackend(options: MockOptions = readOptions()): Backend {
  const latency = options.latency ?? 60;
  const now = () => Date.now();
  let seq = 1;

  let engine: EngineStatus = {
    state: options.engine === "stopped" ? "stopped" : "running",
    host: "unix:///run/berth/berth.sock",
    version: options.engine === "stopped" ? null : "0.1.0",
    message: options.engine === "stopped" ? "berthd is not running (connect: no such file or directory)" : null,
    can_start: true,
    containers_running: 0,
  };

  const engineWatchers = new Set<(s: EngineStatus) => void>();
  const eventWatchers = new Set<(e: EngineEvent) => void>();
  const logFollowers = new Map<string, Set<(l: LogChunk[]) => void>>();
  const logTaps = new Set<(row: ContainerRow, l: LogChunk[]) => void>();
  const opened: string[] = [];

  const delay = (ms = latency) => new Promise<void>((r) => (ms > 0 ? setTimeout(r, ms) : queueMicrotask(r)));

  function emit(e: EngineEvent): void {
    for (const w of eventWatchers) w(e);
  }

  function pushEngine(): void {
    engine = { ...engine, containers_running: [...containers.values()].filter((c) => c.row.state === "running").length };
    for (const w of engineWatchers) w({ ...engine });
  }

  const vm = mockVm({
    engine: () => ({ ...engine }),
    setEngine: (s) => {
      engine = s;
      pushEngine();
    },
    notice: (action) => emit({ kind: "engine", action, id: "", attributes: {}, time_ms: now() }),
    delay,
  }, { stepMs: Math.max(latency * 4, 0) });

  function requireEngine(): void {
    if (engine.state !== "running")
      throw appError("engine_unreachable", `Cannot connect to the engine at ${engine.host}: is berthd running?`);
  }

  const containers = new Map<string, MockContainer>();

  function ports(list: [number | null, number][] = []): PortBinding[] {
    return list.map(([h, c]) => ({ host_ip: h == null ? "" : "0.0.0.0", host_port: h, container_port: c, protocol: "tcp" }));
  }

  function add(s: Seed, id: string): MockContainer {
    const t = now();
    const created = t - s.agoS * 1000;
    const labels: Record<string, string> = {};
    if (s.project) {
      labels["com.docker.compose.project"] = s.project;
      labels["com.docker.compose.service"] = s.service ?? s.name;
      labels["com.docker.compose.container-number"] = "1";
    }
    const c: MockContainer = {
      row: {
        id,
        name: s.name,
        image: s.image,
        image_id: `sha256:${hexId(s.image.length * 7919 + s.image.charCodeAt(0))}`,
        command: (s.cmd ?? []).join(" "),
        created: Math.floor(created / 1000),
        state: s.state,
        status: "",
        ports: ports(s.ports),
        project: s.project ?? null,
        service: s.project ? (s.service ?? s.name) : null,
        labels,
        networks: [s.network ?? "bridge"],
      },
      startedAt: s.state === "running" || s.state === "paused" ? created + 800 : s.state === "exited" ? created + 500 : 0,
      finishedAt: s.state === "exited" ? created + 5000 : 0,
      exitCode: s.state === "exited" ? (s.name.startsWith("migrate") ? 0 : 137) : 0,
      env: [...(s.env ?? []), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      cmd: s.cmd ?? [],
      restart: s.restart ?? "no",
      mounts: s.mounts ?? [],
      logs: s.state === "created" ? [] : startupLogs(s.image, created + 800),
      autoRemove: false,
      cpuBase: 0.3 + ((id.charCodeAt(0) + id.charCodeAt(5)) % 40) / 3,
      memBase: (20 + (id.charCodeAt(3) % 200)) * 1024 * 1024,
      net: { rx: 0, tx: 0 },
    };
    c.row.status = statusText(c, t);
    containers.set(id, c);
    return c;
  }

  if (options.containers) {
    const images = ["nginx:1.27-alpine", "redis:7", "postgres:16-alpine", "ghcr.io/acme/worker:2.1", "alpine:3.20", "busybox:1.36"];
    const states = ["running", "running", "running", "exited", "paused", "created"];
    for (let i = 0; i < options.containers; i++) {
      const project = i % 3 === 0 ? `stack-${Math.floor(i / 30)}` : undefined;
      add(
        {
          name: project ? `${project}-svc${i}-1` : `box-${String(i).padStart(4, "0")}`,
          image: images[i % images.length],
          state: states[i % states.length],
          ports: i % 10 === 0 ? [[20000 + i, 80]] : [],
          project,
          service: project ? `svc${i}` : undefined,
          agoS: 60 + i * 37,
        },
        hexId(i + 1),
      );
    }
  } else {
    SEEDS.forEach((s, i) => add(s, hexId(i + 101)));
  }
  engine.containers_running = [...containers.values()].filter((c) => c.row.state === "running").length;

  function find(idOrName: string): MockContainer {
    const c =
      containers.get(idOrName) ??
      [...containers.values()].find((x) => x.row.name === idOrName || (idOrName.length >= 4 && x.row.id.startsWith(idOrName)));
    if (!c) throw appError("not_found", `No such container: ${idOrName}`);
    return c;
  }

  function containerEvent(c: MockContainer, action: string, extra: Record<string, string> = {}): void {
    emit({
      kind: "container",
      action,
      id: c.row.id,
      attributes: { ...c.row.labels, name: c.row.name, image: c.row.image, ...extra },
      time_ms: now(),
    });
  }

  function appendLog(c: MockContainer, lines: string[], stream = "stdout"): void {
    const t = now();
    const chunks = lines.map((line) => ({ stream, line, timestamp: rfc3339(t) }));
    c.logs.push(...chunks);
    if (c.logs.length > 20000) c.logs.splice(0, c.logs.length - 20000);
    for (const f of logFollowers.get(c.row.id) ?? []) f(chunks);
    for (const f of logTaps) f(c.row, chunks);
  }

  function setState(c: MockContainer, state: string): void {
    c.row.state = state;
    c.row.status = statusText(c, now());
  }

  function stop(c: MockContainer, code = 0): void {
    c.exitCode = code;
    c.finishedAt = now();
    setState(c, "exited");
    appendLog(c, ["Received SIGTERM, shutting down gracefully"]);
    containerEvent(c, "die", { exitCode: String(code) });
    containerEvent(c, "stop");
    if (c.autoRemove) {
      containers.delete(c.row.id);
      containerEvent(c, "destroy");
    }
  }

  function start(c: MockContainer): void {
    c.startedAt = now();
    setState(c, "running");
    appendLog(c, startupLogs(c.row.image, now()).map((l) => l.line));
    containerEvent(c, "start");
  }

  function details(c: MockContainer): ContainerDetails {
    const d: Omit<ContainerDetails, "raw"> = {
      id: c.row.id,
      name: c.row.name,
      image: c.row.image,
      image_id: c.row.image_id,
      state: c.row.state,
      status: c.row.status,
      exit_code: c.exitCode,
      created: rfc3339(c.row.created * 1000),
      started_at: c.startedAt ? rfc3339(c.startedAt) : "",
      finished_at: c.finishedAt ? rfc3339(c.finishedAt) : "",
      path: c.cmd[0] ?? "",
      args: c.cmd.slice(1),
      entrypoint: c.row.image.includes("nginx") ? ["/docker-entrypoint.sh"] : [],
      cmd: c.cmd,
      env: c.env,
      working_dir: c.row.image.includes("acme") ? "/app" : "",
      user: "",
      hostname: c.row.id.slice(0, 12),
      tty: false,
      restart_policy: c.restart,
      ports: c.row.ports,
      mounts: c.mounts,
      networks: c.row.networks.map((n, i) => ({
        network: n,
        ip_address: c.row.state === "running" || c.row.state === "paused" ? `172.${n === "bridge" ? 17 : 18}.0.${2 + i + (c.row.id.charCodeAt(1) % 200)}` : "",
        gateway: `172.${n === "bridge" ? 17 : 18}.0.1`,
        mac_address: `02:42:ac:11:00:${(2 + (c.row.id.charCodeAt(2) % 200)).toString(16).padStart(2, "0")}`,
        aliases: c.row.service ? [c.row.service, c.row.id.slice(0, 12)] : [],
      })),
      labels: c.row.labels,
    };
    const raw = {
      Id: c.row.id,
      Created: d.created,
      Path: d.path,
      Args: d.args,
      State: {
        Status: c.row.state,
        Running: c.row.state === "running" || c.row.state === "paused",
        Paused: c.row.state === "paused",
        Restarting: false,
        OOMKilled: false,
        Dead: false,
        Pid: c.row.state === "running" ? 4000 + (c.row.id.charCodeAt(0) % 900) : 0,
        ExitCode: c.exitCode,
        Error: "",
        StartedAt: d.started_at || "0001-01-01T00:00:00Z",
        FinishedAt: d.finished_at || "0001-01-01T00:00:00Z",
      },
      Image: c.row.image_id,
      Name: `/${c.row.name}`,
      RestartCount: 0,
      HostConfig: {
        RestartPolicy: { Name: c.restart, MaximumRetryCount: 0 },
        AutoRemove: c.autoRemove,
        PortBindings: Object.fromEntries(
          c.row.ports.map((p) => [`${p.container_port}/${p.protocol}`, p.host_port ? [{ HostIp: "", HostPort: String(p.host_port) }] : []]),
        ),
        Binds: c.mounts.filter((m) => m.kind === "bind").map((m) => `${m.source}:${m.destination}${m.read_only ? ":ro" : ""}`),
      },
      Mounts: c.mounts.map((m) => ({ Type: m.kind, Source: m.source, Destination: m.destination, RW: !m.read_only })),
      Config: {
        Hostname: d.hostname,
        Env: c.env,
        Cmd: c.cmd,
        Image: c.row.image,
        Entrypoint: d.entrypoint.length ? d.entrypoint : null,
        Labels: c.row.labels,
        WorkingDir: d.working_dir,
      },
      NetworkSettings: {
        Networks: Object.fromEntries(
          d.networks.map((n) => [n.network, { IPAddress: n.ip_address, Gateway: n.gateway, MacAddress: n.mac_address, Aliases: n.aliases }]),
        ),
      },
    };
    return { ...d, raw: JSON.stringify(raw) };
  }

  function subscription(close: () => void): Subscription {
    let closed = false;
    return {
      close: async () => {
        if (closed) return;
        closed = true;
        close();
      },
    };
  }

  const resources = mockResources(emit, { speed: latency / 60 });

  const compose = mockCompose({
    delay,
    requireEngine,
    emit,
    rows: () => [...containers.values()].map((c) => ({ ...c.row, status: statusText(c, now()) })),
    create(spec) {
      const c = add(
        { name: spec.name, image: spec.image, state: "created", ports: spec.ports, project: spec.project, service: spec.service, network: `${spec.project}_default`, agoS: 0 },
        hexId(5000 + seq++),
      );
      c.row.labels["com.docker.compose.container-number"] = String(spec.number);
      c.row.labels["com.docker.compose.project.working_dir"] = spec.workingDir;
      c.row.labels["com.docker.compose.project.config_files"] = spec.files.join(",");
      containerEvent(c, "create");
      return { ...c.row };
    },
    start(id) {
      const c = find(id);
      if (c.row.state !== "running") start(c);
      pushEngine();
    },
    stop(id) {
      const c = find(id);
      if (c.row.state === "running" || c.row.state === "paused") stop(c, 0);
      pushEngine();
    },
    remove(id) {
      const c = find(id);
      if (c.row.state === "running" || c.row.state === "paused") stop(c, 137);
      containers.delete(c.row.id);
      containerEvent(c, "destroy");
      pushEngine();
    },
    logs: (id) => find(id).logs,
    onLog(f) {
      logTaps.add(f);
      return () => logTaps.delete(f);
    },
  });

  const kube = mockKube({ delay, open: (t) => compose.composeOpen(t) }, { none: options.kube === "none", pollMs: latency * 6 });

  const b: Backend = {
    async engineStatus() {
      await delay(10);
      return { ...engine };
    },

    async engineStart() {
      if (engine.state === "running") return { ...engine };
      if (vm.isVm()) return vm.start();
      engine = { ...engine, state: "starting", message: "Starting berthd…" };
      pushEngine();
      await delay(Math.max(latency * 10, 0));
      engine = { ...engine, state: "running", version: "0.1.0", message: null };
      pushEngine();
      emit({ kind: "engine", action: "connected", id: "", attributes: {}, time_ms: now() });
      return { ...engine };
    },

    async engineStop() {
      if (engine.state === "stopped") return { ...engine };
      if (vm.isVm()) return vm.stop();
      engine = { ...engine, state: "stopping", message: "Stopping berthd…" };
      pushEngine();
      await delay(Math.max(latency * 5, 0));
      engine = { ...engine, state: "stopped", version: null, message: "berthd was stopped from Berth Desktop." };
      pushEngine();
      emit({ kind: "engine", action: "disconnected", id: "", attributes: {}, time_ms: now() });
      return { ...engine };
    },

    async watchEngine(on) {
      engineWatchers.add(on);
      queueMicrotask(() => engineWatchers.has(on) && on({ ...engine }));
      return subscription(() => engineWatchers.delete(on));
    },

    async watchEvents(on) {
      eventWatchers.add(on);
      return subscription(() => eventWatchers.delete(on));
    },

    async diskUsage() {
      await delay();
      requireEngine();
      return { images: 1_734_000_000, containers: 48_200_000, volumes: 612_000_000 };
    },

    async openUrl(url) {
      // a browser tab would leave the app; the mock only records it
      opened.push(url);
    },

    async containersList() {
      await delay();
      requireEngine();
      const t = now();
      return [...containers.values()]
        .sort((a, b) => b.row.created - a.row.created)
        .map((c) => ({ ...c.row, status: statusText(c, t), ports: [...c.row.ports], networks: [...c.row.networks] }));
    },

    async containerAction(id, action) {
      await delay();
      requireEngine();
      const c = find(id);
      const s = c.row.state;
      switch (action) {
        case "start":
          if (s === "running") return;
          if (s === "paused") throw appError("conflict", `Container ${c.row.name} is paused, unpause it instead`);
          start(c);
          break;
        case "stop":
          if (s !== "running" && s !== "paused") return;
          stop(c, 0);
          break;
        case "kill":
          if (s !== "running") throw appError("conflict", `Container ${c.row.name} is not running`);
          stop(c, 137);
          containerEvent(c, "kill");
          break;
        case "restart":
          if (s === "running" || s === "paused") stop(c, 0);
          if (containers.has(c.row.id)) start(c);
          containerEvent(c, "restart");
          break;
        case "pause":
          if (s !== "running") throw appError("conflict", `Container ${c.row.name} is not running`);
          setState(c, "paused");
          containerEvent(c, "pause");
          break;
        case "unpause":
          if (s !== "paused") throw appError("conflict", `Container ${c.row.name} is not paused`);
          setState(c, "running");
          containerEvent(c, "unpause");
          break;
      }
      pushEngine();
    },

    async containerRemove(id, force) {
      await delay();
      requireEngine();
      const c = find(id);
      if ((c.row.state === "running" || c.row.state === "paused") && !force)
        throw appError(
          "conflict",
          `cannot remove container "/${c.row.name}": container is ${c.row.state}: stop the container before removing or force remove`,
        );
      if (c.row.state === "running" || c.row.state === "paused") stop(c, 137);
      containers.delete(c.row.id);
      containerEvent(c, "destroy");
      pushEngine();
    },

    async containerInspect(id) {
      await delay(latency / 2);
      requireEngine();
      return details(find(id));
    },

    async containerRun(req: RunRequest) {
      await delay(latency * 3);
      requireEngine();
      if (!req.image.trim()) throw appError("invalid_input", "an image is required");
      if (req.image.includes("doesnotexist"))
        throw appError("not_found", `pull access denied for ${req.image}, repository does not exist or may require 'docker login'`);
      if (req.name && [...containers.values()].some((c) => c.row.name === req.name))
        throw appError("conflict", `Conflict. The container name "/${req.name}" is already in use.`);
      for (const p of req.ports) {
        if (p.host_port == null) continue;
        const taken = [...containers.values()].find(
          (c) => c.row.state === "running" && c.row.ports.some((q) => q.host_port === p.host_port),
        );
        if (taken) throw appError("conflict", `Bind for 0.0.0.0:${p.host_port} failed: port is already allocated`);
      }
      const id = hexId(Date.now() % 1e9 + seq++ * 7);
      const adjectives = ["brave", "calm", "eager", "jolly", "keen", "quiet", "witty"];
      const nouns = ["turing", "hopper", "lovelace", "curie", "noether", "ritchie"];
      const name = req.name || `${adjectives[seq % adjectives.length]}_${nouns[(seq * 3) % nouns.length]}`;
      const c = add(
        {
          name,
          image: req.image,
          state: "created",
          agoS: 0,
          cmd: req.command ? req.command.split(/\s+/) : req.image.includes("nginx") ? ["nginx", "-g", "daemon off;"] : ["sh"],
          env: req.env,
          network: req.network || "bridge",
          restart: req.restart,
          mounts: req.volumes.map((v) => ({
            kind: v.source.startsWith("/") ? "bind" : "volume",
            source: v.source || hexId(seq * 13),
            destination: v.target,
            read_only: v.read_only,
          })),
        },
        id,
      );
      c.row.ports = req.ports.map((p) => ({
        host_ip: p.host_ip || "0.0.0.0",
        host_port: p.host_port ?? 32768 + (seq % 1000),
        container_port: p.container_port,
        protocol: p.protocol || "tcp",
      }));
      c.autoRemove = req.auto_remove;
      containerEvent(c, "create");
      start(c);
      pushEngine();
      return id;
    },

    async containerLogs(id, opts, on) {
      await delay(latency / 2);
      requireEngine();
      const c = find(id);
      const strip = (l: LogChunk): LogChunk => (opts.timestamps ? l : { ...l, timestamp: null });
      // backlog, in batches of 500 like a stream would deliver
      const backlog = (opts.tail != null ? c.logs.slice(-opts.tail) : c.logs).map(strip);
      for (let i = 0; i < backlog.length; i += 500) on(backlog.slice(i, i + 500));
      if (!opts.follow) return subscription(() => {});
      const follower = (l: LogChunk[]) => on(l.map(strip));
      let set = logFollowers.get(c.row.id);
      if (!set) logFollowers.set(c.row.id, (set = new Set()));
      set.add(follower);
      // a running container keeps talking while someone listens
      const samples = sampleFor(c.row.image);
      let n = 0;
      const timer = setInterval(() => {
        if (c.row.state !== "running") return;
        const line = samples[n++ % samples.length];
        appendLog(c, [line], line.startsWith("ERROR") || line.startsWith("WARN") ? "stderr" : "stdout");
      }, 1200);
      return subscription(() => {
        clearInterval(timer);
        set!.delete(follower);
      });
    },

    async containerStats(ids, on) {
      await delay(10);
      requireEngine();
      let tick = 0;
      const send = () => {
        tick++;
        for (const id of ids) {
          const c = containers.get(id);
          if (!c || c.row.state !== "running") continue;
          const wave = Math.sin((tick + c.cpuBase) / 4) * 0.5 + 0.5;
          const jitter = ((tick * 7919 + id.charCodeAt(7)) % 100) / 100;
          c.net.rx += Math.floor(2000 + jitter * 40000);
          c.net.tx += Math.floor(800 + wave * 12000);
          const sample: StatsSample = {
            id,
            time_ms: now(),
            cpu_percent: Math.max(0, c.cpuBase * (0.6 + wave * 0.8) + jitter * 2),
            memory_usage: Math.floor(c.memBase * (0.95 + wave * 0.1)),
            memory_limit: 8 * 1024 * 1024 * 1024,
            net_rx: c.net.rx,
            net_tx: c.net.tx,
            block_read: 12_400_000,
            block_write: 3_100_000 + tick * 4096,
            pids: 3 + (id.charCodeAt(4) % 20),
          };
          on(sample);
        }
      };
      const first = setTimeout(send, 50);
      const timer = setInterval(send, 1000);
      return subscription(() => {
        clearTimeout(first);
        clearInterval(timer);
      });
    },

    async execStart(req, on): Promise<ExecSession> {
      await delay();
      requireEngine();
      const c = find(req.container);
      if (c.row.state !== "running") throw appError("conflict", `Container ${c.row.name} is not running`);
      const shell = req.command.length ? req.command.join(" ") : c.row.image.includes("alpine") ? "/bin/sh" : "/bin/bash";
      const prompt = shell.includes("bash") ? `root@${c.row.id.slice(0, 12)}:/# ` : "/ # ";
      let line = "";
      let closed = false;
      let cols = req.cols;
      let rows = req.rows;
      const send = (s: string) => !closed && on({ kind: "data", data: b64(s) } as ExecEvent);
      setTimeout(() => send(prompt), 20);

      function run(cmdline: string): string | null {
        const [cmd, ...args] = cmdline.trim().split(/\s+/);
        switch (cmd) {
          case "":
            return "";
          case "echo":
            return args.join(" ") + "\r\n";
          case "whoami":
            return "root\r\n";
          case "hostname":
            return c.row.id.slice(0, 12) + "\r\n";
          case "pwd":
            return "/\r\n";
          case "ls":
            return "bin   dev   etc   home  lib   proc  root  sys   tmp   usr   var\r\n";
          case "stty":
            return `${rows} ${cols}\r\n`;
          case "env":
            return c.env.join("\r\n") + "\r\n";
          case "exit":
            return null;
          default:
            return `${shell.split("/").pop()}: ${cmd}: not found\r\n`;
        }
      }

      return {
        async input(data) {
          if (closed) throw appError("no_such_session", "the session has ended");
          for (const ch of data) {
            if (ch === "\r" || ch === "\n") {
              const out = run(line);
              line = "";
              if (out === null) {
                send("exit\r\n");
                closed = true;
                on({ kind: "exit", code: 0 } as unknown as ExecEvent);
                return;
              }
              send("\r\n" + out + prompt);
            } else if (ch === "\x7f") {
              if (line.length) {
                line = line.slice(0, -1);
                send("\b \b");
              }
            } else if (ch === "\x03") {
              line = "";
              send("^C\r\n" + prompt);
            } else if (ch >= " ") {
              line += ch;
              send(ch);
            }
          }
        },
        async resize(c2, r2) {
          cols = c2;
          rows = r2;
        },
        async close() {
          closed = true;
        },
      };
    },

    ...resources,
    ...compose,
    ...kube,
    ...vm.methods,
  };

  Object.defineProperty(b, "opened", { value: opened, enumerable: false });
  return b;
}

/** The URLs the mock was asked to open (tests read them). */
export function openedUrls(b: Backend): string[] {
  return (b as Backend & { opened?: string[] }).opened ?? [];
}
