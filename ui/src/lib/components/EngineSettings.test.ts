import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend, type Backend } from "../backend";
import { mockBackend } from "../mock";
import { engine, resetEngine, startEngine, stopEngine, watchEngine } from "../stores/engine";
import { confirmation, toasts } from "../ui";
import EngineSettings from "./EngineSettings.svelte";
import EnginePanel from "./EnginePanel.svelte";

let stop: (() => void) | null = null;

afterEach(() => {
  cleanup();
  stop?.();
  stop = null;
  resetEngine();
  setBackend(null);
  toasts.set([]);
});

async function setup(): Promise<Backend> {
  const b = mockBackend({ latency: 0, engine: "running" });
  setBackend(b);
  stop = await watchEngine(() => {});
  render(EngineSettings);
  render(EnginePanel);
  await waitFor(() => expect(screen.getByTestId("engine-mode").dataset.mode).toBe("native"));
  return b;
}

const input = (id: string) => screen.getByTestId(id) as HTMLInputElement;

async function toVm() {
  await fireEvent.click(screen.getByTestId("engine-mode-vm"));
  await waitFor(() => expect(screen.getByTestId("engine-mode").dataset.mode).toBe("vm"));
}

describe("Settings → Engine", () => {
  it("starts native; the VM's settings appear only in VM mode, and the engine moves to the VM's socket", async () => {
    await setup();
    expect(screen.queryByTestId("vm-cpus")).toBeNull();
    await toVm();
    expect(input("vm-cpus").value).toBe("2");
    expect(input("vm-memory").value).toBe("2");
    expect((screen.getByTestId("vm-memory-unit") as HTMLSelectElement).value).toBe("GiB");
    expect(screen.getByTestId("vm-accel").textContent).toContain("auto");
    expect(screen.getByTestId("vm-state").dataset.state).toBe("not_created");
    const st = get(engine).status!;
    expect(st.host).toBe("unix:///home/me/.berth/berth.sock");
    expect(st.state).toBe("stopped");
    expect(st.vm?.state).toBe("not_created");
  });

  it("validates as typed, converts memory units and saves for a VM not created yet", async () => {
    const b = await setup();
    await toVm();
    const apply = screen.getByTestId("vm-apply") as HTMLButtonElement;
    expect(apply.disabled).toBe(true);
    await fireEvent.input(input("vm-cpus"), { target: { value: "0" } });
    expect(screen.getByTestId("vm-error").textContent).toMatch(/CPUs/);
    expect(apply.disabled).toBe(true);
    await fireEvent.input(input("vm-cpus"), { target: { value: "4" } });
    await fireEvent.input(input("vm-memory"), { target: { value: "0.25" } });
    expect(screen.getByTestId("vm-error").textContent).toMatch(/at least 512 MiB/);
    await fireEvent.change(screen.getByTestId("vm-memory-unit"), { target: { value: "MiB" } });
    expect(input("vm-memory").value).toBe("256");
    await fireEvent.input(input("vm-memory"), { target: { value: "3000" } });
    await fireEvent.input(input("vm-disk-path"), { target: { value: "relative/disk.qcow2" } });
    expect(screen.getByTestId("vm-error").textContent).toMatch(/absolute path/);
    await fireEvent.input(input("vm-disk-path"), { target: { value: "/srv/berth/data.qcow2" } });
    expect(apply.disabled).toBe(false);
    await fireEvent.click(apply);
    await waitFor(() => expect(apply.disabled).toBe(true));
    const saved = await b.vmSettings();
    expect([saved.cpus, saved.memory_mib, saved.disk_path]).toEqual([4, 3000, "/srv/berth/data.qcow2"]);
    // 3000 MiB is not a whole number of GiB: shown in MiB.
    expect(input("vm-memory").value).toBe("3000");
  });

  it("Start boots the VM with progress in the status line; Apply is refused while it runs; Stop turns it off", async () => {
    const b = await setup();
    await toVm();
    const seen: string[] = [];
    const unsub = engine.subscribe((v) => {
      const label = screen.queryByTestId("engine-status")?.querySelector(".label")?.textContent;
      if (v.status?.state === "starting" && label) seen.push(label);
    });
    await startEngine();
    unsub();
    await waitFor(() => expect(screen.getByTestId("engine-status").dataset.state).toBe("running"));
    expect(screen.getByTestId("engine-status").textContent).toContain("Engine running · VM");
    expect(seen.some((l) => /^VM starting… \(booting, \d+ s\)$/.test(l))).toBe(true);
    await waitFor(() => expect(screen.getByTestId("vm-state").dataset.state).toBe("running"));
    expect(input("vm-cpus").disabled).toBe(true);
    expect(screen.getByTestId("vm-apply-note").textContent).toMatch(/Stop the engine/);
    await expect(b.vmApply({ cpus: 3, memory_mib: 2048, disk_gib: 64, disk_path: "" })).rejects.toMatchObject({
      code: "invalid_input",
      message: expect.stringMatching(/stop the engine first/),
    });
    // The console shows the guest's init steps.
    await fireEvent.click(screen.getByTestId("vm-logs-toggle"));
    await waitFor(() => expect(screen.getByTestId("vm-console").textContent).toContain("berth-init: ready"));
    await stopEngine();
    await waitFor(() => expect(screen.getByTestId("vm-state").dataset.state).toBe("stopped"));
    expect(get(engine).status?.state).toBe("stopped");
    // Stopped: a resize applies; the disk cannot shrink.
    await fireEvent.input(input("vm-cpus"), { target: { value: "3" } });
    await fireEvent.input(input("vm-disk"), { target: { value: "32" } });
    expect(screen.getByTestId("vm-error").textContent).toMatch(/only grow/);
    await fireEvent.input(input("vm-disk"), { target: { value: "80" } });
    await fireEvent.click(screen.getByTestId("vm-apply"));
    await waitFor(() => expect((screen.getByTestId("vm-apply") as HTMLButtonElement).disabled).toBe(true));
    const after = await b.vmSettings();
    expect([after.cpus, after.disk_gib]).toEqual([3, 80]);
    expect(input("vm-disk-path").disabled).toBe(true);
  });

  it("Delete asks first and removes the VM", async () => {
    const b = await setup();
    await toVm();
    await startEngine();
    await stopEngine();
    await waitFor(() => expect(screen.getByTestId("vm-delete")).toBeTruthy());
    const asked = new Promise<string>((resolve) => {
      const unsub = confirmation.subscribe((req) => {
        if (!req) return;
        queueMicrotask(() => {
          unsub();
          resolve(req.message);
          req.resolve(true);
        });
      });
    });
    await fireEvent.click(screen.getByTestId("vm-delete"));
    expect(await asked).toMatch(/every image, container and volume/i);
    await waitFor(() => expect(screen.queryByTestId("vm-delete")).toBeNull());
    expect(screen.getByTestId("vm-state").dataset.state).toBe("not_created");
    expect((await b.vmSettings()).created).toBe(false);
  });

  it("switching back to native reconnects to the native socket", async () => {
    await setup();
    await toVm();
    await fireEvent.click(screen.getByTestId("engine-mode-native"));
    await waitFor(() => expect(screen.getByTestId("engine-mode").dataset.mode).toBe("native"));
    const st = get(engine).status!;
    expect(st.host).toBe("unix:///run/berth/berth.sock");
    expect(st.vm ?? null).toBeNull();
    expect(screen.getByTestId("engine-status").dataset.mode).toBe("native");
  });
});
