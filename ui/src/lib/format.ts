// Formatting helpers shared by every page: sizes, times, ids, percentages.

const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

/** Docker-style decimal units: 0 B, 512 B, 1.2 MB, 13.4 GB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes <= 0) return "0 B";
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  // 3 significant digits like docker: 1.23 MB, 12.3 MB, 123 MB
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${trimZeros(s)} ${UNITS[i]}`;
}

/** Binary units for memory (docker stats shows MiB/GiB). */
export function formatMemory(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes <= 0) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${trimZeros(s)} ${units[i]}`;
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** A human duration like Docker's: "Less than a second", "5 seconds", "3 minutes", "2 hours", "4 days", "3 weeks", "5 months", "2 years". */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 1) return "less than a second";
  if (s < 60) return plural(s, "second");
  const m = Math.floor(s / 60);
  if (m < 60) return m === 1 ? "about a minute" : plural(m, "minute");
  const h = Math.floor(m / 60);
  if (h < 48) return h === 1 ? "about an hour" : plural(h, "hour");
  const d = Math.floor(h / 24);
  if (d < 14) return plural(d, "day");
  if (d < 60) return plural(Math.floor(d / 7), "week");
  if (d < 365 * 2) return plural(Math.floor(d / 30), "month");
  return plural(Math.floor(d / 365), "year");
}

/** "3 minutes ago", "just now"; for a unix-seconds time. */
export function formatAgo(unixSeconds: number, nowMs: number = Date.now()): string {
  if (!unixSeconds || unixSeconds <= 0) return "—";
  const diff = nowMs / 1000 - unixSeconds;
  if (diff < 0) return "just now";
  if (diff < 5) return "just now";
  const d = humanDuration(diff);
  return `${d} ago`;
}

/** Uptime since an RFC 3339 time (or unix seconds): "Up 3 minutes". Empty when unknown. */
export function formatUptime(since: string | number, nowMs: number = Date.now()): string {
  const t = typeof since === "number" ? since * 1000 : Date.parse(since);
  if (!Number.isFinite(t) || t <= 0) return "";
  return humanDuration((nowMs - t) / 1000);
}

/** Short hex id: no "sha256:" prefix, 12 characters. */
export function shortId(id: string): string {
  if (!id) return "";
  const i = id.indexOf(":");
  const hex = i >= 0 ? id.slice(i + 1) : id;
  return hex.slice(0, 12);
}

/** CPU percentage: "0.0%", "12.3%", "215%". */
export function formatPercent(p: number): string {
  if (!Number.isFinite(p) || p < 0) return "0.0%";
  return p >= 100 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
}

/** RFC 3339 → local "2024-05-01 13:45:12"; empty stays empty. */
export function formatDateTime(rfc3339: string): string {
  if (!rfc3339 || rfc3339.startsWith("0001-")) return "";
  const t = new Date(rfc3339);
  if (Number.isNaN(t.getTime())) return rfc3339;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

/** "0.0.0.0:8080→80/tcp" style text for one port binding. */
export function formatPort(p: { host_ip: string; host_port: number | null; container_port: number; protocol: string }): string {
  const proto = p.protocol && p.protocol !== "tcp" ? `/${p.protocol}` : "";
  if (p.host_port == null) return `${p.container_port}${proto || "/tcp"}`;
  return `${p.host_port}→${p.container_port}${proto}`;
}

/** An image reference without a default "docker.io/library/" prefix and ":latest" stays as given. */
export function shortImage(image: string): string {
  if (image.startsWith("sha256:")) return shortId(image);
  return image.replace(/^docker\.io\/(library\/)?/, "");
}
