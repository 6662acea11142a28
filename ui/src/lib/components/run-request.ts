// The Run dialog's form → a RunRequest, with the checks a user needs before the engine is asked.

import type { RunRequest } from "../bindings/RunRequest";

export interface RunForm {
  image: string;
  name: string;
  ports: { host: string; container: string; protocol: string }[];
  volumes: { source: string; target: string; readOnly: boolean }[];
  /** KEY=value lines (blank rows are ignored). */
  env: string[];
  network: string;
  restart: string;
  command: string;
  autoRemove: boolean;
}

function port(s: string): number | null | "bad" {
  const t = s.trim();
  if (t === "") return null;
  if (!/^\d+$/.test(t)) return "bad";
  const n = Number(t);
  return n >= 1 && n <= 65535 ? n : "bad";
}

export function buildRunRequest(f: RunForm): { request: RunRequest } | { error: string } {
  const image = f.image.trim();
  if (!image) return { error: "Enter an image to run, e.g. nginx:alpine." };
  if (/\s/.test(image)) return { error: "An image reference cannot contain spaces." };
  const name = f.name.trim();
  if (name && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name))
    return { error: "A container name may use letters, digits, '_', '.', '-' and must start with a letter or digit." };

  const ports: RunRequest["ports"] = [];
  for (const p of f.ports) {
    if (p.host.trim() === "" && p.container.trim() === "") continue;
    const c = port(p.container);
    const h = port(p.host);
    if (c === null || c === "bad") return { error: `Container port "${p.container}" must be a number from 1 to 65535.` };
    if (h === "bad") return { error: `Host port "${p.host}" must be a number from 1 to 65535 (or empty for any).` };
    ports.push({ host_ip: "", host_port: h, container_port: c, protocol: p.protocol || "tcp" });
  }

  const volumes: RunRequest["volumes"] = [];
  for (const v of f.volumes) {
    const source = v.source.trim();
    const target = v.target.trim();
    if (!source && !target) continue;
    if (!target.startsWith("/")) return { error: `Mount target "${target}" must be an absolute path in the container.` };
    volumes.push({ source, target, read_only: v.readOnly });
  }

  const env: string[] = [];
  for (const line of f.env) {
    const t = line.trim();
    if (!t) continue;
    const key = t.split("=")[0];
    if (!key || /\s/.test(key)) return { error: `"${t}" is not KEY=value.` };
    env.push(t);
  }

  return {
    request: {
      image,
      name,
      ports,
      volumes,
      env,
      network: f.network,
      restart: f.restart || "no",
      command: f.command.trim(),
      auto_remove: f.autoRemove,
    },
  };
}
