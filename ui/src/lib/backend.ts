// The one interface between the pages and the engine. In the app it is the Tauri
// implementation below (commands in src-tauri/src/commands/*.rs, streams over
// tauri::ipc::Channel); tests and `npm run dev` in a browser use a mock (mock.ts).
// The types are generated from the Rust DTOs (src-tauri/dto) by ts-rs: never edit bindings/.

import { tauriBackend } from "./tauri";
import type { AppError } from "./bindings/AppError";
import type { BuildEvent } from "./bindings/BuildEvent";
import type { BuildRequest } from "./bindings/BuildRequest";
import type { ComposeContainer } from "./bindings/ComposeContainer";
import type { ComposeDownRequest } from "./bindings/ComposeDownRequest";
import type { ComposeEvent } from "./bindings/ComposeEvent";
import type { ComposeLogLine } from "./bindings/ComposeLogLine";
import type { ComposeProjectInfo } from "./bindings/ComposeProjectInfo";
import type { ComposeProjectSummary } from "./bindings/ComposeProjectSummary";
import type { ComposeServiceInfo } from "./bindings/ComposeServiceInfo";
import type { ComposeTarget } from "./bindings/ComposeTarget";
import type { ComposeUpRequest } from "./bindings/ComposeUpRequest";
import type { EnvEntry } from "./bindings/EnvEntry";
import type { EnvFile } from "./bindings/EnvFile";
import type { ContainerAction } from "./bindings/ContainerAction";
import type { ContainerDetails } from "./bindings/ContainerDetails";
import type { ContainerRow } from "./bindings/ContainerRow";
import type { DirListing } from "./bindings/DirListing";
import type { DiskUsage } from "./bindings/DiskUsage";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { EngineStatus } from "./bindings/EngineStatus";
import type { ExecEvent } from "./bindings/ExecEvent";
import type { ExecRequest } from "./bindings/ExecRequest";
import type { HistoryRow } from "./bindings/HistoryRow";
import type { ImageRow } from "./bindings/ImageRow";
import type { KubeContexts } from "./bindings/KubeContexts";
import type { KubeDeleteRequest } from "./bindings/KubeDeleteRequest";
import type { KubeDeleteResult } from "./bindings/KubeDeleteResult";
import type { KubeDeployRequest } from "./bindings/KubeDeployRequest";
import type { KubeDeployResult } from "./bindings/KubeDeployResult";
import type { KubeEvent } from "./bindings/KubeEvent";
import type { KubeProjectRequest } from "./bindings/KubeProjectRequest";
import type { KubeServiceType } from "./bindings/KubeServiceType";
import type { KubeStatus } from "./bindings/KubeStatus";
import type { LogChunk } from "./bindings/LogChunk";
import type { LogOptions } from "./bindings/LogOptions";
import type { LoginRequest } from "./bindings/LoginRequest";
import type { NetworkCreate } from "./bindings/NetworkCreate";
import type { NetworkRow } from "./bindings/NetworkRow";
import type { ProbeResult } from "./bindings/ProbeResult";
import type { ProgressEvent } from "./bindings/ProgressEvent";
import type { PruneReport } from "./bindings/PruneReport";
import type { PullRecord } from "./bindings/PullRecord";
import type { RegistrySettings } from "./bindings/RegistrySettings";
import type { RunRequest } from "./bindings/RunRequest";
import type { SaveReport } from "./bindings/SaveReport";
import type { StatsSample } from "./bindings/StatsSample";
import type { VolumeRow } from "./bindings/VolumeRow";
import type { EngineMode } from "./bindings/EngineMode";
import type { VmProgress } from "./bindings/VmProgress";
import type { VmResources } from "./bindings/VmResources";
import type { VmSettings } from "./bindings/VmSettings";

