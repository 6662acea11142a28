// The mock of the engine mode and Berth's VM (Settings → Engine) for tests and `npm run dev`:
// the same rules as src-tauri/src/commands/vm.rs — Apply saves for a VM not created yet,
// resizes a stopped one (the disk only grows, its location is fixed once created) and is
// refused while the VM runs; Start in VM mode creates the VM and boots it step by step.

import type { AppError } from "./bindings/AppError";
import type { EngineMode } from "./bindings/EngineMode";
import type { EngineStatus } from "./bindings/EngineStatus";
import type { VmProgress } from "./bindings/VmProgress";
import type { VmResources } from "./bindings/VmResources";
import type { VmSettings } from "./bindings/VmSettings";

export interface MockVmHost {
  engine(): EngineStatus;
  setEngine(s: EngineStatus): void;
  /** The engine's events' "connected"/"disconnected" notices. */
  notice(action: "connected" | "disconnected"): void;
  delay(ms?: number): Promise<void>;
}

const STATE_DIR = "/home/me/.berth/vm";
const VM_HOST = "unix:///home/me/.berth/berth.sock";
const NATIVE_HOST = "unix:///run/berth/berth.sock";
export const BOOT_STEPS = [
  "berth-init: root is a mount (2 ms)",
  "berth-init: api filesystems (9 ms)",
  "berth-init: modules (1240 ms)",
  "berth-init: network (35 ms)",
  "berth-init: data disk (210 ms)",
  "berth-init: berthd started",
];

function err(code: AppError["code"], message: string): AppError {
  return { code, message };
}

