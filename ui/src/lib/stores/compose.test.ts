import { afterEach, describe, expect, it } from "vitest";
import { get } from "svelte/store";
import type { ComposeContainer } from "../bindings/ComposeContainer";
import type { ComposeProjectInfo } from "../bindings/ComposeProjectInfo";
import {
  appendLogs,
  applyComposeEvent,
  concernsProject,
  envDirty,
  envOverrides,
  envProblems,
  finishOp,
  forget,
  logPrefix,
  mergeProjects,
  remember,
  remembered,
  reloadRemembered,
  REMEMBER_KEY,
  serviceColour,
  serviceRows,
  splitLoadError,
  startOp,
} from "./compose";

afterEach(() => {
  localStorage.clear();
  reloadRemembered();
});

function container(service: string, number: number, state: string, extra: Partial<ComposeContainer> = {}): ComposeContainer {
  return {
    id: `${service}-${number}`,
    name: `app-${service}-${number}`,
    service,
    number,
    image: `${service}:1`,
    command: "",
    state,
    status: state === "running" ? "Up 3 seconds" : "Exited (0) 1 minute ago",
    health: null,
    exit_code: 0,
    ports: [],
    created: 0,
    ...extra,
  };
}

const INFO: ComposeProjectInfo = {
  name: "app",
  working_dir: "/srv/app",
  files: ["/srv/app/compose.yaml"],
  services: [
    { name: "web", image: "busybox", build: false, ports: ["8080:8080/tcp"], replicas: 2, depends_on: ["db"] },
    { name: "db", image: "busybox", build: false, ports: [], replicas: 1, depends_on: [] },
    { name: "api", image: null, build: true, ports: [], replicas: 1, depends_on: [] },
  ],
  networks: ["default"],
  volumes: [],
  env: { path: "/srv/app/.env", exists: true, entries: [{ key: "PORT", value: "8080" }] },
  warnings: [],
};

describe("remembered projects", () => {
  it("are kept in localStorage, newest first, and merged with the engine's by name", () => {
    remember({ name: "a", files: ["/a/compose.yaml"] });
    remember({ name: "b", files: ["/b/compose.yaml"] });
    remember({ name: "a", files: ["/a2/compose.yaml"] });
    expect(get(remembered).map((r) => r.name)).toEqual(["a", "b"]);
    expect(JSON.parse(localStorage.getItem(REMEMBER_KEY)!)[0]).toEqual({ name: "a", files: ["/a2/compose.yaml"] });
    const merged = mergeProjects(
      [
        { name: "b", status: "running(1)", config_files: ["/b/docker-compose.yml"], working_dir: "/b", running: 1, total: 1 },
        { name: "term", status: "exited(2)", config_files: ["/t/compose.yaml"], working_dir: "/t", running: 0, total: 2 },
      ],
      get(remembered),
    );
    expect(merged.map((p) => [p.name, p.inEngine, p.opened, p.running, p.total])).toEqual([
      ["a", false, true, 0, 0],
      ["b", true, true, 1, 1],
      ["term", true, false, 0, 2],
    ]);
    // the files opened here win over the engine's labels; a remembered-only one has its folder
    expect(merged[1].files).toEqual(["/b/compose.yaml"]);
    expect(merged[0].workingDir).toBe("/a2");
    forget("a");
    expect(get(remembered).map((r) => r.name)).toEqual(["b"]);
  });

  it("ignores a corrupt entry", () => {
    localStorage.setItem(REMEMBER_KEY, JSON.stringify([{ name: 3 }, { name: "ok", files: ["/x/compose.yaml"] }, "junk"]));
    reloadRemembered();
    expect(get(remembered)).toEqual([{ name: "ok", files: ["/x/compose.yaml"] }]);
    localStorage.setItem(REMEMBER_KEY, "{not json");
    reloadRemembered();
    expect(get(remembered)).toEqual([]);
  });
});

describe("services table", () => {
  it("has one row per service with its containers' state, replicas and ports", () => {
    const port = { host_ip: "0.0.0.0", host_port: 8080, container_port: 8080, protocol: "tcp" };
    const rows = serviceRows(INFO, [
      container("web", 2, "exited"),
      container("web", 1, "running", { ports: [port] }),
      container("db", 1, "running", { health: "starting" }),
      container("old", 1, "exited"),
    ]);
    expect(rows.map((r) => [r.service, r.state, r.running, r.containers, r.replicas, r.declared])).toEqual([
      ["api", "missing", 0, 0, 1, true],
      ["db", "running", 1, 1, 1, true],
      ["old", "exited", 0, 1, 1, false],
      ["web", "partial", 1, 2, 2, true],
    ]);
    const web = rows.find((r) => r.service === "web")!;
    expect(web.ports).toEqual([port]);
    // the first replica's status
    expect(web.status).toBe("Up 3 seconds");
    expect(rows.find((r) => r.service === "db")!.health).toBe("starting");
    expect(rows.find((r) => r.service === "api")!.image).toBe("(built)");
    expect(rows.find((r) => r.service === "api")!.build).toBe(true);
  });

  it("shows a project whose files are unknown from its containers alone", () => {
    const rows = serviceRows(null, [container("x", 1, "created")]);
    expect(rows).toHaveLength(1);
    expect(rows[0].state).toBe("created");
    expect(rows[0].replicas).toBe(1);
  });

  it("reloads on the project's container events only", () => {
    const ev = (kind: string, attributes: Record<string, string>) => ({ kind, action: "start", id: "x", attributes, time_ms: 0 });
    expect(concernsProject(ev("container", { "com.docker.compose.project": "app" }), "app")).toBe(true);
    expect(concernsProject(ev("container", { "com.docker.compose.project": "other" }), "app")).toBe(false);
    expect(concernsProject(ev("container", { name: "x" }), "app")).toBe(true);
    expect(concernsProject(ev("image", {}), "app")).toBe(false);
    expect(concernsProject(ev("engine", {}), "app")).toBe(true);
  });
});

