import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend, type Backend } from "../lib/backend";
import { mockBackend, openedUrls } from "../lib/mock";
import { containers } from "../lib/stores/containers";
import { openContainer } from "../lib/stores/nav";
import { dispatch, startEvents } from "../lib/stores/events";
import { confirmation, toasts } from "../lib/ui";
import Containers, { resetFirstListMark } from "./Containers.svelte";

let stopEvents: (() => void) | null = null;

async function setup(opts: { containers?: number } = {}): Promise<Backend> {
  const b = mockBackend({ latency: 0, engine: "running", ...opts });
  setBackend(b);
  stopEvents = await startEvents();
  await containers.refresh();
  render(Containers);
  return b;
}

const rows = () => screen.queryAllByTestId("container-row");
const rowByName = (name: string) => rows().find((r) => r.dataset.name === name);

async function answer(ok: boolean) {
  await waitFor(() => expect(get(confirmation)).not.toBeNull());
  const req = get(confirmation)!;
  req.resolve(ok);
  return req;
}

beforeEach(() => {
  resetFirstListMark();
  delete document.body.dataset.firstList;
});

afterEach(() => {
  cleanup();
  stopEvents?.();
  stopEvents = null;
  setBackend(null);
  openContainer.set(null);
  toasts.set([]);
  confirmation.set(null);
  vi.restoreAllMocks();
});

