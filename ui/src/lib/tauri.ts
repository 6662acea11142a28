// The Backend inside the app: one Tauri command per method (src-tauri/src/commands/*.rs),
// streams over tauri::ipc::Channel and closed with `stream_close`.

import { Channel, invoke } from "@tauri-apps/api/core";
import type { Backend, ExecSession, Subscription } from "./backend";
import { orderedSender } from "./ordered";
import type { BuildEvent } from "./bindings/BuildEvent";
import type { ComposeEvent } from "./bindings/ComposeEvent";
import type { ComposeLogLine } from "./bindings/ComposeLogLine";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { EngineStatus } from "./bindings/EngineStatus";
import type { ExecEvent } from "./bindings/ExecEvent";
import type { KubeDeployResult } from "./bindings/KubeDeployResult";
import type { KubeEvent } from "./bindings/KubeEvent";
import type { LogChunk } from "./bindings/LogChunk";
import type { ProgressEvent } from "./bindings/ProgressEvent";
import type { StatsSample } from "./bindings/StatsSample";

/** Starts a stream command (which returns its id) and wraps it as a Subscription. */
async function stream<T>(
  cmd: string,
  args: Record<string, unknown>,
  on: (t: T) => void,
): Promise<Subscription & { id: number }> {
  const channel = new Channel<T>();
  channel.onmessage = on;
  const id = await invoke<number>(cmd, { ...args, channel });
  return {
    id,
    close: () => invoke<void>("stream_close", { id }),
  };
}

/** Runs a progress command (pull/push) to its end, forwarding every event. */
async function progress(cmd: string, reference: string, on: (e: ProgressEvent) => void): Promise<void> {
  const channel = new Channel<ProgressEvent>();
  channel.onmessage = on;
  await invoke<void>(cmd, { reference, channel });
}

/** Runs a compose operation to its end, forwarding its progress events. */
async function composeOp(cmd: string, args: Record<string, unknown>, on: (e: ComposeEvent) => void): Promise<void> {
  const channel = new Channel<ComposeEvent>();
  channel.onmessage = on;
  await invoke<void>(cmd, { ...args, channel });
}

export function tauriBackend(): Backend {
  return {
    engineStatus: () => invoke("engine_status"),
    engineStart: () => invoke("engine_start"),
    engineStop: () => invoke("engine_stop"),
    watchEngine: (on) => stream<EngineStatus>("watch_engine", {}, on),
    watchEvents: (on) => stream<EngineEvent>("watch_events", {}, on),
    diskUsage: () => invoke("disk_usage"),
    openUrl: (url) => invoke("open_url", { url }),

    containersList: () => invoke("containers_list"),
    containerAction: (id, action) => invoke("container_action", { id, action }),
    containerRemove: (id, force, volumes) => invoke("container_remove", { id, force, volumes }),
    containerInspect: (id) => invoke("container_inspect", { id }),
    containerRun: (req) => invoke("container_run", { req }),
    containerLogs: (id, opts, on) => stream<LogChunk[]>("container_logs", { id, opts }, on),
    containerStats: (ids, on) => stream<StatsSample>("container_stats", { ids }, on),
    execStart: async (req, on): Promise<ExecSession> => {
      const s = await stream<ExecEvent>("exec_start", { req }, on);
      return {
        close: s.close,
        input: orderedSender((data) => invoke("exec_input", { id: s.id, data })),
        resize: (cols, rows) => invoke("exec_resize", { id: s.id, cols, rows }),
      };
    },

    imagesList: () => invoke("images_list"),
    imagePull: (reference, on) => progress("image_pull", reference, on),
    imagePush: (reference, on) => progress("image_push", reference, on),
    imageTag: (source, target) => invoke("image_tag", { source, target }),
    imageRemove: (id, force) => invoke("image_remove", { id, force }),
    imagesPrune: (all) => invoke("images_prune", { all }),
    imageHistory: (id) => invoke("image_history", { id }),
    imageInspect: (id) => invoke("image_inspect", { id }),
    registryLogin: (req) => invoke("registry_login", { req }),
    imageBuild: (req, on) => stream<BuildEvent>("image_build", { req }, on),
    dirList: (path) => invoke("dir_list", { path }),

    composeProjects: () => invoke("compose_projects"),
    composeOpen: (target) => invoke("compose_open", { target }),
    composePs: (project) => invoke("compose_ps", { project }),
    composeUp: (req, on) => composeOp("compose_up", { req }, on),
    composeDown: (req, on) => composeOp("compose_down", { req }, on),
    composeRestart: (target, services, on) => composeOp("compose_restart", { target, services }, on),
    composeStop: (target, services, on) => composeOp("compose_stop", { target, services }, on),
    composeLogs: (project, services, tail, on) => stream<ComposeLogLine[]>("compose_logs", { project, services, tail }, on),
    composeEnvSave: (path, entries) => invoke("compose_env_save", { path, entries }),

    kubeContexts: (kubeconfig) => invoke("kube_contexts", { kubeconfig }),
    kubeDeploy: (req, on) => {
      const channel = new Channel<KubeEvent>();
      channel.onmessage = on;
      return invoke<KubeDeployResult>("kube_deploy", { req, channel });
    },
    kubeStatus: (req) => invoke("kube_status", { req }),
    kubeDelete: (req) => invoke("kube_delete", { req }),

    volumesList: () => invoke("volumes_list"),
    volumeCreate: (name) => invoke("volume_create", { name }),
    volumeRemove: (name, force) => invoke("volume_remove", { name, force }),
    volumesPrune: () => invoke("volumes_prune"),

    networksList: () => invoke("networks_list"),
    networkCreate: (req) => invoke("network_create", { req }),
    networkRemove: (id) => invoke("network_remove", { id }),
    networkConnect: (network, container) => invoke("network_connect", { network, container }),
    networkDisconnect: (network, container) => invoke("network_disconnect", { network, container }),
    networksPrune: () => invoke("networks_prune"),

    registrySettings: () => invoke("registry_settings"),
    saveRegistrySettings: (settings) => invoke("save_registry_settings", { settings }),
    probeEndpoint: (url) => invoke("probe_endpoint", { url }),
    pullRecords: () => invoke("pull_records"),

    vmSettings: () => invoke("vm_settings"),
    engineModeSet: (mode) => invoke("engine_mode_set", { mode }),
    vmApply: (resources) => invoke("vm_apply", { resources }),
    vmLogs: (lines) => invoke("vm_logs", { lines }),
    vmDelete: () => invoke("vm_delete"),
  };
}