describe("operation progress", () => {
  it("keeps one row per resource with its latest status, plus build lines", () => {
    let s = startOp("up", "Up app", 1000);
    s = applyComposeEvent(s, { kind: "resource", resource: "Network", name: "app_default", status: "Creating", done: false });
    s = applyComposeEvent(s, { kind: "resource", resource: "Container", name: "app-web-1", status: "Creating", done: false });
    s = applyComposeEvent(s, { kind: "resource", resource: "Network", name: "app_default", status: "Created", done: true });
    s = applyComposeEvent(s, { kind: "build", service: "api", line: "Step 1/2 : FROM busybox" });
    s = applyComposeEvent(s, { kind: "warning", message: "x is not set" });
    expect(s.resources).toEqual([
      { resource: "Network", name: "app_default", status: "Created", done: true },
      { resource: "Container", name: "app-web-1", status: "Creating", done: false },
    ]);
    expect(s.lines.map((l) => l.kind)).toEqual(["build", "warning"]);
    expect(finishOp(s, 2500).phase).toBe("done");
    const bad = finishOp(s, 2500, "boom");
    expect([bad.phase, bad.error, bad.ended]).toEqual(["error", "boom", 2500]);
  });
});

describe("logs", () => {
  it("caps the buffer and keeps keys increasing", () => {
    const l = (text: string) => ({ service: "web", container: "app-web-1", number: 1, stderr: false, text });
    let rows = appendLogs([], [l("a"), l("b")], 0, 3);
    rows = appendLogs(rows, [l("c"), l("d")], 2, 3);
    expect(rows.map((r) => [r.seq, r.line.text])).toEqual([
      [1, "b"],
      [2, "c"],
      [3, "d"],
    ]);
    expect(logPrefix(l("x"))).toBe("web-1");
    expect(logPrefix({ ...l("x"), service: "" })).toBe("compose");
  });

  it("gives each service a stable colour slot", () => {
    expect(serviceColour("web", ["web", "db"])).toBe(1);
    expect(serviceColour("db", ["web", "db"])).toBe(0);
    expect(serviceColour("zzz", ["web"])).toBe(serviceColour("zzz", ["a", "b"]));
  });
});

describe(".env editor", () => {
  const file = [
    { key: "PORT", value: "8080" },
    { key: "NAME", value: "x" },
  ];

  it("passes only changed and new values as overrides", () => {
    expect(envOverrides(file, [{ key: "PORT", value: "8080" }, { key: "NAME", value: "x" }])).toEqual({});
    expect(
      envOverrides(file, [
        { key: "PORT", value: "9090" },
        { key: " NEW ", value: "1" },
        { key: "", value: "" },
      ]),
    ).toEqual({ PORT: "9090", NEW: "1" });
  });

  it("knows when it differs from the file and what is wrong with a row", () => {
    expect(envDirty(file, file.map((e) => ({ ...e })))).toBe(false);
    expect(envDirty(file, [{ key: "PORT", value: "8080" }])).toBe(true);
    expect(envDirty(file, [{ key: "PORT", value: "8080" }, { key: "NAME", value: "y" }])).toBe(true);
    expect(envProblems([{ key: "A", value: "1" }, { key: "A", value: "2" }, { key: "1B", value: "" }, { key: "", value: "v" }, { key: "", value: "" }])).toEqual([
      null,
      "A is already set above",
      "letters, digits and _ only, not starting with a digit",
      "name the variable",
      null,
    ]);
  });
});

describe("load errors", () => {
  it("are split into file, line, column and message", () => {
    expect(splitLoadError("/srv/app/compose.yaml:7:9: services.web.ports[0]: bad port")).toEqual({
      file: "/srv/app/compose.yaml",
      line: 7,
      column: 9,
      message: "services.web.ports[0]: bad port",
    });
    expect(splitLoadError("/srv/app/compose.yaml:3: services: expected a map")?.column).toBeNull();
    expect(splitLoadError("No compose file in /srv")).toBeNull();
  });
});
