// The Compose page's state: the projects the engine knows (refreshed from its events, like
// every resource store) merged with the ones opened here (remembered in localStorage, as the
// app keeps its other settings), and the pure helpers the page uses: the services table,
// the progress of an operation, the merged log and the .env editor's overrides.

import { writable } from "svelte/store";
import { backend } from "../backend";
import type { ComposeContainer } from "../bindings/ComposeContainer";
import type { ComposeEvent } from "../bindings/ComposeEvent";
import type { ComposeLogLine } from "../bindings/ComposeLogLine";
import type { ComposeProjectInfo } from "../bindings/ComposeProjectInfo";
import type { ComposeProjectSummary } from "../bindings/ComposeProjectSummary";
import type { ComposeTarget } from "../bindings/ComposeTarget";
import type { EngineEvent } from "../bindings/EngineEvent";
import type { EnvEntry } from "../bindings/EnvEntry";
import type { PortBinding } from "../bindings/PortBinding";
import { onEngineEvent } from "./events";
import { resourceStore } from "./resource";

export const PROJECT_LABEL = "com.docker.compose.project";

/** Projects the engine has containers of (docker compose ls -a). */
export const composeProjects = resourceStore<ComposeProjectSummary>(async () => (await backend()).composeProjects(), ["container"]);
onEngineEvent((e) => composeProjects.onEvent(e));

// ---------------------------------------------------------------- remembered projects

export const REMEMBER_KEY = "berth.compose.projects";

/** A project opened in the app: its name and the files it was read from. */
export interface Remembered {
  name: string;
  files: string[];
}

function readRemembered(): Remembered[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(REMEMBER_KEY) ?? "[]");
    if (!Array.isArray(v)) return [];
    return v.filter(
      (r): r is Remembered =>
        typeof r === "object" && r !== null && typeof r.name === "string" && Array.isArray(r.files) && r.files.every((f: unknown) => typeof f === "string"),
    );
  } catch {
    return [];
  }
}

export const remembered = writable<Remembered[]>(readRemembered());

function save(list: Remembered[]): void {
  remembered.set(list);
  try {
    localStorage.setItem(REMEMBER_KEY, JSON.stringify(list));
  } catch {
    // private mode: remembered for this session only
  }
}

/** Remembers (or updates) a project opened here; the newest first. */
export function remember(r: Remembered): void {
  const list = readRememberedNow().filter((x) => x.name !== r.name);
  save([{ name: r.name, files: [...r.files] }, ...list]);
}

export function forget(name: string): void {
  save(readRememberedNow().filter((x) => x.name !== name));
}

/** Re-reads localStorage (another window, or a test, may have changed it). */
export function reloadRemembered(): void {
  remembered.set(readRemembered());
}

function readRememberedNow(): Remembered[] {
  let v: Remembered[] = [];
  remembered.subscribe((x) => (v = x))();
  return v;
}

/** One entry of the page's project list. */
export interface ProjectEntry {
  name: string;
  /** The files to load it from (the remembered ones, else the engine's labels). */
  files: string[];
  workingDir: string;
  running: number;
  total: number;
  /** `running(2), exited(1)`; empty when it has no containers. */
  status: string;
  /** Whether the engine has containers of it. */
  inEngine: boolean;
  /** Whether it was opened in the app (remembered). */
  opened: boolean;
}

