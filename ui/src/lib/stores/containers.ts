// The containers list, refreshed from the engine's events (debounced), plus the pure helpers
// the Containers page uses to filter and group it.

import { backend } from "../backend";
import type { ContainerRow } from "../bindings/ContainerRow";
import { resourceStore } from "./resource";

declare global {
  interface Window {
    /** The list the app fetched while the window opened (src-tauri/src/prefetch.rs). */
    __BERTH_FIRST_LIST__?: ContainerRow[];
  }
}

/** The app's prefetched list, once, on a fresh load of the page (a reload, whose
 * initialization script still carries the list of start-up, fetches it instead). */
function takePrefetched(): ContainerRow[] | null {
  if (typeof window === "undefined") return null;
  const rows = window.__BERTH_FIRST_LIST__;
  if (!Array.isArray(rows)) return null;
  delete window.__BERTH_FIRST_LIST__;
  const nav = performance.getEntriesByType?.("navigation")[0] as PerformanceNavigationTiming | undefined;
  if (nav && nav.type !== "navigate") return null;
  return rows;
}

export const containers = resourceStore<ContainerRow>(async () => (await backend()).containersList(), ["container"]);

/** The first load: the app's prefetched list when there is one (synchronously, so that the
 * first frame already has the rows), else a call to the engine. */
export function loadFirst(): Promise<void> {
  const first = takePrefetched();
  // the app checks it against the engine once the event stream is open (a change found
  // comes as a container event, which reloads the store)
  if (first && containers.seed(first)) return Promise.resolve();
  return containers.ensure();
}

export type StateFilter = "all" | "running" | "stopped";

export function isUp(state: string): boolean {
  return state === "running" || state === "paused" || state === "restarting";
}

export function matches(c: ContainerRow, query: string, filter: StateFilter): boolean {
  if (filter === "running" && !isUp(c.state)) return false;
  if (filter === "stopped" && isUp(c.state)) return false;
  const q = query.trim().toLowerCase();
  if (!q) return true;
  return (
    c.name.toLowerCase().includes(q) ||
    c.image.toLowerCase().includes(q) ||
    c.id.startsWith(q) ||
    (c.project ?? "").toLowerCase().includes(q) ||
    c.ports.some((p) => String(p.host_port ?? "") === q || String(p.container_port) === q)
  );
}

/** One line of the (virtualised) table: a compose project's header or a container. */
export type ListItem =
  | { kind: "group"; project: string; count: number; running: number; collapsed: boolean; ids: string[] }
  | { kind: "container"; row: ContainerRow; grouped: boolean };

/**
 * Compose projects first (alphabetical, each a header followed by its containers unless
 * collapsed), then the containers without a project, newest first as the engine lists them.
 */
export function buildItems(rows: ContainerRow[], collapsed: ReadonlySet<string>): ListItem[] {
  const groups = new Map<string, ContainerRow[]>();
  const loose: ContainerRow[] = [];
  for (const r of rows) {
    if (r.project) {
      let g = groups.get(r.project);
      if (!g) groups.set(r.project, (g = []));
      g.push(r);
    } else loose.push(r);
  }
  const out: ListItem[] = [];
  for (const project of [...groups.keys()].sort((a, b) => a.localeCompare(b))) {
    const members = groups.get(project)!.sort((a, b) => (a.service ?? a.name).localeCompare(b.service ?? b.name));
    const isCollapsed = collapsed.has(project);
    out.push({
      kind: "group",
      project,
      count: members.length,
      running: members.filter((m) => m.state === "running").length,
      collapsed: isCollapsed,
      ids: members.map((m) => m.id),
    });
    if (!isCollapsed) for (const row of members) out.push({ kind: "container", row, grouped: true });
  }
  for (const row of loose) out.push({ kind: "container", row, grouped: false });
  return out;
}

/** The sorted ids of the running containers (the stats subscription's key). */
export function runningIds(rows: ContainerRow[]): string[] {
  return rows
    .filter((r) => r.state === "running")
    .map((r) => r.id)
    .sort();
}
