// Input checks the pages run as the user types. Each returns null when the value is fine,
// else a short sentence saying why it is not (shown next to the field). Values are checked
// as typed: nothing is trimmed or normalised first.

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A dotted-quad IPv4 address; returns its 32-bit value, or null. */
export function parseIpv4(s: string): number | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v;
}

function ipv4String(v: number): string {
  return [24, 16, 8, 0].map((sh) => Math.floor(v / 2 ** sh) % 256).join(".");
}

function isIpv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(":")) return false;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const all = halves.flatMap(groups);
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i];
    if (i === all.length - 1 && g.includes(".")) {
      if (parseIpv4(g) === null) return false;
      count += 2;
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) count += 1;
    else return false;
  }
  return halves.length === 2 ? count < 8 : count === 8;
}

function hostError(host: string): string | null {
  if (host === "") return "the host is missing";
  if (host.startsWith("[")) {
    if (!host.endsWith("]") || !isIpv6(host.slice(1, -1))) return `"${host}" is not a valid IPv6 address`;
    return null;
  }
  if (/^[0-9.]+$/.test(host)) return parseIpv4(host) === null ? `"${host}" is not a valid IPv4 address` : null;
  if (host.length > 253) return "the host name is too long";
  for (const label of host.split(".")) {
    if (!LABEL.test(label)) return `"${host}" is not a valid host name`;
  }
  return null;
}

function portError(port: string): string | null {
  if (!/^[0-9]{1,5}$/.test(port)) return `the port "${port}" is not a number`;
  const n = Number(port);
  if (n < 1 || n > 65535) return `the port ${n} is out of range (1–65535)`;
  return null;
}

/** Splits `host[:port]` (IPv6 in brackets); null when the shape is wrong. */
function splitHostPort(s: string): { host: string; port: string | null } | null {
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) return null;
    const rest = s.slice(end + 1);
    if (rest === "") return { host: s, port: null };
    if (!rest.startsWith(":")) return null;
    return { host: s.slice(0, end + 1), port: rest.slice(1) };
  }
  const i = s.lastIndexOf(":");
  if (i < 0) return { host: s, port: null };
  if (s.indexOf(":") !== i) return null;
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}

/** `host[:port]`, as a registry is named (`docker.io`, `registry.local:5000`, `127.0.0.1:5000`). */
export function validateHostPort(s: string): string | null {
  if (s === "") return "enter a host, e.g. registry.example.com:5000";
  if (/\s/.test(s)) return "must not contain spaces";
  if (s.includes("/")) return "a registry is host[:port], without a scheme or path";
  const hp = splitHostPort(s);
  if (!hp) return `"${s}" is not host[:port]`;
  return hostError(hp.host) ?? (hp.port !== null ? portError(hp.port) : null);
}

/**
 * A mirror's base URL: `http(s)://host[:port][/path]`, no spaces, no user, query or
 * fragment.
 */
