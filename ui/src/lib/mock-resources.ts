// The in-memory images, volumes, networks and registry settings of the mock backend
// (mock.ts spreads this in). Changes emit the EngineEvents the real engine would send, so
// the stores refresh the same way; failures reject with AppError objects like the
// Tauri commands do.

import type { Backend } from "./backend";
import type { AppError } from "./bindings/AppError";
import type { BuildEvent } from "./bindings/BuildEvent";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { HistoryRow } from "./bindings/HistoryRow";
import type { ImageRow } from "./bindings/ImageRow";
import type { NetworkRow } from "./bindings/NetworkRow";
import type { ProbeResult } from "./bindings/ProbeResult";
import type { ProgressEvent } from "./bindings/ProgressEvent";
import type { PullRecord } from "./bindings/PullRecord";
import type { RegistrySettings } from "./bindings/RegistrySettings";
import type { VolumeRow } from "./bindings/VolumeRow";
import {
  parseCidr,
  parseIpv4,
  parseReference,
  validateGateway,
  validateHostPort,
  validateInsecure,
  validateMirrorUrl,
  validateName,
  validateSubnet,
} from "./validate";

export type ResourceMethods =
  | "imagesList"
  | "imagePull"
  | "imagePush"
  | "imageTag"
  | "imageRemove"
  | "imagesPrune"
  | "imageHistory"
  | "imageInspect"
  | "registryLogin"
  | "imageBuild"
  | "dirList"
  | "volumesList"
  | "volumeCreate"
  | "volumeRemove"
  | "volumesPrune"
  | "networksList"
  | "networkCreate"
  | "networkRemove"
  | "networkConnect"
  | "networkDisconnect"
  | "networksPrune"
  | "registrySettings"
  | "saveRegistrySettings"
  | "probeEndpoint"
  | "pullRecords";

export interface MockResourceOptions {
  /** Multiplies every simulated delay (0 in tests: everything on the next tick). */
  speed?: number;
  /**
   * The containers of the rest of the mock, when it has some: image "in use" counts and
   * network members' ids follow them. Without it the seeded counts are used.
   */
  containers?: () => { id: string; name: string; image: string }[];
}

function fail(code: ErrorCode, message: string): AppError {
  return { code, message };
}

/** A deterministic hex string from a seed (FNV-1a, stretched). */
export function fakeHex(seed: string, len = 64): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  let out = "";
  let i = 0;
  while (out.length < len) {
    h = Math.imul(h ^ (i + 0x9e), 0x01000193) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    out += h.toString(16).padStart(8, "0");
    i++;
  }
  return out.slice(0, len);
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const nowS = () => Math.floor(Date.now() / 1000);
const MB = 1024 * 1024;

interface MockImage {
  id: string;
  /** `repository:tag` references pointing at it (empty: dangling). */
  refs: string[];
  size: number;
  created: number;
  containers: number;
  layers: { created_by: string; size: number }[];
}

interface Seed {
  ref: string;
  size: number;
  age: number;
  containers: number;
  layers: [string, number][];
}

const generic = (base: string, baseSize: number, app: [string, number][]): [string, number][] => [
  [`ADD file:${fakeHex(base, 16)} in / `, baseSize],
  ...app,
];

