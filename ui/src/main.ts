import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";

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
    void import("@tauri-apps/api/core").then(({ invoke }) => invoke("report_first_list", { pageMs }));
  };
}

const app = mount(App, { target: document.getElementById("app")! });

export default app;