export function validateMirrorUrl(s: string): string | null {
  if (s === "") return "enter a URL, e.g. https://mirror.example.com";
  if (/\s/.test(s)) return "must not contain spaces";
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(s);
  if (!m) return "must start with http:// or https://";
  if (m[1] !== "http" && m[1] !== "https") return `the scheme must be http or https, not "${m[1]}"`;
  const rest = m[2];
  if (rest.includes("?")) return "must not have a query (?…)";
  if (rest.includes("#")) return "must not have a fragment (#…)";
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (authority.includes("@")) return "must not contain a user name or password";
  if (authority === "") return "the host is missing";
  const hp = splitHostPort(authority);
  if (!hp) return `"${authority}" is not host[:port]`;
  const he = hostError(hp.host);
  if (he) return he;
  if (hp.port !== null) {
    const pe = portError(hp.port);
    if (pe) return pe;
  }
  if (path !== "" && !/^(\/[A-Za-z0-9._~%!$&'()*+,;=:@-]*)+$/.test(path)) return `the path "${path}" has characters a URL cannot have`;
  if (path.includes("//")) return "the path has an empty segment (//)";
  return null;
}

export interface Cidr {
  base: number;
  prefix: number;
}

/** An IPv4 CIDR (`10.1.0.0/16`), or null. */
export function parseCidr(s: string): Cidr | null {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s);
  if (!m) return null;
  const base = parseIpv4(m[1]);
  const prefix = Number(m[2]);
  if (base === null || prefix > 32 || (m[2].length > 1 && m[2].startsWith("0"))) return null;
  return { base, prefix };
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff - (2 ** (32 - prefix) - 1)) >>> 0;
}

/** A subnet for a network: an IPv4 CIDR whose host bits are zero. */
export function validateSubnet(s: string): string | null {
  if (s === "") return null;
  if (/\s/.test(s)) return "must not contain spaces";
  if (!s.includes("/")) return "add the prefix length, e.g. 10.10.0.0/24";
  const c = parseCidr(s);
  if (!c) {
    const [addr, len] = s.split("/");
    if (parseIpv4(addr) === null) return `"${addr}" is not an IPv4 address`;
    return `the prefix length "${len}" must be 0–32`;
  }
  if (c.prefix < 8 || c.prefix > 30) return "the prefix length must be between /8 and /30";
  const net = (c.base & maskOf(c.prefix)) >>> 0;
  if (net !== c.base) return `host bits are set: did you mean ${ipv4String(net)}/${c.prefix}?`;
  return null;
}

/** An optional gateway: an IPv4 address, inside `subnet` when one is given. */
export function validateGateway(gateway: string, subnet: string): string | null {
  if (gateway === "") return null;
  const g = parseIpv4(gateway);
  if (g === null) return `"${gateway}" is not an IPv4 address`;
  if (subnet === "") return "a gateway needs a subnet";
  const c = parseCidr(subnet);
  if (!c || validateSubnet(subnet)) return null; // the subnet's own message is shown
  const mask = maskOf(c.prefix);
  if (((g & mask) >>> 0) !== c.base) return `${gateway} is not inside ${subnet}`;
  const broadcast = (c.base | (~mask >>> 0)) >>> 0;
  if (g === c.base || g === broadcast) return `${gateway} is the subnet's ${g === c.base ? "network" : "broadcast"} address`;
  return null;
}

/** An insecure registry: `host[:port]` or a CIDR (`10.0.0.0/8`). */
export function validateInsecure(s: string): string | null {
  if (s === "") return "enter host[:port] or a CIDR";
  if (/\s/.test(s)) return "must not contain spaces";
  if (s.includes("://")) return "without the scheme: host[:port] or a CIDR";
  if (s.includes("/")) {
    const c = parseCidr(s);
    if (!c) return `"${s}" is not a valid CIDR (e.g. 192.168.0.0/16)`;
    return null;
  }
  return validateHostPort(s);
}

/** Volume and network names: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. */
export function validateName(s: string, what = "name"): string | null {
  if (s === "") return `enter a ${what}`;
  if (/\s/.test(s)) return "must not contain spaces";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]+$/.test(s)) {
    if (s.length < 2) return `a ${what} needs at least 2 characters`;
    return `letters, digits, "_", "." and "-" only, starting with a letter or digit`;
  }
  return null;
}

export interface Reference {
  /** `docker.io` or `host[:port]`. */
  registry: string;
  /** As `docker images` shows it: `busybox`, `user/app`, `127.0.0.1:5000/app`. */
  repository: string;
  tag: string;
  digest: string | null;
}

/** Parses an image reference like the engine does; null when it is not one. */
export function parseReference(s: string): Reference | null {
  if (s === "" || /\s/.test(s)) return null;
  let rest = s;
  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return null;
  }
  let tag = "latest";
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) return null;
  }
  const parts = rest.split("/");
  let registry = "docker.io";
  if (parts.length > 1 && (parts[0].includes(".") || parts[0].includes(":") || parts[0] === "localhost")) {
    registry = parts.shift()!;
    if (validateHostPort(registry)) return null;
  }
  if (parts.length === 0) return null;
  for (const p of parts) {
    if (!/^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/.test(p)) return null;
  }
  let path = parts.join("/");
  if (registry === "docker.io" && path.startsWith("library/")) path = path.slice("library/".length);
  const repository = registry === "docker.io" ? path : `${registry}/${path}`;
  return { registry, repository, tag, digest };
}

/** Why `s` is not an image reference, or null. */
export function validateReference(s: string): string | null {
  if (s === "") return "enter an image, e.g. alpine:3.20";
  if (/\s/.test(s)) return "must not contain spaces";
  if (parseReference(s)) return null;
  if (parseReference(s.toLowerCase())) return "repository names must be lowercase";
  return `"${s}" is not a valid image reference`;
}