const SEEDS: Seed[] = [
  {
    ref: "nginx:1.27-alpine",
    size: 47.9 * MB,
    age: 86400 * 30,
    containers: 2,
    layers: generic("alpine", 7.8 * MB, [
      ["ENV NGINX_VERSION=1.27.2", 0],
      ["RUN /bin/sh -c set -x && addgroup -g 101 -S nginx && apk add --no-cache nginx", 39.6 * MB],
      ["COPY docker-entrypoint.sh / ", 0.5 * MB],
      ["EXPOSE 80/tcp", 0],
      ['CMD ["nginx" "-g" "daemon off;"]', 0],
    ]),
  },
  {
    ref: "ghcr.io/acme/shop-api:1.8.2",
    size: 182 * MB,
    age: 86400 * 4,
    containers: 2,
    layers: generic("debian", 74.8 * MB, [
      ["RUN /bin/sh -c apt-get update && apt-get install -y nodejs", 88.1 * MB],
      ["WORKDIR /app", 0],
      ["COPY . /app", 19.1 * MB],
      ['CMD ["node" "server.js"]', 0],
    ]),
  },
  {
    ref: "postgres:16-alpine",
    size: 251 * MB,
    age: 86400 * 21,
    containers: 1,
    layers: generic("alpine", 7.8 * MB, [
      ["ENV PG_MAJOR=16", 0],
      ["RUN /bin/sh -c set -eux; apk add --no-cache --virtual .build-deps ...; make world-bin; make install-world-bin", 243 * MB],
      ["VOLUME [/var/lib/postgresql/data]", 0],
      ['ENTRYPOINT ["docker-entrypoint.sh"]', 0],
      ['CMD ["postgres"]', 0],
    ]),
  },
  { ref: "redis:7", size: 117 * MB, age: 86400 * 16, containers: 1, layers: generic("debian", 74.8 * MB, [["RUN /bin/sh -c set -eux; make -C /usr/src/redis install", 42.2 * MB], ['CMD ["redis-server"]', 0]]) },
  {
    ref: "prom/prometheus:v2.53.0",
    size: 272 * MB,
    age: 86400 * 120,
    containers: 1,
    layers: generic("busybox", 4.3 * MB, [["COPY prometheus promtool /bin/", 267.7 * MB], ["EXPOSE 9090/tcp", 0], ['ENTRYPOINT ["/bin/prometheus"]', 0]]),
  },
  { ref: "postgres:15", size: 425 * MB, age: 86400 * 45, containers: 1, layers: generic("debian", 74.8 * MB, [["RUN /bin/sh -c apt-get install -y postgresql-15", 350.2 * MB], ['CMD ["postgres"]', 0]]) },
  { ref: "alpine:3.20", size: 7.8 * MB, age: 86400 * 50, containers: 1, layers: [["ADD alpine-minirootfs-3.20.3-x86_64.tar.gz / ", 7.8 * MB], ['CMD ["/bin/sh"]', 0]] },
  { ref: "busybox:latest", size: 4.3 * MB, age: 86400 * 40, containers: 0, layers: [["ADD file:7e9002edaafd4e45 in / ", 4.3 * MB], ['CMD ["sh"]', 0]] },
  {
    ref: "python:3.12-slim",
    size: 130 * MB,
    age: 86400 * 9,
    containers: 0,
    layers: [
      ["ADD file:d13afefcc2b0b02b in / ", 74.8 * MB],
      ["ENV LANG=C.UTF-8", 0],
      ["RUN /bin/sh -c set -eux; apt-get update; apt-get install -y --no-install-recommends ca-certificates netbase tzdata", 9.2 * MB],
      ["ENV PYTHON_VERSION=3.12.7", 0],
      ["RUN /bin/sh -c set -eux; ./configure --enable-optimizations; make -j; make install", 45.9 * MB],
      ['CMD ["python3"]', 0],
    ],
  },
  {
    ref: "postgres:16",
    size: 432 * MB,
    age: 86400 * 21,
    containers: 0,
    layers: generic("debian", 97.1 * MB, [
      ["RUN /bin/sh -c set -eux; groupadd -r postgres --gid=999; useradd -r -g postgres --uid=999 postgres", 0.3 * MB],
      ["ENV PG_MAJOR=16", 0],
      ["RUN /bin/sh -c set -ex; apt-get update; apt-get install -y postgresql-common postgresql-16", 334.6 * MB],
      ["VOLUME [/var/lib/postgresql/data]", 0],
      ['CMD ["postgres"]', 0],
    ]),
  },
  {
    ref: "127.0.0.1:5000/app:dev",
    size: 58 * MB,
    age: 3600 * 5,
    containers: 0,
    layers: [
      ["FROM alpine:3.20", 7.8 * MB],
      ["COPY dist/ /srv/app/", 50.2 * MB],
      ["EXPOSE 8080/tcp", 0],
      ['CMD ["/srv/app/server"]', 0],
    ],
  },
  { ref: "", size: 58 * MB, age: 86400 * 2, containers: 0, layers: [["COPY dist/ /srv/app/", 58 * MB]] },
];

function splitRef(ref: string): { repository: string; tag: string } {
  const i = ref.lastIndexOf(":");
  if (i < 0 || ref.slice(i).includes("/")) return { repository: ref, tag: "latest" };
  return { repository: ref.slice(0, i), tag: ref.slice(i + 1) };
}

/** `busybox` → `busybox:latest`; null when it is not a reference. */
function canonical(ref: string): string | null {
  const r = parseReference(ref);
  return r ? `${r.repository}:${r.tag}` : null;
}

