// Networks, refreshed on network events and on container events (members change when
// containers start, stop or are removed).
import { backend } from "../backend";
import type { NetworkRow } from "../bindings/NetworkRow";
import { resourceStore } from "./resource";

export const networks = resourceStore<NetworkRow>(async () => (await backend()).networksList(), ["network", "container"]);