// The DTO types, for pages that import them from here (bindings/ has no index file).
export type {
  AppError,
  BuildEvent,
  BuildRequest,
  ComposeContainer,
  ComposeDownRequest,
  ComposeEvent,
  ComposeLogLine,
  ComposeProjectInfo,
  ComposeProjectSummary,
  ComposeServiceInfo,
  ComposeTarget,
  ComposeUpRequest,
  EnvEntry,
  EnvFile,
  ContainerAction,
  ContainerDetails,
  ContainerRow,
  DirListing,
  DiskUsage,
  EngineEvent,
  EngineStatus,
  ExecEvent,
  ExecRequest,
  HistoryRow,
  ImageRow,
  KubeContexts,
  KubeDeleteRequest,
  KubeDeleteResult,
  KubeDeployRequest,
  KubeDeployResult,
  KubeEvent,
  KubeProjectRequest,
  KubeServiceType,
  KubeStatus,
  LogChunk,
  LogOptions,
  LoginRequest,
  NetworkCreate,
  NetworkRow,
  ProbeResult,
  ProgressEvent,
  PruneReport,
  PullRecord,
  RegistrySettings,
  RunRequest,
  SaveReport,
  StatsSample,
  VolumeRow,
  EngineMode,
  VmProgress,
  VmResources,
  VmSettings,
};

/** A running stream (logs, stats, events, engine status); close() stops it engine-side. */
export interface Subscription {
  close(): Promise<void>;
}

/** An exec terminal: write keystrokes, resize, close. */
export interface ExecSession extends Subscription {
  /** Raw input as the terminal produced it (xterm's onData string). */
  input(data: string): Promise<void>;
  resize(cols: number, rows: number): Promise<void>;
}

export interface Backend {
  // engine
  engineStatus(): Promise<EngineStatus>;
  engineStart(): Promise<EngineStatus>;
  engineStop(): Promise<EngineStatus>;
  /** Pushes the status now and on every change (also when the tray starts/stops it). */
  watchEngine(on: (s: EngineStatus) => void): Promise<Subscription>;
  /** The engine's /events, reconnecting when the engine comes back (kind "engine"). */
  watchEvents(on: (e: EngineEvent) => void): Promise<Subscription>;
  diskUsage(): Promise<DiskUsage>;
  openUrl(url: string): Promise<void>;

  // containers
  containersList(): Promise<ContainerRow[]>;
  containerAction(id: string, action: ContainerAction): Promise<void>;
  containerRemove(id: string, force: boolean, volumes: boolean): Promise<void>;
  containerInspect(id: string): Promise<ContainerDetails>;
  /** Creates and starts; pulls the image first if it is missing. Returns the id. */
  containerRun(req: RunRequest): Promise<string>;
  /** Log lines arrive in batches. */
  containerLogs(id: string, opts: LogOptions, on: (lines: LogChunk[]) => void): Promise<Subscription>;
  /** One sample per container per second while open. */
  containerStats(ids: string[], on: (s: StatsSample) => void): Promise<Subscription>;
  execStart(req: ExecRequest, on: (e: ExecEvent) => void): Promise<ExecSession>;

  // images
  imagesList(): Promise<ImageRow[]>;
  /** Resolves when the pull ended (the last event is done or error). */
  imagePull(reference: string, on: (e: ProgressEvent) => void): Promise<void>;
  imagePush(reference: string, on: (e: ProgressEvent) => void): Promise<void>;
  imageTag(source: string, target: string): Promise<void>;
  imageRemove(id: string, force: boolean): Promise<void>;
  imagesPrune(all: boolean): Promise<PruneReport>;
  imageHistory(id: string): Promise<HistoryRow[]>;
  imageInspect(id: string): Promise<string>;
  /** Checks the credentials with the engine and saves them (Docker's config.json). */
  registryLogin(req: LoginRequest): Promise<string>;
  /**
   * Builds a local folder. Rejects (invalid_input) before anything starts when the folder,
   * Dockerfile, a tag or a build arg is wrong; then every event arrives on `on`, ending with
   * `done` or `failed`. close() stops watching (and drops the engine connection).
   */
  imageBuild(req: BuildRequest, on: (e: BuildEvent) => void): Promise<Subscription>;
  /** The sub-folders of a folder (`~` or "": home), for the Build dialog's browser. */
  dirList(path: string): Promise<DirListing>;

