import { mount } from "svelte";
import { invoke } from "@tauri-apps/api/core";
import "./app.css";
import App from "./App.svelte";
import { containers } from "./lib/stores/containers";

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

// The first screen's list is fetched while the shell mounts (the shell's own load joins it).
void containers.ensure();

const app = mount(App, { target: document.getElementById("app")! });

export default app;