describe("Containers page", () => {
  it("renders the mock's containers with state, ports and compose groups", async () => {
    await setup();
    await waitFor(() => expect(rows().length).toBe(9));
    const web = rowByName("shop-web-1")!;
    expect(web.dataset.state).toBe("running");
    expect(web.dataset.id).toMatch(/^[0-9a-f]{64}$/);
    expect(within(web).getByTestId("container-open").textContent?.trim()).toBe("web");
    expect(within(web).getByTestId("port-link").textContent).toBe("8080→80");
    expect(within(web).queryByTestId("action-stop")).not.toBeNull();
    expect(within(web).queryByTestId("action-start")).toBeNull();
    expect(within(rowByName("pg-old")!).queryByTestId("action-start")).not.toBeNull();
    expect(within(rowByName("shop-cache-1")!).queryByTestId("action-unpause")).not.toBeNull();
    const groups = screen.getAllByTestId("group-row");
    expect(groups.map((g) => g.dataset.project)).toEqual(["shop"]);
    expect(groups[0].textContent).toContain("3/5 running");
  });

  it("filters by the search box and the state filter; collapses a project", async () => {
    await setup();
    await waitFor(() => expect(rows().length).toBe(9));
    await fireEvent.input(screen.getByTestId("container-search"), { target: { value: "postgres" } });
    expect(rows().map((r) => r.dataset.name).sort()).toEqual(["pg-old", "shop-db-1"]);
    await fireEvent.click(screen.getByTestId("filter-running"));
    expect(rows().map((r) => r.dataset.name)).toEqual(["shop-db-1"]);
    await fireEvent.input(screen.getByTestId("container-search"), { target: { value: "nothing-like-this" } });
    expect(rows()).toHaveLength(0);
    expect(screen.getByTestId("no-matches")).toBeTruthy();
    await fireEvent.input(screen.getByTestId("container-search"), { target: { value: "" } });
    await fireEvent.click(screen.getByTestId("filter-all"));
    const toggle = within(screen.getByTestId("group-row")).getByRole("button", { expanded: true });
    await fireEvent.click(toggle);
    expect(rows().map((r) => r.dataset.name)).not.toContain("shop-web-1");
    expect(rows()).toHaveLength(4);
  });

  it("asks before removing, and forces the removal of a running container", async () => {
    const b = await setup();
    const remove = vi.spyOn(b, "containerRemove");
    await waitFor(() => expect(rowByName("dev-proxy")).toBeTruthy());
    const proxyId = rowByName("dev-proxy")!.dataset.id;

    await fireEvent.click(within(rowByName("dev-proxy")!).getByTestId("action-remove"));
    const req = await answer(false);
    expect(req.message).toContain("running");
    expect(remove).not.toHaveBeenCalled();
    expect(rowByName("dev-proxy")).toBeTruthy();

    await fireEvent.click(within(rowByName("dev-proxy")!).getByTestId("action-remove"));
    await answer(true);
    await waitFor(() => expect(rowByName("dev-proxy")).toBeUndefined());
    expect(remove).toHaveBeenCalledWith(proxyId, true, false);

    await fireEvent.click(within(rowByName("pg-old")!).getByTestId("action-remove"));
    await answer(true);
    await waitFor(() => expect(rowByName("pg-old")).toBeUndefined());
    expect(remove).toHaveBeenLastCalledWith(expect.any(String), false, false);
  });

  it("runs row actions and the list follows the engine's events", async () => {
    await setup();
    await waitFor(() => expect(rowByName("pg-old")).toBeTruthy());
    await fireEvent.click(within(rowByName("pg-old")!).getByTestId("action-start"));
    await waitFor(() => expect(rowByName("pg-old")!.dataset.state).toBe("running"));
    await fireEvent.click(within(rowByName("pg-old")!).getByTestId("action-pause"));
    await waitFor(() => expect(rowByName("pg-old")!.dataset.state).toBe("paused"));
    await fireEvent.click(within(rowByName("pg-old")!).getByTestId("action-unpause"));
    await waitFor(() => expect(rowByName("pg-old")!.dataset.state).toBe("running"));
    await fireEvent.click(within(rowByName("pg-old")!).getByTestId("action-stop"));
    await waitFor(() => expect(rowByName("pg-old")!.dataset.state).toBe("exited"));
  });

  it("shows an error toast when an action fails", async () => {
    const b = await setup();
    vi.spyOn(b, "containerAction").mockRejectedValueOnce({ code: "conflict", message: "port is already allocated" });
    await waitFor(() => expect(rowByName("pg-old")).toBeTruthy());
    await fireEvent.click(within(rowByName("pg-old")!).getByTestId("action-start"));
    await waitFor(() => expect(get(toasts).some((t) => t.kind === "error" && t.message.includes("port is already allocated"))).toBe(true));
  });

  it("bulk-stops and bulk-removes the selected containers", async () => {
    await setup();
    await waitFor(() => expect(rows().length).toBe(9));
    for (const n of ["dev-proxy", "metrics", "scratchpad"]) await fireEvent.click(within(rowByName(n)!).getByTestId("row-select"));
    await fireEvent.click(screen.getByTestId("bulk-stop"));
    await waitFor(() => expect(["dev-proxy", "metrics"].map((n) => rowByName(n)!.dataset.state)).toEqual(["exited", "exited"]));
    await fireEvent.click(screen.getByTestId("bulk-remove"));
    const req = await answer(true);
    expect(req.title).toBe("Remove 3 containers?");
    await waitFor(() => expect(rows().length).toBe(6));
    expect(screen.queryByTestId("bulk-remove")).toBeNull();
  });

  it("opens published ports through the backend", async () => {
    const b = await setup();
    await waitFor(() => expect(rowByName("shop-web-1")).toBeTruthy());
    await fireEvent.click(within(rowByName("shop-web-1")!).getByTestId("port-link"));
    await waitFor(() => expect(openedUrls(b)).toEqual(["http://localhost:8080"]));
  });

  it("shows the empty state when there are no containers", async () => {
    const b = mockBackend({ latency: 0 });
    const list = await b.containersList();
    for (const c of list) await b.containerRemove(c.id, true, false);
    setBackend(b);
    await containers.refresh();
    render(Containers);
    const empty = await screen.findByTestId("empty-state");
    expect(empty.textContent).toContain("No containers yet — pull an image or run one");
    await waitFor(() => expect(document.body.dataset.firstList).toBeDefined());
  });

  it("keeps only the visible rows of 1,000 containers in the DOM and marks the first paint", async () => {
    const first = vi.fn();
    (window as unknown as { __berthFirstList?: () => void }).__berthFirstList = first;
    await setup({ containers: 1000 });
    await waitFor(() => expect(rows().length).toBeGreaterThan(10));
    expect(rows().length).toBeLessThan(60);
    expect(get(containers).items).toHaveLength(1000);
    await waitFor(() => expect(first).toHaveBeenCalledTimes(1));
    expect(Number(document.body.dataset.firstList)).toBeGreaterThan(0);
    // scrolled to the end, the last rows are rendered instead
    const slots = new Set(rows());
    const headers = screen.queryAllByTestId("group-row").length;
    const wrap = document.querySelector<HTMLDivElement>(".table-wrap")!;
    wrap.scrollTop = 5000 * 36; // beyond the end (jsdom does not clamp)
    await fireEvent.scroll(wrap);
    await waitFor(() => expect(rows().some((r) => r.dataset.name === "box-0998" || r.dataset.name === "box-0997")).toBe(true));
    expect(rows().length).toBeLessThan(60);
    // in the same row elements (recycled slots, not rows built anew; a slot that held a
    // project's header becomes a container row), each showing and acting on its new container
    const reused = rows().filter((r) => slots.has(r)).length;
    expect(reused).toBeGreaterThan(0);
    expect(reused).toBeGreaterThanOrEqual(rows().length - headers);
    const last = rows().find((r) => r.dataset.name === "box-0998")!;
    const id = get(containers).items.find((c) => c.name === "box-0998")!.id;
    expect(last.dataset.id).toBe(id);
    expect(within(last).getByTestId("container-open").textContent?.trim()).toBe("box-0998");
    await fireEvent.click(within(last).getByTestId("container-open"));
    expect(get(openContainer)).toBe(id);
    openContainer.set(null);
    delete (window as unknown as { __berthFirstList?: () => void }).__berthFirstList;
  });

  it("refreshes the list from the engine's events (one subscription)", async () => {
    const b = await setup();
    await waitFor(() => expect(rows().length).toBe(9));
    await b.containerRun({ image: "redis:7", name: "from-cli", ports: [], volumes: [], env: [], network: "", restart: "no", command: "", auto_remove: false });
    await waitFor(() => expect(rowByName("from-cli")?.dataset.state).toBe("running"));
    // an unrelated event does not disturb it
    dispatch({ kind: "image", action: "pull", id: "x", attributes: {}, time_ms: 0 });
    expect(rowByName("from-cli")).toBeTruthy();
  });
});