export function mockResources(emit: (e: EngineEvent) => void, opts: MockResourceOptions = {}): Pick<Backend, ResourceMethods> {
  const speed = opts.speed ?? 1;
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms * speed));
  const event = (kind: string, action: string, id: string, attributes: Record<string, string> = {}) =>
    emit({ kind, action, id, attributes, time_ms: Date.now() });

  // --- images -------------------------------------------------------------------------
  const images: MockImage[] = SEEDS.map((s, i) => ({
    id: `sha256:${fakeHex(s.ref || `dangling-${i}`)}`,
    refs: s.ref ? [s.ref] : [],
    size: Math.round(s.size),
    created: nowS() - s.age,
    containers: s.containers,
    layers: s.layers.map(([created_by, size]) => ({ created_by, size: Math.round(size) })),
  }));
  const logins = new Set<string>();
  /** What the mock's build cache holds (folder, Dockerfile, args, target). */
  const builds = new Set<string>();

  function findImage(idOrRef: string): MockImage | undefined {
    const id = idOrRef.startsWith("sha256:") ? idOrRef : `sha256:${idOrRef}`;
    const byId = images.find((im) => im.id === id || (idOrRef.length >= 12 && im.id.startsWith(id)));
    if (byId) return byId;
    const c = canonical(idOrRef);
    return c ? images.find((im) => im.refs.includes(c)) : undefined;
  }

  /** How many containers use `im`. */
  function usage(im: MockImage): number {
    if (!opts.containers) return im.containers;
    return opts.containers().filter((c) => c.image === im.id || im.refs.includes(canonical(c.image) ?? "")).length;
  }

  function rows(): ImageRow[] {
    const out: ImageRow[] = [];
    for (const im of images) {
      const base = { id: im.id, size: im.size, created: im.created, containers: usage(im) };
      if (im.refs.length === 0) out.push({ ...base, repository: "<none>", tag: "<none>", digests: [] });
      for (const ref of im.refs) {
        const { repository, tag } = splitRef(ref);
        const digests = repository.includes("/") && repository.includes(":") ? [] : [`${repository}@sha256:${fakeHex(`digest ${ref}`)}`];
        out.push({ ...base, repository, tag, digests });
      }
    }
    return out;
  }

  // --- pull records and registry settings ---------------------------------------------
  let settings: RegistrySettings = {
    config_path: "/etc/berth/daemon.json",
    registries: [
      {
        registry: "docker.io",
        mirrors: [
          { url: "http://127.0.0.1:5001", resolve_tags: true },
          { url: "https://mirror.gcr.io", resolve_tags: true },
        ],
      },
      { registry: "ghcr.io", mirrors: [{ url: "https://ghcr-cache.internal:8443/v2-proxy", resolve_tags: false }] },
    ],
    insecure_registries: ["127.0.0.1:5000", "10.0.0.0/8"],
  };

  function endpointsFor(registry: string): string[] {
    const r = settings.registries.find((x) => x.registry === registry);
    const upstream = registry === "docker.io" ? "https://registry-1.docker.io" : `${settings.insecure_registries.includes(registry) ? "http" : "https"}://${registry}`;
    return [...(r?.mirrors.map((m) => m.url) ?? []), upstream];
  }

  /** Mirrors whose host says "down" or "offline" do not answer; the rest do. */
  const answers = (url: string) => !/down|offline|unreachable/.test(url);

  function record(reference: string, registry: string, layerDigests: string[], configDigest: string): PullRecord {
    const skipped: PullRecord["skipped"] = [];
    let served = "";
    for (const ep of endpointsFor(registry)) {
      if (answers(ep)) {
        served = ep;
        break;
      }
      skipped.push({ endpoint: ep, reason: "dial tcp: connection refused" });
    }
    const blobs = [configDigest, ...layerDigests].map((digest, i) => ({
      digest,
      // The second layer of a multi-layer pull came from the next endpoint: the first one
      // answered 404 for it (a partial mirror).
      endpoint: i === 2 && layerDigests.length > 2 ? endpointsFor(registry).filter(answers).slice(-1)[0] : served,
    }));
    return { reference, digest: `sha256:${fakeHex(`manifest ${reference}`)}`, time_ms: Date.now(), blobs, skipped };
  }

  const pulls: PullRecord[] = [
    record("python:3.12-slim", "docker.io", [1, 2, 3].map((i) => `sha256:${fakeHex(`python layer ${i}`)}`), `sha256:${fakeHex("python config")}`),
    record("busybox:latest", "docker.io", [`sha256:${fakeHex("busybox layer")}`], `sha256:${fakeHex("busybox config")}`),
  ];
  pulls[0].time_ms -= 3600_000 * 2;
  pulls[1].time_ms -= 86400_000;
  pulls.sort((a, b) => b.time_ms - a.time_ms);

  // --- progress simulation -------------------------------------------------------------
  async function transfer(
    on: (e: ProgressEvent) => void,
    layers: { id: string; total: number }[],
    verb: "Downloading" | "Pushing",
  ): Promise<void> {
    const steps = 8;
    for (const l of layers) on({ kind: "layer", id: l.id, status: verb === "Pushing" ? "Preparing" : "Pulling fs layer", current: null, total: null });
    await sleep(150);
    if (verb === "Pushing") for (const l of layers) on({ kind: "layer", id: l.id, status: "Waiting", current: null, total: null });
    for (let s = 1; s <= steps; s++) {
      await sleep(180);
      layers.forEach((l, i) => {
        // Smaller layers finish first, like a real pull.
        const frac = Math.min(1, (s / steps) * (1 + (layers.length - 1 - i) * 0.5));
        const cur = Math.round(l.total * frac);
        if (cur < l.total || s === steps || frac === 1) {
          if (cur >= l.total) on({ kind: "layer", id: l.id, status: verb === "Pushing" ? "Pushed" : "Download complete", current: l.total, total: l.total });
          else on({ kind: "layer", id: l.id, status: verb, current: cur, total: l.total });
        }
      });
    }
    if (verb === "Downloading") {
      for (const l of layers) {
        await sleep(60);
        on({ kind: "layer", id: l.id, status: "Extracting", current: l.total, total: l.total });
        await sleep(40);
        on({ kind: "layer", id: l.id, status: "Pull complete", current: null, total: null });
      }
    }
  }

  /** Emits the error, then rejects with it (the Tauri command fails after its last event). */
  function failWith(on: (e: ProgressEvent) => void, code: ErrorCode, message: string): never {
    on({ kind: "error", message });
    throw fail(code, message);
  }

  // --- volumes ------------------------------------------------------------------------
  const iso = (agoS: number) => new Date(Date.now() - agoS * 1000).toISOString();
  const volumes: VolumeRow[] = [
    { name: "shop_pgdata", driver: "local", mountpoint: "/var/lib/berth/volumes/shop_pgdata/_data", created: iso(86400 * 21), size: 48.2 * MB, used_by: ["shop-db-1"], labels: { "com.docker.compose.project": "shop" } },
    { name: "prometheus-data", driver: "local", mountpoint: "/var/lib/berth/volumes/prometheus-data/_data", created: iso(3600 * 5), size: 3.1 * MB, used_by: ["metrics"], labels: {} },
    { name: "scratch", driver: "local", mountpoint: "/var/lib/berth/volumes/scratch/_data", created: iso(86400 * 3), size: 0, used_by: [], labels: {} },
    {
      name: fakeHex("anonymous volume"),
      driver: "local",
      mountpoint: `/var/lib/berth/volumes/${fakeHex("anonymous volume")}/_data`,
      created: iso(86400 * 6),
      size: 12.7 * MB,
      used_by: [],
      labels: { "com.docker.volume.anonymous": "" },
    },
  ].map((v) => ({ ...v, size: v.size === null ? null : Math.round(v.size) }));

  // --- networks -----------------------------------------------------------------------
  const member = (name: string, ip: string) => ({ id: fakeHex(`container ${name}`), name, ipv4: ip, mac_address: `02:42:${ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join(":")}` });
  const net = (name: string, driver: string, subnet: string, gateway: string, builtin: boolean, containers: NetworkRow["containers"], agoS: number, internal = false): NetworkRow => ({
    id: fakeHex(`network ${name}`),
    name,
    driver,
    scope: "local",
    subnet,
    gateway,
    internal,
    created: iso(agoS),
    containers,
    builtin,
    labels: {},
  });
  const networks: NetworkRow[] = [
    net("bridge", "bridge", "172.17.0.0/16", "172.17.0.1", true, [member("dev-proxy", "172.17.0.2"), member("metrics", "172.17.0.3")], 86400 * 60),
    net("host", "host", "", "", true, [], 86400 * 60),
    net("none", "null", "", "", true, [], 86400 * 60),
    net("shop_default", "bridge", "172.18.0.0/16", "172.18.0.1", false, [member("shop-web-1", "172.18.0.2"), member("shop-api-1", "172.18.0.3"), member("shop-db-1", "172.18.0.4"), member("shop-cache-1", "172.18.0.5")], 7200),
    net("lab", "bridge", "10.42.0.0/24", "10.42.0.1", false, [], 86400 * 2, true),
  ];

  function findNetwork(idOrName: string): NetworkRow {
    const n = networks.find((x) => x.name === idOrName || x.id === idOrName || (idOrName.length >= 12 && x.id.startsWith(idOrName)));
    if (!n) throw fail("not_found", `network ${idOrName} not found`);
    return n;
  }

  function overlaps(a: string, b: string): boolean {
    const x = parseCidr(a);
    const y = parseCidr(b);
    if (!x || !y) return false;
    const p = Math.min(x.prefix, y.prefix);
    const mask = p === 0 ? 0 : (0xffffffff - (2 ** (32 - p) - 1)) >>> 0;
    return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0);
  }

  function nextIp(n: NetworkRow): string {
    const c = parseCidr(n.subnet);
    if (!c) return "";
    const used = new Set(n.containers.map((m) => parseIpv4(m.ipv4)));
    const gw = parseIpv4(n.gateway);
    for (let v = c.base + 2; v < c.base + 2 ** (32 - c.prefix) - 1; v++) {
      if (!used.has(v) && v !== gw) return [24, 16, 8, 0].map((sh) => Math.floor(v / 2 ** sh) % 256).join(".");
    }
    throw fail("conflict", `no available IPv4 addresses on network ${n.name}`);
  }

  function validateSettings(s: RegistrySettings): void {
    const seen = new Set<string>();
    for (const r of s.registries) {
      const e = validateHostPort(r.registry);
      if (e) throw fail("invalid_input", `registry "${r.registry}": ${e}`);
      if (seen.has(r.registry)) throw fail("invalid_input", `registry ${r.registry} is listed twice`);
      seen.add(r.registry);
      for (const m of r.mirrors) {
        const me = validateMirrorUrl(m.url);
        if (me) throw fail("invalid_input", `mirror "${m.url}" of ${r.registry}: ${me}`);
      }
    }
    for (const i of s.insecure_registries) {
      const e = validateInsecure(i);
      if (e) throw fail("invalid_input", `insecure registry "${i}": ${e}`);
    }
  }

  return {
    // --- images ---
    async imagesList() {
      await sleep(60);
      return rows();
    },

    async imagePull(reference, on) {
      const r = parseReference(reference);
      if (!r) throw fail("invalid_input", `invalid reference format: "${reference}"`);
      const ref = `${r.repository}:${r.tag}`;
      const path = r.registry === "docker.io" && !r.repository.includes("/") ? `library/${r.repository}` : r.repository.replace(`${r.registry}/`, "");
      on({ kind: "status", message: `${r.tag}: Pulling from ${path}` });
      await sleep(250);
      if (r.repository.includes("nosuch")) {
        failWith(on, "not_found", `pull access denied for ${r.repository}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
      }
      if (r.registry !== "docker.io" && endpointsFor(r.registry).every((e) => !answers(e))) {
        failWith(on, "engine", `Get "https://${r.registry}/v2/": dial tcp: connection refused`);
      }
      const totals = [31.4 * MB, 12.9 * MB, 2.2 * MB].map(Math.round);
      const layers = totals.map((total, i) => ({ id: fakeHex(`${ref} layer ${i}`, 12), total }));
      await transfer(on, layers, "Downloading");
      const digest = `sha256:${fakeHex(`manifest ${ref}`)}`;
      on({ kind: "status", message: `Digest: ${digest}` });
      const existing = findImage(ref);
      const fresh = !existing;
      if (fresh) {
        images.unshift({
          id: `sha256:${fakeHex(`image ${ref}`)}`,
          refs: [ref],
          size: totals.reduce((a, b) => a + b, 0),
          created: nowS() - 86400 * 3,
          containers: 0,
          layers: [
            [`ADD file:${fakeHex(ref, 16)} in / `, totals[0]],
            ["RUN /bin/sh -c apt-get update && apt-get install -y curl", totals[1]],
            ["COPY entrypoint.sh /usr/local/bin/", totals[2]],
            ['CMD ["/bin/sh"]', 0],
          ].map(([created_by, size]) => ({ created_by: String(created_by), size: Number(size) })),
        });
      }
      pulls.unshift(
        record(
          ref,
          r.registry,
          layers.map((l) => `sha256:${fakeHex(`blob ${l.id}`)}`),
          `sha256:${fakeHex(`config ${ref}`)}`,
        ),
      );
      const msg = fresh ? `Status: Downloaded newer image for ${ref}` : `Status: Image is up to date for ${ref}`;
      on({ kind: "status", message: msg });
      on({ kind: "done", message: msg });
      event("image", "pull", ref, { name: ref });
    },

    async imagePush(reference, on) {
      const r = parseReference(reference);
      if (!r) throw fail("invalid_input", `invalid reference format: "${reference}"`);
      const ref = `${r.repository}:${r.tag}`;
      const im = findImage(ref);
      if (!im) throw fail("not_found", `An image does not exist locally with the tag: ${r.repository}`);
      on({ kind: "status", message: `The push refers to repository [${r.registry === "docker.io" ? `docker.io/${r.repository.includes("/") ? r.repository : `library/${r.repository}`}` : r.repository}]` });
      await sleep(200);
      if (!logins.has(r.registry)) {
        failWith(on, "engine", r.registry === "docker.io" ? "denied: requested access to the resource is denied" : "unauthorized: authentication required");
      }
      const layers = im.layers
        .filter((l) => l.size > 0)
        .slice(0, 3)
        .map((l, i) => ({ id: fakeHex(`${im.id} push ${i}`, 12), total: l.size }));
      await transfer(on, layers, "Pushing");
      const msg = `${r.tag}: digest: sha256:${fakeHex(`pushed ${ref}`)} size: ${1000 + layers.length * 527}`;
      on({ kind: "status", message: msg });
      on({ kind: "done", message: msg });
      event("image", "push", ref, { name: ref });
    },

    async imageBuild(req, on) {
      // A scripted build: the folder's name picks the script (`…broken…`: a Dockerfile error
      // on line 2; `…failing…`: a RUN that exits 1; `…missing…`: no such folder); a second
      // build of the same folder, Dockerfile, args and target is served from the cache.
      const dir = req.context_dir.trim();
      if (!dir) throw fail("invalid_input", "The folder is empty: enter the path of the folder that holds the Dockerfile");
      if (!dir.startsWith("/")) throw fail("invalid_input", `The folder "${dir}" is not an absolute path: write it from / (e.g. /home/me/app)`);
      if (dir.includes("missing")) throw fail("invalid_input", `The folder ${dir} cannot be opened (No such file or directory (os error 2)): check the path`);
      const dockerfile = req.dockerfile.trim() || "Dockerfile";
      if (dockerfile.includes("..") || dockerfile.startsWith("/"))
        throw fail("invalid_input", `The Dockerfile "${dockerfile}" must be a path inside the folder ${dir} (e.g. Dockerfile or docker/Dockerfile.dev)`);
      if (dockerfile !== "Dockerfile" && !dockerfile.endsWith(".dev"))
        throw fail("invalid_input", `There is no Dockerfile at ${dir.replace(/\/$/, "")}/${dockerfile}: create it, or name the right file in the Dockerfile field`);
      const tags: string[] = [];
      for (const t of req.tags.map((x) => x.trim()).filter(Boolean)) {
        const c = canonical(t);
        if (!c || t.includes("@")) throw fail("invalid_input", `The tag "${t}" is not a valid image name: write it like app, app:1.0 or registry.example.com:5000/team/app:1.0`);
        tags.push(c);
      }
      let closed = false;
      const key = `${dir}|${dockerfile}|${JSON.stringify(req.build_args)}|${req.target}`;
      const send = (e: BuildEvent) => {
        if (!closed) on(e);
      };
      void (async () => {
        await sleep(80);
        send({ kind: "context", files: 3, bytes: 10_240 });
        if (dir.includes("broken")) {
          await sleep(120);
          // What the Rust side parses out of `Dockerfile:2: unknown instruction "WORK" — did you mean WORKDIR?`.
          send({ kind: "failed", message: 'unknown instruction "WORK"', file: "Dockerfile", line: 2, column: 1, source_line: "WORK /app", suggestion: "WORKDIR" });
          return;
        }
        const cached = !req.no_cache && builds.has(key);
        const script: [string, string[]][] = [
          ["FROM busybox", []],
          ["COPY hello.txt /", []],
          [dir.includes("failing") ? "RUN false" : "RUN cat /hello.txt", dir.includes("failing") ? [] : ["hello from the build context"]],
          ['CMD ["cat","/hello.txt"]', []],
        ];
        for (const [i, [text, output]] of script.entries()) {
          send({ kind: "step", n: i + 1, total: script.length, text });
          await sleep(cached || i === 0 ? 60 : 400 + 200 * i);
          if (i > 0 && cached) send({ kind: "cached" });
          else if (text.startsWith("RUN")) {
            send({ kind: "running", container: fakeHex(`${key} step ${i} ${builds.size}`, 12) });
            for (const line of output) send({ kind: "output", text: line });
            if (text === "RUN false") {
              send({ kind: "failed", message: "The command '/bin/sh -c false' returned a non-zero code: 1", file: null, line: null, column: null, source_line: null, suggestion: null });
              return;
            }
          }
          send({ kind: "step_done", id: fakeHex(`${key} step ${i}`, 12) });
        }
        const id = `sha256:${fakeHex(req.no_cache ? `build ${key} ${Date.now()}` : `build ${key}`)}`;
        builds.add(key);
        send({ kind: "status", message: `Successfully built ${id.slice(7, 19)}` });
        for (const t of tags) send({ kind: "status", message: `Successfully tagged ${t}` });
        for (const other of images) other.refs = other.refs.filter((x) => !tags.includes(x));
        const existing = images.find((im) => im.id === id);
        if (existing) existing.refs = [...new Set([...existing.refs, ...tags])];
        else
          images.unshift({
            id,
            refs: tags,
            size: Math.round(4.4 * MB),
            created: nowS(),
            containers: 0,
            layers: script.map(([created_by], i) => ({ created_by, size: i === 1 ? 14 : i === 0 ? Math.round(4.4 * MB) : 0 })),
          });
        for (const t of tags) event("image", "tag", id, { name: t });
        send({ kind: "done", id, tags });
      })();
      return {
        async close() {
          closed = true;
        },
      };
    },

    async dirList(path) {
      await sleep(30);
      const p = path.trim() === "" || path.trim() === "~" ? "/home/dev" : path.trim().replace(/\/+$/, "") || "/";
      if (!p.startsWith("/")) throw fail("invalid_input", `"${p}" is not an absolute path: write it from / (e.g. /home/me/app)`);
      const tree: Record<string, string[]> = {
        "/": ["home", "srv", "tmp"],
        "/home": ["dev"],
        "/home/dev": ["hello-app", "broken-app", "shop"],
        "/home/dev/shop": ["api", "web"],
      };
      const dirs = tree[p] ?? [];
      const parent = p === "/" ? null : p.slice(0, p.lastIndexOf("/")) || "/";
      return { path: p, parent, dirs, has_dockerfile: !(p in tree) || p === "/home/dev/shop" };
    },

    async imageTag(source, target) {
      await sleep(40);
      const im = findImage(source);
      if (!im) throw fail("not_found", `No such image: ${source}`);
      const t = canonical(target);
      if (!t) throw fail("invalid_input", `invalid reference format: "${target}"`);
      for (const other of images) other.refs = other.refs.filter((x) => x !== t);
      if (!im.refs.includes(t)) im.refs.push(t);
      event("image", "tag", im.id, { name: t });
    },

    async imageRemove(id, force) {
      await sleep(60);
      const im = findImage(id);
      if (!im) throw fail("not_found", `No such image: ${id}`);
      const byRef = canonical(id);
      const untagOnly = byRef !== null && im.refs.includes(byRef) && im.refs.length > 1;
      if (untagOnly) {
        im.refs = im.refs.filter((x) => x !== byRef);
        event("image", "untag", im.id, { name: byRef! });
        return;
      }
      if (usage(im) > 0 && !force) {
        throw fail(
          "conflict",
          `conflict: unable to remove repository reference "${im.refs[0] ?? im.id.slice(7, 19)}" (must force) - container ${fakeHex(im.id, 12)} is using its referenced image ${im.id.slice(7, 19)}`,
        );
      }
      images.splice(images.indexOf(im), 1);
      for (const ref of im.refs) event("image", "untag", im.id, { name: ref });
      event("image", "delete", im.id, {});
    },

    async imagesPrune(all) {
      await sleep(150);
      const gone = images.filter((im) => usage(im) === 0 && (all || im.refs.length === 0));
      for (const im of gone) {
        images.splice(images.indexOf(im), 1);
        event("image", "delete", im.id, {});
      }
      return {
        deleted: gone.flatMap((im) => [...im.refs.map((r) => `untagged: ${r}`), `deleted: ${im.id}`]),
        space_reclaimed: gone.reduce((a, im) => a + im.size, 0),
      };
    },

    async imageHistory(id) {
      await sleep(60);
      const im = findImage(id);
      if (!im) throw fail("not_found", `No such image: ${id}`);
      const rowsOut: HistoryRow[] = im.layers.map((l, i) => ({
        id: i === im.layers.length - 1 ? im.id : "<missing>",
        created: im.created - (im.layers.length - 1 - i) * 60,
        created_by: l.created_by.startsWith("RUN") || l.created_by.startsWith("ADD") || l.created_by.startsWith("COPY") ? l.created_by : `/bin/sh -c #(nop) ${l.created_by}`,
        size: l.size,
        comment: i === 0 ? "buildkit.dockerfile.v0" : "",
        tags: i === im.layers.length - 1 ? [...im.refs] : [],
      }));
      return rowsOut.reverse();
    },

    async imageInspect(id) {
      await sleep(40);
      const im = findImage(id);
      if (!im) throw fail("not_found", `No such image: ${id}`);
      return JSON.stringify(
        {
          Id: im.id,
          RepoTags: im.refs,
          RepoDigests: rows()
            .filter((r) => r.id === im.id)
            .flatMap((r) => r.digests),
          Created: new Date(im.created * 1000).toISOString(),
          Architecture: "amd64",
          Os: "linux",
          Size: im.size,
          Config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: [im.layers[im.layers.length - 1]?.created_by ?? "sh"] },
          RootFS: { Type: "layers", Layers: im.layers.filter((l) => l.size > 0).map((l) => `sha256:${fakeHex(l.created_by)}`) },
        },
        null,
        2,
      );
    },

    async registryLogin(req) {
      await sleep(300);
      const server = req.server || "docker.io";
      if (server !== "docker.io" && validateHostPort(server)) throw fail("invalid_input", `invalid registry "${server}": ${validateHostPort(server)}`);
      if (!req.username || !req.password) throw fail("invalid_input", "a user name and password are required");
      if (req.password === "wrong") throw fail("engine", `Get "https://${server}/v2/": unauthorized: incorrect username or password`);
      logins.add(server);
      return "Login Succeeded";
    },

    // --- volumes ---
    async volumesList() {
      await sleep(50);
      return clone(volumes);
    },

    async volumeCreate(name) {
      await sleep(60);
      const n = name === "" ? fakeHex(`anon ${Date.now()} ${volumes.length}`) : name;
      const e = validateName(n, "volume name");
      if (e) throw fail("invalid_input", `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
      const existing = volumes.find((v) => v.name === n);
      if (existing) return clone(existing);
      const v: VolumeRow = { name: n, driver: "local", mountpoint: `/var/lib/berth/volumes/${n}/_data`, created: new Date().toISOString(), size: 0, used_by: [], labels: {} };
      volumes.push(v);
      event("volume", "create", n, { driver: "local" });
      return clone(v);
    },

    async volumeRemove(name, force) {
      await sleep(60);
      const i = volumes.findIndex((v) => v.name === name);
      if (i < 0) throw fail("not_found", `get ${name}: no such volume`);
      const v = volumes[i];
      if (v.used_by.length > 0) {
        // Like Docker, force does not remove a volume a container still mounts.
        throw fail("conflict", `remove ${name}: volume is in use - [${v.used_by.map((c) => fakeHex(`container ${c}`)).join(", ")}]${force ? " (remove the containers first)" : ""}`);
      }
      volumes.splice(i, 1);
      event("volume", "destroy", name, { driver: v.driver });
    },

    async volumesPrune() {
      await sleep(150);
      const gone = volumes.filter((v) => v.used_by.length === 0);
      for (const v of gone) {
        volumes.splice(volumes.indexOf(v), 1);
        event("volume", "destroy", v.name, { driver: v.driver });
      }
      return { deleted: gone.map((v) => v.name), space_reclaimed: gone.reduce((a, v) => a + (v.size ?? 0), 0) };
    },

    // --- networks ---
    async networksList() {
      await sleep(50);
      const out = clone(networks);
      if (opts.containers) {
        const byName = new Map(opts.containers().map((c) => [c.name, c.id]));
        for (const n of out) for (const m of n.containers) m.id = byName.get(m.name) ?? m.id;
      }
      return out;
    },

    async networkCreate(req) {
      await sleep(80);
      const e = validateName(req.name, "network name");
      if (e) throw fail("invalid_input", `invalid network name "${req.name}": ${e}`);
      if (networks.some((n) => n.name === req.name)) throw fail("conflict", `network with name ${req.name} already exists`);
      let subnet = req.subnet;
      if (subnet) {
        const se = validateSubnet(subnet);
        if (se) throw fail("invalid_input", `invalid subnet ${subnet}: ${se}`);
        const clash = networks.find((n) => n.subnet && overlaps(n.subnet, subnet));
        if (clash) throw fail("conflict", `Pool overlaps with other one on this address space (${clash.name}: ${clash.subnet})`);
      } else {
        for (let b = 19; b < 32; b++) {
          const cand = `172.${b}.0.0/16`;
          if (!networks.some((n) => n.subnet && overlaps(n.subnet, cand))) {
            subnet = cand;
            break;
          }
        }
      }
      const ge = validateGateway(req.gateway, subnet);
      if (ge) throw fail("invalid_input", `invalid gateway: ${ge}`);
      const c = parseCidr(subnet)!;
      const gateway = req.gateway || [24, 16, 8, 0].map((sh) => Math.floor((c.base + 1) / 2 ** sh) % 256).join(".");
      const n = net(req.name, "bridge", subnet, gateway, false, [], 0, req.internal);
      n.created = new Date().toISOString();
      networks.push(n);
      event("network", "create", n.id, { name: n.name, type: "bridge" });
      return clone(n);
    },

    async networkRemove(id) {
      await sleep(60);
      const n = findNetwork(id);
      if (n.builtin) throw fail("invalid_input", `${n.name} is a pre-defined network and cannot be removed`);
      if (n.containers.length > 0) throw fail("conflict", `error while removing network: network ${n.name} id ${n.id} has active endpoints`);
      networks.splice(networks.indexOf(n), 1);
      event("network", "destroy", n.id, { name: n.name, type: n.driver });
    },

    async networkConnect(network, container) {
      await sleep(80);
      const n = findNetwork(network);
      if (n.name === "host" || n.name === "none") throw fail("invalid_input", `container cannot be disconnected from host network or connected to host network`);
      if (n.containers.some((m) => m.name === container || m.id === container)) {
        throw fail("conflict", `endpoint with name ${container} already exists in network ${n.name}`);
      }
      const known = opts.containers?.().find((c) => c.name === container || c.id === container);
      if (opts.containers && !known) throw fail("not_found", `No such container: ${container}`);
      const name = known?.name ?? container;
      const m = member(name, nextIp(n));
      if (known) m.id = known.id;
      n.containers.push(m);
      event("network", "connect", n.id, { name: n.name, container: m.id });
    },

    async networkDisconnect(network, container) {
      await sleep(80);
      const n = findNetwork(network);
      const i = n.containers.findIndex((m) => m.name === container || m.id === container || m.id.startsWith(container));
      if (i < 0) throw fail("not_found", `container ${container} is not connected to network ${n.name}`);
      const [m] = n.containers.splice(i, 1);
      event("network", "disconnect", n.id, { name: n.name, container: m.id });
    },

    async networksPrune() {
      await sleep(120);
      const gone = networks.filter((n) => !n.builtin && n.containers.length === 0);
      for (const n of gone) {
        networks.splice(networks.indexOf(n), 1);
        event("network", "destroy", n.id, { name: n.name, type: n.driver });
      }
      return { deleted: gone.map((n) => n.name), space_reclaimed: 0 };
    },

    // --- registry settings ---
    async registrySettings() {
      await sleep(40);
      return clone(settings);
    },

    async saveRegistrySettings(s) {
      await sleep(150);
      validateSettings(s);
      settings = { ...clone(s), config_path: settings.config_path };
      return {
        config_path: settings.config_path,
        reloaded: true,
        message: `Saved to ${settings.config_path}; the engine reloaded its registry settings without a restart.`,
      };
    },

    async probeEndpoint(url): Promise<ProbeResult> {
      const e = validateMirrorUrl(url);
      if (e) throw fail("invalid_input", `${url}: ${e}`);
      const latency = 12 + (parseInt(fakeHex(url, 4), 16) % 180);
      await sleep(Math.min(latency * 3, 600));
      const scheme = url.startsWith("https") ? "https" : "http";
      const base = { url, latency_ms: latency, scheme, api_version: null as string | null };
      if (!answers(url)) {
        return { ...base, ok: false, status: null, tls: null, auth: "none", message: "dial tcp: connect: connection refused" };
      }
      if (/selfsigned|self-signed|internal/.test(url) && scheme === "https") {
        return { ...base, ok: false, status: null, tls: "x509: certificate signed by unknown authority", auth: "none", message: "TLS handshake failed: the certificate is not trusted (add the host to insecure registries to skip verification)" };
      }
      if (/notregistry|example/.test(url)) {
        return { ...base, ok: false, status: 404, tls: scheme === "https" ? "verified" : null, auth: "none", message: "GET /v2/ answered 404: not a registry" };
      }
      const auth = /gcr|docker\.io|ghcr/.test(url) ? 'bearer (realm "https://auth.example/token")' : "none";
      return {
        ...base,
        ok: true,
        status: auth === "none" ? 200 : 401,
        tls: scheme === "https" ? "verified" : null,
        auth,
        api_version: "registry/2.0",
        message: auth === "none" ? "registry answered /v2/" : "registry answered /v2/ with a token challenge",
      };
    },

    async pullRecords() {
      await sleep(40);
      return clone(pulls.slice(0, 20));
    },
  };
}
