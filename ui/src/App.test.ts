import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { setBackend } from "./lib/backend";
import { mockBackend } from "./lib/mock";
import { page } from "./lib/stores/nav";
import { resetEngine } from "./lib/stores/engine";
import { confirmAction, toast, toasts } from "./lib/ui";
import App from "./App.svelte";

afterEach(() => {
  cleanup();
  setBackend(null);
  page.set("containers");
  toasts.set([]);
  resetEngine();
  localStorage.clear();
});

describe("the shell", () => {
  it("switches pages from the sidebar and with Alt+digit", async () => {
    setBackend(mockBackend({ latency: 0 }));
    render(App);
    await waitFor(() => expect(screen.getByTestId("engine-status").dataset.state).toBe("running"));
    expect(screen.getByTestId("engine-status").textContent).toContain("Engine running · v0.1.0");
    expect(screen.getByTestId("page-title").textContent).toContain("Containers");
    // pages other than Containers load on first visit
    const title = () => screen.getByTestId("page-title").textContent;
    await fireEvent.click(screen.getByTestId("nav-volumes"));
    await waitFor(() => expect(title()).toContain("Volumes"));
    await fireEvent.keyDown(window, { key: "2", code: "Digit2", altKey: true });
    await waitFor(() => expect(title()).toContain("Images"));
    await fireEvent.keyDown(screen.getByTestId("nav-images"), { key: "ArrowDown" });
    await waitFor(() => expect(title()).toContain("Volumes"));
    expect(document.activeElement).toBe(screen.getByTestId("nav-volumes"));
  });

  it("shows engine-down with the socket, and Start brings the pages back", async () => {
    setBackend(mockBackend({ latency: 0, engine: "stopped" }));
    render(App);
    const down = await screen.findByTestId("engine-down");
    expect(down.textContent).toContain("unix:///run/berth/berth.sock");
    expect(down.textContent).toContain("not running");
    expect(screen.getByTestId("engine-status").dataset.state).toBe("stopped");
    const starts = screen.getAllByTestId("engine-start");
    await fireEvent.click(starts[starts.length - 1]);
    await waitFor(() => expect(screen.queryByTestId("engine-down")).toBeNull());
    await waitFor(() => expect(screen.getAllByTestId("container-row").length).toBeGreaterThan(0));
    await fireEvent.click(screen.getByTestId("engine-stop"));
    await screen.findByTestId("engine-down");
  });

  it("renders toasts and confirmations", async () => {
    setBackend(mockBackend({ latency: 0 }));
    render(App);
    toast("Saved", "success");
    const t = await screen.findByTestId("toast");
    expect(t.dataset.kind).toBe("success");
    const answer = confirmAction("Remove x?", "Really", "Remove");
    await fireEvent.click(await screen.findByTestId("confirm-cancel"));
    expect(await answer).toBe(false);
    const again = confirmAction("Remove x?", "Really", "Remove");
    await fireEvent.click(await screen.findByTestId("confirm-ok"));
    expect(await again).toBe(true);
  });

  it("applies the saved theme", async () => {
    localStorage.setItem("berth.theme", "dark");
    setBackend(mockBackend({ latency: 0 }));
    render(App);
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe("dark"));
  });
});
