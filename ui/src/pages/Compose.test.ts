import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend, type Backend, type Subscription } from "../lib/backend";
import { mockBackend, openedUrls } from "../lib/mock";
import { startEvents } from "../lib/stores/events";
import { composeProjects, reloadRemembered, remembered } from "../lib/stores/compose";
import { toasts } from "../lib/ui";
import Compose from "./Compose.svelte";

let stopEvents: (() => void) | null = null;

afterEach(async () => {
  cleanup();
  stopEvents?.();
  stopEvents = null;
  setBackend(null);
  toasts.set([]);
  localStorage.clear();
  reloadRemembered();
  await composeProjects.refresh().catch(() => {});
});

async function setup(tune?: (b: Backend) => void): Promise<Backend> {
  const b = mockBackend({ latency: 0 });
  tune?.(b);
  setBackend(b);
  stopEvents = await startEvents();
  render(Compose);
  return b;
}

const row = (service: string) => screen.getAllByTestId("compose-service-row").find((r) => r.dataset.service === service);

async function openFolder(path: string) {
  await fireEvent.click(screen.getByTestId("compose-open"));
  const input = await screen.findByTestId("compose-open-path");
  await fireEvent.input(input, { target: { value: path } });
  await fireEvent.click(screen.getByTestId("compose-open-submit"));
}

