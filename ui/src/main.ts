import { mount } from "svelte";
import { invoke } from "@tauri-apps/api/core";
import "./app.css";
import App from "./App.svelte";
import { applyPlatform } from "./lib/theme";
import { loadFirst } from "./lib/stores/containers";

declare global {
  interface Window {
    /** Called by the Containers page once its first list is on screen (start-up benchmark). */
    __berthFirstList?: () => void;
  }
}

if ("__TAURI_INTERNALS__" in window) {
  let reported = false;
  window.__berthFirstList = () => {
    if (reported) return;
    reported = true;
    const pageMs = performance.now();
    void invoke("report_first_list", { pageMs }).catch(() => {});
  };
}

// Before the first render: the fonts app.css picks depend on it.
applyPlatform();

// The first screen's list: the app's prefetch, or fetched while the shell mounts (the shell's
// own load joins it).
void loadFirst();

const app = mount(App, { target: document.getElementById("app")! });

export default app;
