// Volumes, refreshed on volume events and on container events (the "used by" names).
import { backend } from "../backend";
import type { VolumeRow } from "../bindings/VolumeRow";
import { resourceStore } from "./resource";

export const volumes = resourceStore<VolumeRow>(async () => (await backend()).volumesList(), ["volume", "container"]);