/** The engine's projects and the remembered ones, by name, alphabetical. */
export function mergeProjects(engine: ComposeProjectSummary[], mine: Remembered[]): ProjectEntry[] {
  const out = new Map<string, ProjectEntry>();
  for (const p of engine)
    out.set(p.name, {
      name: p.name,
      files: p.config_files,
      workingDir: p.working_dir,
      running: p.running,
      total: p.total,
      status: p.status,
      inEngine: true,
      opened: false,
    });
  for (const r of mine) {
    const e = out.get(r.name);
    const dir = r.files[0] ? r.files[0].replace(/\/[^/]*$/, "") || "/" : "";
    if (e) out.set(r.name, { ...e, files: r.files.length ? r.files : e.files, opened: true });
    else out.set(r.name, { name: r.name, files: r.files, workingDir: dir, running: 0, total: 0, status: "", inEngine: false, opened: true });
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** What the commands load the project from: its files, its name, and env overrides. */
export function targetOf(p: { name: string; files: string[] }, environment: Record<string, string> = {}): ComposeTarget {
  return { files: p.files, project_name: p.name, environment };
}

// ---------------------------------------------------------------- services table

export interface ServiceRow {
  service: string;
  image: string;
  /** running | partial | exited | created | paused | restarting | missing (no container). */
  state: string;
  /** The first container's status text, or what is true of the service. */
  status: string;
  /** healthy | unhealthy | starting, when a container reports it (the worst wins). */
  health: string | null;
  ports: PortBinding[];
  running: number;
  containers: number;
  /** The file's replicas (the containers' count when the file is not known). */
  replicas: number;
  /** Has a build section: Rebuild builds it. */
  build: boolean;
  /** In the file (false: only its containers are known, e.g. the file is gone). */
  declared: boolean;
}

const HEALTH_RANK: Record<string, number> = { unhealthy: 3, starting: 2, healthy: 1 };

/** One row per service: the file's services, plus any a container names that the file
 * does not (a renamed service, a project whose file is gone). */
export function serviceRows(info: ComposeProjectInfo | null, containers: ComposeContainer[]): ServiceRow[] {
  const by = new Map<string, ComposeContainer[]>();
  for (const c of containers) by.set(c.service, [...(by.get(c.service) ?? []), c]);
  const names = new Set<string>([...(info?.services.map((s) => s.name) ?? []), ...by.keys()]);
  return [...names]
    .sort((a, b) => a.localeCompare(b))
    .map((service) => {
      const decl = info?.services.find((s) => s.name === service);
      const cs = (by.get(service) ?? []).sort((a, b) => a.number - b.number);
      const running = cs.filter((c) => c.state === "running").length;
      let state: string;
      if (cs.length === 0) state = "missing";
      else if (running === cs.length) state = "running";
      else if (running > 0) state = "partial";
      else if (cs.some((c) => c.state === "restarting")) state = "restarting";
      else if (cs.some((c) => c.state === "paused")) state = "paused";
      else if (cs.every((c) => c.state === "created")) state = "created";
      else state = "exited";
      let health: string | null = null;
      for (const c of cs) if (c.health && (HEALTH_RANK[c.health] ?? 0) > (HEALTH_RANK[health ?? ""] ?? 0)) health = c.health;
      const ports: PortBinding[] = [];
      const seen = new Set<string>();
      for (const c of cs)
        for (const p of c.ports) {
          const k = `${p.host_port}/${p.container_port}/${p.protocol}`;
          if (!seen.has(k)) {
            seen.add(k);
            ports.push(p);
          }
        }
      return {
        service,
        image: cs[0]?.image ?? decl?.image ?? (decl?.build ? "(built)" : ""),
        state,
        status: cs.length === 0 ? "Not created" : cs[0].status,
        health,
        ports,
        running,
        containers: cs.length,
        replicas: decl?.replicas ?? cs.length,
        build: decl?.build ?? false,
        declared: decl !== undefined,
      };
    });
}

/** Whether an engine event may change this project's containers. */
export function concernsProject(e: EngineEvent, project: string): boolean {
  if (e.kind === "engine") return true;
  if (e.kind !== "container") return false;
  const p = e.attributes[PROJECT_LABEL];
  // an engine that does not send labels with its events: any container change may be ours
  return p === undefined || p === project;
}

// ---------------------------------------------------------------- operations

export type OpKind = "up" | "down" | "restart" | "stop" | "rebuild";

export interface ResourceProgress {
  resource: string;
  name: string;
  status: string;
  done: boolean;
}

export interface OpState {
  kind: OpKind;
  /** "Up", "Restart web"... */
  label: string;
  phase: "running" | "done" | "error";
  started: number;
  ended: number | null;
  /** In the order they first appeared; each with its latest status. */
  resources: ResourceProgress[];
  /** Build output, pull status lines and warnings. */
  lines: { kind: "build" | "pull" | "warning"; service: string; text: string }[];
  error: string | null;
}

export function startOp(kind: OpKind, label: string, now: number): OpState {
  return { kind, label, phase: "running", started: now, ended: null, resources: [], lines: [], error: null };
}

const MAX_OP_LINES = 2000;

export function applyComposeEvent(s: OpState, e: ComposeEvent): OpState {
  switch (e.kind) {
    case "resource": {
      const i = s.resources.findIndex((r) => r.resource === e.resource && r.name === e.name);
      const r = { resource: e.resource, name: e.name, status: e.status, done: e.done };
      const resources = i < 0 ? [...s.resources, r] : s.resources.map((x, j) => (j === i ? r : x));
      return { ...s, resources };
    }
    case "build":
      return { ...s, lines: [...s.lines, { kind: "build" as const, service: e.service, text: e.line }].slice(-MAX_OP_LINES) };
    case "pull":
      return { ...s, lines: [...s.lines, { kind: "pull" as const, service: e.service, text: e.status }].slice(-MAX_OP_LINES) };
    case "warning":
      return { ...s, lines: [...s.lines, { kind: "warning" as const, service: "", text: e.message }].slice(-MAX_OP_LINES) };
  }
}

export function finishOp(s: OpState, now: number, error: string | null = null): OpState {
  return { ...s, phase: error === null ? "done" : "error", ended: now, error };
}

// ---------------------------------------------------------------- logs

export const MAX_LOG_LINES = 5000;

export interface LogRow {
  /** Increasing: a stable key for the list. */
  seq: number;
  line: ComposeLogLine;
}

export function appendLogs(rows: LogRow[], batch: ComposeLogLine[], nextSeq: number, max = MAX_LOG_LINES): LogRow[] {
  const added = batch.map((line, i) => ({ seq: nextSeq + i, line }));
  const all = rows.concat(added);
  return all.length > max ? all.slice(all.length - max) : all;
}

export const SERVICE_COLOURS = 8;

/** The colour slot of a service: its place among the project's services (stable while the
 * file does not change), so `web` keeps its colour across reloads. */
export function serviceColour(service: string, services: string[]): number {
  const sorted = [...new Set(services)].sort((a, b) => a.localeCompare(b));
  const i = sorted.indexOf(service);
  if (i >= 0) return i % SERVICE_COLOURS;
  let h = 0;
  for (const ch of service) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % SERVICE_COLOURS;
}

/** `web-1`, or `web-2` for a second replica (the prefix of a merged log line). */
export function logPrefix(l: ComposeLogLine): string {
  return l.service ? `${l.service}-${l.number || 1}` : "compose";
}

// ---------------------------------------------------------------- .env editor

export interface EnvRow {
  key: string;
  value: string;
}

/** The editor's values to pass to an Up: rows whose value differs from the file's, and
 * rows the file does not have. Rows without a key are left out. */
export function envOverrides(file: EnvEntry[], rows: EnvRow[]): Record<string, string> {
  const base = new Map(file.map((e) => [e.key, e.value]));
  const out: Record<string, string> = {};
  for (const r of rows) {
    const k = r.key.trim();
    if (!k) continue;
    if (base.get(k) !== r.value) out[k] = r.value;
  }
  return out;
}

/** Whether the editor differs from the file (a row changed, added or removed). */
export function envDirty(file: EnvEntry[], rows: EnvRow[]): boolean {
  const kept = rows.filter((r) => r.key.trim() !== "");
  if (kept.length !== file.length) return true;
  return kept.some((r, i) => r.key.trim() !== file[i].key || r.value !== file[i].value);
}

/** What is wrong with the editor's rows, by index (a bad or repeated key). */
export function envProblems(rows: EnvRow[]): (string | null)[] {
  const seen = new Set<string>();
  return rows.map((r) => {
    const k = r.key.trim();
    if (k === "") return r.value === "" ? null : "name the variable";
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k)) return "letters, digits and _ only, not starting with a digit";
    if (seen.has(k)) return `${k} is already set above`;
    seen.add(k);
    return null;
  });
}

// ---------------------------------------------------------------- errors

/** A load error's `file:line:col: message` split, for showing where the problem is. */
export function splitLoadError(message: string): { file: string; line: number; column: number | null; message: string } | null {
  const m = /^(\/[^\n]*?):(\d+)(?::(\d+))?: ([\s\S]*)$/.exec(message);
  if (!m) return null;
  return { file: m[1], line: Number(m[2]), column: m[3] ? Number(m[3]) : null, message: m[4] };
}
