import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend } from "../backend";
import { mockBackend } from "../mock";
import { page } from "../stores/nav";
import { toasts } from "../ui";
import RunDialog from "./RunDialog.svelte";
import { buildRunRequest, type RunForm } from "./run-request";

afterEach(() => {
  cleanup();
  setBackend(null);
  toasts.set([]);
  page.set("containers");
  vi.restoreAllMocks();
});

const blank = (): RunForm => ({
  image: "",
  name: "",
  ports: [],
  volumes: [],
  env: [],
  network: "",
  restart: "no",
  command: "",
  autoRemove: false,
});

describe("buildRunRequest", () => {
  it("builds the request and skips blank rows", () => {
    const r = buildRunRequest({
      ...blank(),
      image: " nginx:alpine ",
      name: "web",
      ports: [
        { host: "8080", container: "80", protocol: "tcp" },
        { host: "", container: "443", protocol: "tcp" },
        { host: "", container: "", protocol: "tcp" },
      ],
      volumes: [
        { source: "/srv/site", target: "/usr/share/nginx/html", readOnly: true },
        { source: "", target: "", readOnly: false },
      ],
      env: ["A=1", "", " B=two words "],
      network: "shop_default",
      restart: "unless-stopped",
      command: " nginx -g 'daemon off;' ",
      autoRemove: true,
    });
    expect(r).toEqual({
      request: {
        image: "nginx:alpine",
        name: "web",
        ports: [
          { host_ip: "", host_port: 8080, container_port: 80, protocol: "tcp" },
          { host_ip: "", host_port: null, container_port: 443, protocol: "tcp" },
        ],
        volumes: [{ source: "/srv/site", target: "/usr/share/nginx/html", read_only: true }],
        env: ["A=1", "B=two words"],
        network: "shop_default",
        restart: "unless-stopped",
        command: "nginx -g 'daemon off;'",
        auto_remove: true,
      },
    });
  });

  it("rejects what the engine would refuse", () => {
    const err = (f: Partial<RunForm>) => {
      const r = buildRunRequest({ ...blank(), image: "alpine", ...f });
      return "error" in r ? r.error : null;
    };
    expect(err({ image: "" })).toMatch(/image/);
    expect(err({ image: "a b" })).toMatch(/spaces/);
    expect(err({ name: "-bad" })).toMatch(/name/);
    expect(err({ ports: [{ host: "8080", container: "", protocol: "tcp" }] })).toMatch(/Container port/);
    expect(err({ ports: [{ host: "70000", container: "80", protocol: "tcp" }] })).toMatch(/Host port/);
    expect(err({ ports: [{ host: "", container: "http", protocol: "tcp" }] })).toMatch(/Container port/);
    expect(err({ volumes: [{ source: "data", target: "relative", readOnly: false }] })).toMatch(/absolute/);
    expect(err({ env: ["=x"] })).toMatch(/KEY=value/);
    expect(err({})).toBeNull();
  });
});

describe("RunDialog", () => {
  it("sends the RunRequest the form describes, then toasts, closes and shows Containers", async () => {
    const b = mockBackend({ latency: 0 });
    const run = vi.spyOn(b, "containerRun");
    setBackend(b);
    page.set("images");
    const onclose = vi.fn();
    render(RunDialog, { image: "nginx:1.27-alpine", onclose });

    expect((screen.getByTestId("run-image") as HTMLInputElement).value).toBe("nginx:1.27-alpine");
    await fireEvent.input(screen.getByTestId("run-name"), { target: { value: "site" } });
    await fireEvent.click(screen.getByTestId("run-add-port"));
    await fireEvent.input(screen.getByTestId("run-port-host"), { target: { value: "8088" } });
    await fireEvent.input(screen.getByTestId("run-port-container"), { target: { value: "80" } });
    await fireEvent.click(screen.getByTestId("run-add-volume"));
    await fireEvent.input(screen.getByTestId("run-volume-source"), { target: { value: "site-data" } });
    await fireEvent.input(screen.getByTestId("run-volume-target"), { target: { value: "/data" } });
    await fireEvent.click(screen.getByTestId("run-add-env"));
    await fireEvent.input(screen.getByTestId("run-env"), { target: { value: "MODE=dev" } });
    // the network list comes from the backend
    await waitFor(() => expect(screen.getByTestId("run-network").querySelectorAll("option").length).toBeGreaterThan(1));
    const net = [...screen.getByTestId("run-network").querySelectorAll("option")].map((o) => o.value).find((v) => v)!;
    await fireEvent.change(screen.getByTestId("run-network"), { target: { value: net } });
    await fireEvent.change(screen.getByTestId("run-restart"), { target: { value: "always" } });
    await fireEvent.input(screen.getByTestId("run-command"), { target: { value: "nginx -g 'daemon off;'" } });
    await fireEvent.click(screen.getByTestId("run-submit"));

    await waitFor(() => expect(onclose).toHaveBeenCalled());
    expect(run).toHaveBeenCalledWith({
      image: "nginx:1.27-alpine",
      name: "site",
      ports: [{ host_ip: "", host_port: 8088, container_port: 80, protocol: "tcp" }],
      volumes: [{ source: "site-data", target: "/data", read_only: false }],
      env: ["MODE=dev"],
      network: net,
      restart: "always",
      command: "nginx -g 'daemon off;'",
      auto_remove: false,
    });
    expect(get(toasts).some((t) => t.kind === "success" && t.message.includes("site"))).toBe(true);
    expect(get(page)).toBe("containers");
    expect((await b.containersList()).some((c) => c.name === "site" && c.state === "running")).toBe(true);
  });

  it("keeps the dialog open with the engine's error", async () => {
    const b = mockBackend({ latency: 0 });
    setBackend(b);
    const onclose = vi.fn();
    render(RunDialog, { onclose });
    await fireEvent.input(screen.getByTestId("run-image"), { target: { value: "doesnotexist/app" } });
    await fireEvent.click(screen.getByTestId("run-submit"));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("pull access denied"));
    expect(onclose).not.toHaveBeenCalled();
    expect(get(toasts).some((t) => t.kind === "error")).toBe(true);
  });

  it("validates before calling the engine, and Esc or Cancel close it", async () => {
    const b = mockBackend({ latency: 0 });
    const run = vi.spyOn(b, "containerRun");
    setBackend(b);
    const onclose = vi.fn();
    render(RunDialog, { onclose });
    expect(document.activeElement).toBe(screen.getByTestId("run-image"));
    await fireEvent.click(screen.getByTestId("run-submit"));
    expect(screen.getByRole("alert").textContent).toMatch(/Enter an image/);
    expect(run).not.toHaveBeenCalled();
    await fireEvent.keyDown(screen.getByTestId("run-image"), { key: "Escape" });
    expect(onclose).toHaveBeenCalledTimes(1);
    await fireEvent.click(screen.getByTestId("run-cancel"));
    expect(onclose).toHaveBeenCalledTimes(2);
  });
});