describe("Compose page", () => {
  it("lists the engine's projects (started from a terminal too) and shows the first one's services", async () => {
    const b = await setup();
    const project = await screen.findByTestId("compose-project");
    expect(project.dataset.name).toBe("shop");
    expect(project.textContent).toContain("terminal");
    expect(project.textContent).toMatch(/3\/5 running/);
    await waitFor(() => expect(row("web")?.dataset.state).toBe("running"));
    expect(row("cache")?.dataset.state).toBe("paused");
    // a container whose service the file does not have
    expect(row("migrate")?.textContent).toContain("orphan");
    expect(row("db")?.dataset.health).toBe("healthy");
    await waitFor(() => expect(within(row("api")!).getByText("build")).toBeTruthy());
    // published ports are links, like the Containers page's
    const link = within(row("web")!).getByTestId("compose-port-link");
    expect(link.textContent).toBe("8080→80");
    await fireEvent.click(link);
    await waitFor(() => expect(openedUrls(b)).toContain("http://localhost:8080"));
  });

  it("shows the empty state when there is no project", async () => {
    await setup((b) => {
      b.composeProjects = async () => [];
    });
    const empty = await screen.findByTestId("empty-state");
    expect(empty.textContent).toContain("No compose projects yet — open a compose.yaml");
  });

  it("opens a folder through the browser, brings it Up with progress, follows logs, then Down with volumes", async () => {
    const b = await setup();
    const up = vi.spyOn(b, "composeUp");
    const down = vi.spyOn(b, "composeDown");
    await screen.findByTestId("compose-project");
    await fireEvent.click(screen.getByTestId("compose-open"));
    await fireEvent.click(await screen.findByTestId("compose-browse"));
    const dir = await waitFor(() => screen.getAllByTestId("compose-browse-dir").find((d) => d.dataset.name === "hello-app")!);
    await fireEvent.click(dir);
    await waitFor(() => expect(screen.getByTestId("compose-browser").textContent).toContain("/home/dev/hello-app"));
    await fireEvent.click(screen.getByTestId("compose-browse-use"));
    // opened: remembered, listed and selected, its services not created yet
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("hello-app"));
    expect(get(remembered)).toEqual([{ name: "hello-app", files: ["/home/dev/hello-app/compose.yaml"] }]);
    expect(screen.queryByTestId("compose-open-dialog")).toBeNull();
    await waitFor(() => expect(row("web")?.dataset.state).toBe("missing"));
    expect(row("db")?.dataset.state).toBe("missing");

    await fireEvent.click(screen.getByTestId("compose-up"));
    const activity = await screen.findByTestId("compose-activity");
    await waitFor(() => expect(activity.dataset.phase).toBe("done"));
    const progress = screen.getAllByTestId("compose-progress-row").map((r) => [r.dataset.name, r.dataset.status]);
    expect(progress).toEqual([
      ["hello-app_default", "Created"],
      ["hello-app_data", "Created"],
      ["hello-app-db-1", "Started"],
      ["hello-app-web-1", "Started"],
    ]);
    expect(up).toHaveBeenCalledWith(
      { target: { files: ["/home/dev/hello-app/compose.yaml"], project_name: "hello-app", environment: {} }, services: [], build: false, no_deps: false, force_recreate: false },
      expect.any(Function),
    );
    // the table follows the engine's events
    await waitFor(() => expect(row("web")?.dataset.state).toBe("running"));
    expect(row("db")?.dataset.state).toBe("running");
    expect(within(row("web")!).getByTestId("compose-port-link").textContent).toBe("8080→8080");
    expect(screen.getAllByTestId("compose-project").find((p) => p.dataset.name === "hello-app")!.textContent).toMatch(/2\/2 running/);

    // merged logs, prefixed per service with its colour
    await fireEvent.click(screen.getByTestId("compose-tab-logs"));
    const logs = screen.getByTestId("compose-logs");
    await waitFor(() => expect(logs.querySelectorAll(".line").length).toBeGreaterThan(0));
    const services = new Set(Array.from(logs.querySelectorAll<HTMLElement>(".line")).map((l) => l.dataset.service));
    expect(services).toEqual(new Set(["web", "db"]));
    const prefix = logs.querySelector(".line[data-service=web] .prefix")!;
    expect(prefix.textContent).toBe("web-1");
    expect(prefix.className).toMatch(/\bc1\b/);
    // hiding a service filters its lines
    await fireEvent.click(screen.getAllByTestId("compose-log-filter").find((c) => c.dataset.service === "db")!);
    expect(logs.querySelectorAll(".line[data-service=db]").length).toBe(0);

    // Down asks, with a remove-volumes choice
    await fireEvent.click(screen.getByTestId("compose-down"));
    const dialog = await screen.findByTestId("compose-down-dialog");
    expect(dialog.textContent).toContain("hello-app");
    await fireEvent.click(screen.getByTestId("compose-down-volumes"));
    await fireEvent.click(screen.getByTestId("compose-down-confirm"));
    await waitFor(() => expect(screen.getByTestId("compose-activity").dataset.phase).toBe("done"));
    expect(down).toHaveBeenCalledWith(
      { target: { files: ["/home/dev/hello-app/compose.yaml"], project_name: "hello-app", environment: {} }, volumes: true, remove_orphans: false },
      expect.any(Function),
    );
    expect(screen.getAllByTestId("compose-progress-row").map((r) => r.dataset.name)).toContain("hello-app_data");
    await waitFor(() => expect(row("web")?.dataset.state).toBe("missing"));
    expect(await b.composePs("hello-app")).toEqual([]);
  });

  it("passes edited .env values to Up and saves them to the file", async () => {
    const b = await setup();
    const up = vi.spyOn(b, "composeUp");
    const save = vi.spyOn(b, "composeEnvSave");
    await screen.findByTestId("compose-project");
    await openFolder("/home/dev/hello-app");
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("hello-app"));
    await fireEvent.click(screen.getByTestId("compose-tab-env"));
    const envRow = await waitFor(() => screen.getAllByTestId("compose-env-row").find((r) => r.dataset.key === "WEB_PORT")!);
    const value = within(envRow).getByTestId("compose-env-value") as HTMLInputElement;
    expect(value.value).toBe("8080");
    await fireEvent.input(value, { target: { value: "9090" } });
    expect(screen.getByTestId("compose-up-overrides").textContent).toBe("+1");
    await fireEvent.click(screen.getByTestId("compose-up"));
    await waitFor(() => expect(screen.getByTestId("compose-activity").dataset.phase).toBe("done"));
    expect(up.mock.calls[0][0].target.environment).toEqual({ WEB_PORT: "9090" });
    await waitFor(() => expect(within(row("web")!).getByTestId("compose-port-link").textContent).toBe("9090→8080"));

    // a bad name is refused before saving
    await fireEvent.click(screen.getByTestId("compose-tab-env"));
    await fireEvent.click(screen.getByTestId("compose-env-add"));
    const keys = screen.getAllByTestId("compose-env-key");
    await fireEvent.input(keys[keys.length - 1], { target: { value: "2BAD" } });
    expect((screen.getByTestId("compose-env-save") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(keys[keys.length - 1], { target: { value: "EXTRA" } });
    const values = screen.getAllByTestId("compose-env-value");
    await fireEvent.input(values[values.length - 1], { target: { value: "yes" } });
    await fireEvent.click(screen.getByTestId("compose-env-save"));
    await waitFor(() => expect(save).toHaveBeenCalledTimes(1));
    expect(save.mock.calls[0]).toEqual([
      "/home/dev/hello-app/.env",
      [
        { key: "WEB_PORT", value: "9090" },
        { key: "GREETING", value: "hello from compose" },
        { key: "EXTRA", value: "yes" },
      ],
    ]);
    // saved: nothing is an override any more
    await waitFor(() => expect(screen.queryByTestId("compose-up-overrides")).toBeNull());
  });

  it("restarts and rebuilds one service", async () => {
    const b = await setup();
    const up = vi.spyOn(b, "composeUp");
    const restart = vi.spyOn(b, "composeRestart");
    await waitFor(() => expect(row("api")?.dataset.state).toBe("running"));
    await fireEvent.click(within(row("api")!).getByTestId("compose-service-restart"));
    await waitFor(() => expect(screen.getByTestId("compose-activity").dataset.phase).toBe("done"));
    expect(restart.mock.calls[0][1]).toEqual(["api"]);
    await fireEvent.click(within(row("api")!).getByTestId("compose-service-rebuild"));
    await waitFor(() => expect(up).toHaveBeenCalledTimes(1));
    await waitFor(() => expect(screen.getByTestId("compose-activity").dataset.phase).toBe("done"));
    expect(up.mock.calls[0][0]).toMatchObject({ services: ["api"], build: true, no_deps: true });
    const statuses = screen.getAllByTestId("compose-progress-row").map((r) => `${r.dataset.name}:${r.dataset.status}`);
    expect(statuses).toContain("shop-api-1:Started");
    expect(statuses.some((s) => s.endsWith(":Built"))).toBe(true);
    // only api was recreated: web kept running, untouched
    expect(statuses.some((s) => s.startsWith("shop-web-1"))).toBe(false);
  });

  it("shows a compose file that does not load with its file, line and column", async () => {
    await setup();
    await screen.findByTestId("compose-project");
    await openFolder("/home/dev/broken-app");
    const err = await screen.findByTestId("compose-open-error");
    expect(err.textContent).toContain("/home/dev/broken-app/compose.yaml, line 7, column 9");
    expect(err.textContent).toContain("services.web.ports[0]");
    // nothing was remembered
    expect(get(remembered)).toEqual([]);
    await fireEvent.input(screen.getByTestId("compose-open-path"), { target: { value: "/home/dev" } });
    await fireEvent.click(screen.getByTestId("compose-open-submit"));
    await waitFor(() => expect(screen.getByTestId("compose-open-error").textContent).toContain("No compose file in /home/dev"));
  });

  it("closes the log stream when the page goes away", async () => {
    const closed: string[] = [];
    await setup((b) => {
      const orig = b.composeLogs.bind(b);
      b.composeLogs = async (project, services, tail, on): Promise<Subscription> => {
        const s = await orig(project, services, tail, on);
        return { close: async () => { closed.push(project); await s.close(); } };
      };
    });
    await waitFor(() => expect(screen.getByTestId("compose-logs").querySelectorAll(".line").length).toBeGreaterThan(0));
    cleanup();
    await waitFor(() => expect(closed).toEqual(["shop"]));
  });

  it("moves between projects with the arrow keys", async () => {
    localStorage.setItem("berth.compose.projects", JSON.stringify([{ name: "hello-app", files: ["/home/dev/hello-app/compose.yaml"] }]));
    reloadRemembered();
    await setup();
    await waitFor(() => expect(screen.getAllByTestId("compose-project").map((p) => p.dataset.name)).toEqual(["hello-app", "shop"]));
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("hello-app"));
    await fireEvent.keyDown(screen.getAllByTestId("compose-project")[0], { key: "ArrowDown" });
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("shop"));
    expect(document.activeElement).toBe(screen.getAllByTestId("compose-project")[1]);
  });
});
