// What a mirror's Test button has found so far.
import type { ProbeResult } from "../../bindings/ProbeResult";

export type ProbeState = { kind: "pending" } | { kind: "result"; result: ProbeResult } | { kind: "error"; message: string };
