// The Settings page's registry editing as pure functions (tested without a DOM): ordering
// mirrors, adding and removing registries and insecure entries, and the RegistrySettings
// that Save sends.

import type { Mirror } from "../../bindings/Mirror";
import type { RegistryMirrors } from "../../bindings/RegistryMirrors";
import type { RegistrySettings } from "../../bindings/RegistrySettings";
import { validateHostPort, validateInsecure, validateMirrorUrl } from "../../validate";

export const DOCKER_HUB = "docker.io";

/**
 * Moves the item at `from` so it lands before the item that was at `to` (0..length;
 * length = the end). Returns a new array; out-of-range moves return a copy unchanged.
 */
export function moveItem<T>(list: readonly T[], from: number, to: number): T[] {
  const out = [...list];
  if (from < 0 || from >= list.length || to < 0 || to > list.length) return out;
  const [item] = out.splice(from, 1);
  out.splice(to > from ? to - 1 : to, 0, item);
  return out;
}

/** docker.io first (added when missing), the others in the order given. */
export function withDockerHubFirst(registries: readonly RegistryMirrors[]): RegistryMirrors[] {
  const hub = registries.find((r) => r.registry === DOCKER_HUB) ?? { registry: DOCKER_HUB, mirrors: [] };
  return [hub, ...registries.filter((r) => r.registry !== DOCKER_HUB)];
}

/** Why `url` cannot be added to `mirrors`, or null. */
export function mirrorProblem(url: string, mirrors: readonly Mirror[]): string | null {
  const e = validateMirrorUrl(url);
  if (e) return e;
  const norm = (u: string) => u.replace(/\/+$/, "").toLowerCase();
  if (mirrors.some((m) => norm(m.url) === norm(url))) return "this mirror is already listed";
  return null;
}

/** Why a registry `host` cannot be added, or null. */
export function registryProblem(host: string, registries: readonly RegistryMirrors[]): string | null {
  const e = validateHostPort(host);
  if (e) return e;
  const h = host.toLowerCase();
  if (h === "index.docker.io" || h === "registry-1.docker.io" || h === "docker.io") return "Docker Hub is always listed (docker.io)";
  if (registries.some((r) => r.registry.toLowerCase() === h)) return `${host} is already listed`;
  return null;
}

/** Why `entry` cannot be added to the insecure list, or null. */
export function insecureProblem(entry: string, list: readonly string[]): string | null {
  const e = validateInsecure(entry);
  if (e) return e;
  if (list.includes(entry)) return "already listed";
  return null;
}

/** The settings Save sends: docker.io first, everything copied (no shared references). */
export function buildSettings(configPath: string, registries: readonly RegistryMirrors[], insecure: readonly string[]): RegistrySettings {
  return {
    config_path: configPath,
    registries: withDockerHubFirst(registries).map((r) => ({
      registry: r.registry,
      mirrors: r.mirrors.map((m) => ({ url: m.url, resolve_tags: m.resolve_tags })),
    })),
    insecure_registries: [...insecure],
  };
}

/** A new mirror resolves tags, as berthd's default for any registry's mirrors: a pull then
 * works from the mirror alone when the registry is down. Untick it for a mirror that must
 * only serve content the registry names. */
export function newMirror(_registry: string, url: string): Mirror {
  return { url, resolve_tags: true };
}
