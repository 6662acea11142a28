import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend } from "../lib/backend";
import { mockBackend } from "../lib/mock";
import { containers } from "../lib/stores/containers";
import { startEvents } from "../lib/stores/events";
import { confirmation, toasts } from "../lib/ui";
import { highlight, stripAnsi } from "../lib/components/containers/LogsView.svelte";
import { decodeBase64 } from "../lib/components/containers/TerminalView.svelte";
import ContainerDetails from "./ContainerDetails.svelte";

let stop: (() => void) | null = null;

async function open(name: string) {
  const b = mockBackend({ latency: 0 });
  setBackend(b);
  stop = await startEvents();
  await containers.refresh();
  const id = get(containers).items.find((c) => c.name === name)!.id;
  const onclose = vi.fn();
  render(ContainerDetails, { id, onclose });
  return { b, id, onclose };
}

afterEach(() => {
  cleanup();
  stop?.();
  stop = null;
  setBackend(null);
  toasts.set([]);
  confirmation.set(null);
});

describe("container details", () => {
  it("streams logs, highlights a search and shows timestamps on demand", async () => {
    const { b, id } = await open("shop-api-1");
    const logs = vi.spyOn(b, "containerLogs");
    const box = await screen.findByTestId("logs");
    await waitFor(() => expect(box.textContent).toContain("listening addr=0.0.0.0:8080"));
    await fireEvent.input(screen.getByTestId("logs-search"), { target: { value: "LISTENING" } });
    const marks = [...box.querySelectorAll("mark")].map((m) => m.textContent);
    expect(marks).toEqual(["listening"]);
    expect(box.querySelector(".ts")).toBeNull();
    await fireEvent.click(screen.getByTestId("logs-timestamps"));
    await waitFor(() => expect(box.querySelector(".ts")?.textContent).toMatch(/^\d\d:\d\d:\d\d/));
    expect(logs).toHaveBeenLastCalledWith(id, { follow: true, tail: 2000, timestamps: true }, expect.any(Function));
  });

  it("shows the readable inspect and the raw JSON pretty-printed", async () => {
    await open("shop-db-1");
    await fireEvent.click(screen.getByTestId("tab-inspect"));
    const raw = await screen.findByTestId("inspect-raw");
    expect(raw.textContent).toContain('\n  "Name": "/shop-db-1"');
    const readable = screen.getByTestId("inspect-readable");
    expect(readable.textContent).toContain("postgres:16-alpine");
    expect(readable.textContent).toContain("POSTGRES_USER");
    expect(readable.textContent).toContain("/var/lib/postgresql/data");
    expect(readable.textContent).toContain("unless-stopped");
    expect(readable.textContent).toContain("com.docker.compose.project");
  });

  it("draws live stats graphs", async () => {
    await open("metrics");
    await fireEvent.click(screen.getByTestId("tab-stats"));
    const cpu = await screen.findByTestId("stats-cpu");
    expect(screen.getByTestId("stats-memory")).toBeTruthy();
    expect(screen.getByTestId("stats-network")).toBeTruthy();
    expect(cpu.querySelector(".legend b")?.textContent).toBe("—");
    await waitFor(() => expect(cpu.querySelector("path")?.getAttribute("d")).toMatch(/^M600(\.0)?,\d/));
    expect(cpu.querySelector(".legend b")?.textContent).toMatch(/^\d+\.\d%$/);
    expect(screen.getByTestId("stats-memory").querySelector(".legend b")?.textContent).toMatch(/MiB$/);
  });

  it("closes after removing, once confirmed", async () => {
    const { onclose } = await open("pg-old");
    await fireEvent.click(screen.getByTestId("action-remove"));
    await waitFor(() => expect(get(confirmation)).not.toBeNull());
    get(confirmation)!.resolve(true);
    await waitFor(() => expect(onclose).toHaveBeenCalled());
    await fireEvent.click(screen.getByTestId("details-close"));
    expect(onclose).toHaveBeenCalledTimes(2);
  });
});

describe("helpers", () => {
  it("highlight splits around case-insensitive matches", () => {
    expect(highlight("Error: error!", "error")).toEqual([
      { text: "Error", hit: true },
      { text: ": ", hit: false },
      { text: "error", hit: true },
      { text: "!", hit: false },
    ]);
    expect(highlight("abc", "")).toEqual([{ text: "abc", hit: false }]);
  });
  it("stripAnsi drops colour codes", () => {
    expect(stripAnsi("\x1b[32mINFO\x1b[0m ready")).toBe("INFO ready");
  });
  it("decodeBase64 gives the raw bytes (UTF-8 untouched)", () => {
    expect([...decodeBase64(btoa("hi\r\n"))]).toEqual([104, 105, 13, 10]);
    expect(new TextDecoder().decode(decodeBase64("w6k="))).toBe("é");
  });
});
