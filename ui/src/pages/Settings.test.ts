import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import { setBackend } from "../lib/backend";
import { toasts } from "../lib/ui";
import Settings from "./Settings.svelte";
import { installMock } from "./test-backend";

afterEach(() => {
  cleanup();
  setBackend(null);
  toasts.set([]);
  localStorage.clear();
  delete document.documentElement.dataset.theme;
});

const section = (registry: string) => screen.getAllByTestId("registry-section").find((s) => s.dataset.registry === registry)!;
const urls = (registry: string) => within(section(registry)).queryAllByTestId("mirror-row").map((r) => r.dataset.url);
const mirrorRow = (registry: string, url: string) => within(section(registry)).getAllByTestId("mirror-row").find((r) => r.dataset.url === url)!;

async function ready() {
  render(Settings);
  await waitFor(() => expect(screen.getAllByTestId("registry-section").length).toBeGreaterThan(0));
}

describe("Settings page", () => {
  it("applies and keeps the theme", async () => {
    installMock();
    await ready();
    await fireEvent.change(screen.getByTestId("theme-select"), { target: { value: "dark" } });
    expect(localStorage.getItem("berth.theme")).toBe("dark");
    expect(document.documentElement.dataset.theme).toBe("dark");
  });

  it("lists docker.io first with its ordered mirrors", async () => {
    installMock();
    await ready();
    expect(screen.getAllByTestId("registry-section").map((s) => s.dataset.registry)).toEqual(["docker.io", "ghcr.io"]);
    expect(urls("docker.io")).toEqual(["http://127.0.0.1:5001", "https://mirror.gcr.io"]);
  });

  it("validates a mirror URL as typed and explains why", async () => {
    installMock();
    await ready();
    const input = within(section("docker.io")).getByTestId("mirror-url-input");
    const add = within(section("docker.io")).getByTestId("mirror-add") as HTMLButtonElement;
    for (const [value, why] of [
      ["mirror.local", /http:\/\/ or https:\/\//],
      ["https://mirror.local?x=1", /query/],
      ["https://mirror.local /v2", /spaces/],
      ["https://mirror.local:70000", /out of range/],
      ["https://mirror.gcr.io", /already listed/],
    ] as const) {
      await fireEvent.input(input, { target: { value } });
      expect(within(section("docker.io")).getByTestId("mirror-url-error").textContent).toMatch(why);
      expect(add.disabled).toBe(true);
    }
    await fireEvent.input(input, { target: { value: "https://mirror.local:5443/cache" } });
    expect(within(section("docker.io")).queryByTestId("mirror-url-error")).toBeNull();
    await fireEvent.click(add);
    expect(urls("docker.io")).toEqual(["http://127.0.0.1:5001", "https://mirror.gcr.io", "https://mirror.local:5443/cache"]);
  });

  it("reorders with the buttons (keeping focus) and by drag and drop, then saves exactly that", async () => {
    const { b } = installMock();
    await ready();
    const hub = "docker.io";
    await fireEvent.input(within(section(hub)).getByTestId("mirror-url-input"), { target: { value: "http://10.0.0.9:5000" } });
    await fireEvent.click(within(section(hub)).getByTestId("mirror-add"));
    expect(urls(hub)).toEqual(["http://127.0.0.1:5001", "https://mirror.gcr.io", "http://10.0.0.9:5000"]);

    // up/down buttons; the first row's up and the last row's down are disabled
    expect((within(mirrorRow(hub, "http://127.0.0.1:5001")).getByTestId("mirror-up") as HTMLButtonElement).disabled).toBe(true);
    expect((within(mirrorRow(hub, "http://10.0.0.9:5000")).getByTestId("mirror-down") as HTMLButtonElement).disabled).toBe(true);
    const down = within(mirrorRow(hub, "http://127.0.0.1:5001")).getByTestId("mirror-down");
    down.focus();
    await fireEvent.click(down);
    expect(urls(hub)).toEqual(["https://mirror.gcr.io", "http://127.0.0.1:5001", "http://10.0.0.9:5000"]);
    await waitFor(() => expect(document.activeElement).toBe(within(mirrorRow(hub, "http://127.0.0.1:5001")).getByTestId("mirror-down")));
    await fireEvent.click(within(mirrorRow(hub, "http://10.0.0.9:5000")).getByTestId("mirror-up"));
    expect(urls(hub)).toEqual(["https://mirror.gcr.io", "http://10.0.0.9:5000", "http://127.0.0.1:5001"]);

    // drag the last row onto the first
    const from = mirrorRow(hub, "http://127.0.0.1:5001");
    const to = mirrorRow(hub, "https://mirror.gcr.io");
    await fireEvent.dragStart(from);
    await fireEvent.dragOver(to);
    await fireEvent.drop(to);
    await fireEvent.dragEnd(from);
    expect(urls(hub)).toEqual(["http://127.0.0.1:5001", "https://mirror.gcr.io", "http://10.0.0.9:5000"]);

    // toggle resolve tags on one, remove another
    await fireEvent.click(within(mirrorRow(hub, "https://mirror.gcr.io")).getByTestId("mirror-resolve-tags"));
    await fireEvent.click(within(mirrorRow(hub, "http://10.0.0.9:5000")).getByTestId("mirror-remove"));

    // a new registry and an insecure entry (validated)
    await fireEvent.input(screen.getByTestId("registry-input"), { target: { value: "https://quay.io" } });
    expect(screen.getByText(/without a scheme/)).toBeTruthy();
    await fireEvent.input(screen.getByTestId("registry-input"), { target: { value: "registry.local:5000" } });
    await fireEvent.click(screen.getByTestId("registry-add"));
    await fireEvent.input(within(section("registry.local:5000")).getByTestId("mirror-url-input"), { target: { value: "http://192.168.1.5:5000" } });
    await fireEvent.click(within(section("registry.local:5000")).getByTestId("mirror-add"));
    await fireEvent.input(screen.getByTestId("insecure-input"), { target: { value: "192.168.0.0/33" } });
    expect((screen.getByTestId("insecure-add") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(screen.getByTestId("insecure-input"), { target: { value: "192.168.0.0/16" } });
    await fireEvent.click(screen.getByTestId("insecure-add"));
    await fireEvent.click(screen.getAllByTestId("insecure-remove")[1]); // 10.0.0.0/8
    expect(screen.getAllByTestId("insecure-row").map((r) => r.dataset.entry)).toEqual(["127.0.0.1:5000", "192.168.0.0/16"]);

    await fireEvent.click(screen.getByTestId("settings-save"));
    await waitFor(() => expect(b.saveRegistrySettings).toHaveBeenCalledTimes(1));
    expect(b.saveRegistrySettings.mock.calls[0][0]).toEqual({
      config_path: "/etc/berth/daemon.json",
      registries: [
        {
          registry: "docker.io",
          mirrors: [
            { url: "http://127.0.0.1:5001", resolve_tags: true },
            { url: "https://mirror.gcr.io", resolve_tags: false },
          ],
        },
        { registry: "ghcr.io", mirrors: [{ url: "https://ghcr-cache.internal:8443/v2-proxy", resolve_tags: false }] },
        { registry: "registry.local:5000", mirrors: [{ url: "http://192.168.1.5:5000", resolve_tags: true }] },
      ],
      insecure_registries: ["127.0.0.1:5000", "192.168.0.0/16"],
    });
    const report = await screen.findByTestId("settings-report");
    expect(report.dataset.reloaded).toBe("true");
    expect(report.textContent).toContain("/etc/berth/daemon.json");
    expect(report.textContent).toMatch(/without a restart/);
    expect(report.textContent).toMatch(/Applied live: the engine reloaded them, no restart/);
  });

  it("tests mirrors and shows the probe's findings", async () => {
    const { b } = installMock();
    await ready();
    await fireEvent.click(within(mirrorRow("docker.io", "http://127.0.0.1:5001")).getByTestId("mirror-test"));
    const probe = () => within(mirrorRow("docker.io", "http://127.0.0.1:5001")).getByTestId("probe-result");
    await waitFor(() => expect(probe().dataset.ok).toBe("true"));
    const res = probe();
    expect(res.textContent).toMatch(/HTTP 200/);
    expect(res.textContent).toMatch(/\d+ ms/);
    expect(res.textContent).toMatch(/http/);
    expect(res.textContent).toMatch(/auth: none/);

    await fireEvent.click(screen.getByTestId("mirrors-test-all"));
    await waitFor(() => expect(screen.getAllByTestId("probe-result").map((r) => r.dataset.ok)).toEqual(["true", "true", "false"]));
    expect(b.probeEndpoint).toHaveBeenCalledWith("https://ghcr-cache.internal:8443/v2-proxy");
    expect(within(mirrorRow("ghcr.io", "https://ghcr-cache.internal:8443/v2-proxy")).getByTestId("probe-result").textContent).toMatch(/x509/);
  });

  it("reports which endpoint served each blob of the last pulls, refreshing on a pull", async () => {
    const { b } = installMock();
    await ready();
    const rows = await screen.findAllByTestId("served-row");
    expect(rows.length).toBeGreaterThan(1);
    expect(rows[0].dataset.digest).toMatch(/^sha256:/);
    // the local mirror served most blobs; one came from Docker Hub itself (a partial mirror)
    expect(rows.map((r) => r.dataset.endpoint)).toEqual(["http://127.0.0.1:5001", "http://127.0.0.1:5001", "https://registry-1.docker.io", "http://127.0.0.1:5001"]);
    const before = b.pullRecords.mock.calls.length;
    await b.imagePull("busybox:1.37", () => {});
    const { dispatch } = await import("../lib/stores/events");
    dispatch({ kind: "image", action: "pull", id: "busybox:1.37", attributes: {}, time_ms: Date.now() });
    await waitFor(() => expect(b.pullRecords.mock.calls.length).toBe(before + 1));
    await waitFor(() => expect(screen.getAllByTestId("pull-record")[0].dataset.reference).toBe("busybox:1.37"));
  });
});