export function mockVm(host: MockVmHost, opts: { stepMs?: number } = {}) {
  const stepMs = opts.stepMs ?? 400;
  let mode: EngineMode = "native";
  let created = false;
  let vmState: "not_created" | "stopped" | "starting" | "running" = "not_created";
  let res = { cpus: 2, memory_mib: 2048, disk_gib: 64, disk_path: `${STATE_DIR}/data.qcow2` };
  let console: string[] = [];

  const progress = (): VmProgress => ({
    state: created ? vmState : "not_created",
    elapsed_ms: null,
    step: null,
    boot_ms: vmState === "running" ? 6200 : null,
    accel: vmState === "running" ? "tcg" : null,
  });

  const settings = (): VmSettings => ({
    mode,
    mode_forced: false,
    ...res,
    state_dir: STATE_DIR,
    socket: VM_HOST.replace(/^unix:\/\//, ""),
    accel: "auto",
    accel_source: "auto",
    created,
    state: created ? vmState : "not_created",
    problem: null,
    host_cpus: 8,
    host_memory_mib: 16384,
  });

  function validate(r: VmResources): void {
    if (r.cpus < 1 || r.cpus > 255) throw err("invalid_input", `CPUs = ${r.cpus}: give the VM 1 to 255 virtual CPUs`);
    if (r.memory_mib < 512) throw err("invalid_input", `Memory = ${r.memory_mib} MiB: give the VM at least 512 MiB`);
    if (r.memory_mib > 16384) throw err("invalid_input", `Memory = ${r.memory_mib} MiB is more than this machine has (16384 MiB): give the VM less`);
    if (r.disk_gib < 1 || r.disk_gib > 16384) throw err("invalid_input", `Disk size = ${r.disk_gib} GiB: give the data disk 1 to 16384 GiB`);
    if (r.disk_path.trim() !== "" && !r.disk_path.trim().startsWith("/")) throw err("invalid_input", `Disk location "${r.disk_path}": give an absolute path to the disk file`);
  }

  return {
    isVm: () => mode === "vm",

    /** Start in VM mode: create if missing, then the boot's steps as progress. */
    async start(): Promise<EngineStatus> {
      created = true;
      vmState = "starting";
      console = [];
      const t0 = Date.now();
      for (const step of BOOT_STEPS) {
        console.push(`[    ${((Date.now() - t0) / 1000).toFixed(1)}] ${step}`);
        const secs = Math.round((Date.now() - t0) / 1000);
        host.setEngine({
          ...host.engine(),
          state: "starting",
          message: `booting, ${secs} s`,
          vm: { state: "starting", elapsed_ms: Date.now() - t0, step, boot_ms: null, accel: "tcg" },
        });
        await host.delay(stepMs);
      }
      console.push("berth-init: ready 6200");
      vmState = "running";
      host.setEngine({ ...host.engine(), state: "running", version: "0.1.0", message: null, vm: progress() });
      host.notice("connected");
      return host.engine();
    },

    async stop(): Promise<EngineStatus> {
      host.setEngine({ ...host.engine(), state: "stopping", message: "Stopping the VM…", vm: { ...progress(), state: "stopping" } });
      await host.delay(stepMs);
      vmState = "stopped";
      console.push("berth-init: shutting down");
      host.setEngine({ ...host.engine(), state: "stopped", version: null, containers_running: 0, message: "Stopped. The VM is off (clean shutdown).", vm: progress() });
      host.notice("disconnected");
      return host.engine();
    },

    methods: {
      async vmSettings(): Promise<VmSettings> {
        await host.delay();
        return settings();
      },

      async engineModeSet(m: EngineMode): Promise<EngineStatus> {
        await host.delay();
        if (m !== "native" && m !== "vm") throw err("invalid_input", `unknown engine mode "${m}": use "native" or "vm"`);
        if (m === mode) return host.engine();
        if (mode === "vm" && vmState === "running") vmState = "stopped";
        mode = m;
        const wasRunning = host.engine().state === "running";
        host.setEngine({
          ...host.engine(),
          host: m === "vm" ? VM_HOST : NATIVE_HOST,
          state: m === "vm" ? "stopped" : "running",
          version: m === "vm" ? null : "0.1.0",
          message: m === "vm" ? `The Berth engine is not running: nothing answers at ${VM_HOST}.` : null,
          containers_running: 0,
          vm: m === "vm" ? progress() : undefined,
        });
        if (wasRunning && m === "vm") host.notice("disconnected");
        if (m === "native") host.notice("connected");
        return host.engine();
      },

      async vmApply(r: VmResources): Promise<VmSettings> {
        await host.delay();
        validate(r);
        const path = r.disk_path.trim() || `${STATE_DIR}/data.qcow2`;
        if (created) {
          if (vmState === "running" || vmState === "starting")
            throw err("invalid_input", "The VM is running: stop the engine first, then Apply (CPUs, memory and the disk change while the VM is off)");
          if (path !== res.disk_path) throw err("invalid_input", `The data disk is at ${res.disk_path}; it cannot move to ${path} once the VM exists: delete the VM to create it elsewhere`);
          if (r.disk_gib < res.disk_gib) throw err("system", `the data disk is ${res.disk_gib} GiB; it can grow but not shrink to ${r.disk_gib} GiB`);
        }
        res = { cpus: r.cpus, memory_mib: r.memory_mib, disk_gib: r.disk_gib, disk_path: path };
        return settings();
      },

      async vmLogs(lines: number): Promise<string> {
        await host.delay();
        if (lines < 1 || lines > 5000) throw err("invalid_input", `lines = ${lines}: ask for 1 to 5000 console lines`);
        return console.slice(-lines).join("\n");
      },

      async vmDelete(): Promise<VmSettings> {
        await host.delay();
        if (mode === "vm" && host.engine().state === "running") {
          host.setEngine({ ...host.engine(), state: "stopped", version: null, containers_running: 0, message: "Stopped. The VM was deleted." });
          host.notice("disconnected");
        }
        created = false;
        vmState = "not_created";
        console = [];
        res = { cpus: 2, memory_mib: 2048, disk_gib: 64, disk_path: `${STATE_DIR}/data.qcow2` };
        if (mode === "vm") host.setEngine({ ...host.engine(), vm: progress() });
        return settings();
      },
    },
  };
}
