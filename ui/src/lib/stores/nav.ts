// Which page the shell shows, and which container's details are open. Plain state, no router.

import { writable } from "svelte/store";

export type PageId = "containers" | "images" | "volumes" | "networks" | "compose" | "settings";

export const PAGES: { id: PageId; label: string }[] = [
  { id: "containers", label: "Containers" },
  { id: "images", label: "Images" },
  { id: "volumes", label: "Volumes" },
  { id: "networks", label: "Networks" },
  { id: "compose", label: "Compose" },
  { id: "settings", label: "Settings" },
];

export const page = writable<PageId>("containers");

/** The container whose details panel is open (id), or null for the list. */
export const openContainer = writable<string | null>(null);

export function navigate(to: PageId): void {
  page.set(to);
}
