// Images, refreshed on image events and on container events (the "in use" counts).
import { backend } from "../backend";
import type { ImageRow } from "../bindings/ImageRow";
import { resourceStore } from "./resource";

export const images = resourceStore<ImageRow>(async () => (await backend()).imagesList(), ["image", "container"]);