  // compose
  /** The projects the engine has containers of (started from here or a terminal). */
  composeProjects(): Promise<ComposeProjectSummary[]>;
  /** Reads a project from its files (or the folder holding compose.yaml), with its .env.
   * A file that does not load rejects (invalid_input) with `file:line:col: key: message`. */
  composeOpen(target: ComposeTarget): Promise<ComposeProjectInfo>;
  /** The project's containers, running or not. */
  composePs(project: string): Promise<ComposeContainer[]>;
  /** `up -d`: resolves when every container started; progress on `on`. */
  composeUp(req: ComposeUpRequest, on: (e: ComposeEvent) => void): Promise<void>;
  /** `down [-v]`: containers and networks (and volumes) removed. */
  composeDown(req: ComposeDownRequest, on: (e: ComposeEvent) => void): Promise<void>;
  composeRestart(target: ComposeTarget, services: string[], on: (e: ComposeEvent) => void): Promise<void>;
  composeStop(target: ComposeTarget, services: string[], on: (e: ComposeEvent) => void): Promise<void>;
  /** Merged logs of the project's services (all when `services` is empty): the last `tail`
   * lines, then following, in batches, until closed. */
  composeLogs(project: string, services: string[], tail: number | null, on: (lines: ComposeLogLine[]) => void): Promise<Subscription>;
  /** Writes the project's .env (keeping comments and unchanged lines); returns it re-read. */
  composeEnvSave(path: string, entries: EnvEntry[]): Promise<EnvFile>;

  // Deploy to Kubernetes (the Compose page)
  /** The kubeconfig's contexts: `kubeconfig` when given, else $KUBECONFIG, else
   * ~/.kube/config. No file is not an error: `kubeconfig` is null and `searched` says where
   * the app looked. */
  kubeContexts(kubeconfig: string | null): Promise<KubeContexts>;
  /** Pins the images by digest, applies the objects and waits for the rollouts; progress on
   * `on`. A failed rollout rejects (code kubernetes) with the failing pods' events and last
   * log lines in the message, after its `rollout_failed` event. */
  kubeDeploy(req: KubeDeployRequest, on: (e: KubeEvent) => void): Promise<KubeDeployResult>;
  /** The project's objects in the namespace (found by their part-of label). */
  kubeStatus(req: KubeProjectRequest): Promise<KubeStatus>;
  /** Deletes the project's objects (volumes only when asked); the namespace stays. */
  kubeDelete(req: KubeDeleteRequest): Promise<KubeDeleteResult>;

  // volumes
  volumesList(): Promise<VolumeRow[]>;
  volumeCreate(name: string): Promise<VolumeRow>;
  volumeRemove(name: string, force: boolean): Promise<void>;
  volumesPrune(): Promise<PruneReport>;

  // networks
  networksList(): Promise<NetworkRow[]>;
  networkCreate(req: NetworkCreate): Promise<NetworkRow>;
  networkRemove(id: string): Promise<void>;
  networkConnect(network: string, container: string): Promise<void>;
  networkDisconnect(network: string, container: string): Promise<void>;
  networksPrune(): Promise<PruneReport>;

  // registry settings
  registrySettings(): Promise<RegistrySettings>;
  saveRegistrySettings(settings: RegistrySettings): Promise<SaveReport>;
  probeEndpoint(url: string): Promise<ProbeResult>;
  /** The engine's recent pulls, newest first, with the endpoint that served each blob. */
  pullRecords(): Promise<PullRecord[]>;

  // the engine's mode and Berth's VM (Settings → Engine)
  /** The mode, the VM's resources and state, and why it cannot start here (if so). */
  vmSettings(): Promise<VmSettings>;
  /** Switches between the native engine and the VM (saved; the app reconnects at once). */
  engineModeSet(mode: EngineMode): Promise<EngineStatus>;
  /** Saves CPUs/memory/disk: for a VM not created yet, or resizes a stopped one (a running
   * VM is refused with invalid_input). */
  vmApply(resources: VmResources): Promise<VmSettings>;
  /** The last `lines` lines of the VM's serial console. */
  vmLogs(lines: number): Promise<string>;
  /** Stops and deletes the VM: its disk (images, containers, volumes) and state. */
  vmDelete(): Promise<VmSettings>;
}

/** Every rejected backend promise carries an AppError ({code, message}). */
export function isAppError(e: unknown): e is AppError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

export function errorMessage(e: unknown): string {
  if (isAppError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

let current: Backend | null = null;

/** The backend in use: Tauri inside the app, the mock in a plain browser or a test. */
export async function backend(): Promise<Backend> {
  if (current) return current;
  const inTauri = typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
  // The Tauri backend is in the main bundle (no extra fetch before the first call); the mock
  // is only fetched outside the app.
  current = inTauri ? tauriBackend() : (await import("./mock")).mockBackend();
  return current;
}

/** Tests install their own backend. */
export function setBackend(b: Backend | null): void {
  current = b;
}
