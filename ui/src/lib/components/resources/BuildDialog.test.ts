import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { setBackend } from "../../backend";
import { toasts } from "../../ui";
import Images from "../../../pages/Images.svelte";
import { installMock } from "../../../pages/test-backend";

afterEach(() => {
  cleanup();
  setBackend(null);
  toasts.set([]);
});

async function openBuild() {
  render(Images);
  await waitFor(() => expect(screen.getAllByTestId("image-row").length).toBeGreaterThan(0));
  await fireEvent.click(screen.getByTestId("build-open"));
  return screen.findByTestId("build-dialog");
}

describe("Build dialog", () => {
  it("sends the form as a BuildRequest, streams the steps, and lands on the new image", async () => {
    const { b } = installMock({ speed: 0.02 });
    await openBuild();
    await fireEvent.input(screen.getByTestId("build-folder"), { target: { value: "/home/dev/hello-app" } });
    await fireEvent.input(screen.getByTestId("build-tag"), { target: { value: "hello:1" } });
    await fireEvent.click(screen.getByTestId("build-add-tag"));
    await fireEvent.input(screen.getAllByTestId("build-tag")[1], { target: { value: "hello:latest" } });
    await fireEvent.click(screen.getByTestId("build-add-arg"));
    await fireEvent.input(screen.getByTestId("build-arg-key"), { target: { value: "VERSION" } });
    await fireEvent.input(screen.getByTestId("build-arg-value"), { target: { value: "1.2" } });
    await fireEvent.input(screen.getByTestId("build-target"), { target: { value: "final" } });
    await fireEvent.click(screen.getByTestId("build-no-cache"));
    await fireEvent.click(screen.getByTestId("build-submit"));
    expect(b.imageBuild).toHaveBeenCalledWith(
      {
        context_dir: "/home/dev/hello-app",
        dockerfile: "Dockerfile",
        tags: ["hello:1", "hello:latest"],
        build_args: [["VERSION", "1.2"]],
        target: "final",
        no_cache: true,
        pull: false,
      },
      expect.any(Function),
    );
    const done = await screen.findByTestId("build-done", {}, { timeout: 3000 });
    const steps = screen.getAllByTestId("build-step");
    expect(steps.map((s) => s.dataset.n)).toEqual(["1", "2", "3", "4"]);
    expect(steps.every((s) => s.dataset.cached === "false" && s.dataset.state === "done")).toBe(true);
    expect(screen.getAllByTestId("build-step-time").every((t) => /^\d+\.\ds$/.test(t.textContent ?? ""))).toBe(true);
    expect(screen.getAllByTestId("build-output").map((o) => o.textContent)).toContain("hello from the build context");
    expect(done.textContent).toContain("Built");
    const id = done.dataset.id!;
    await fireEvent.click(screen.getByTestId("build-show-image"));
    await waitFor(() => expect(screen.queryByTestId("build-dialog")).toBeNull());
    await waitFor(() => {
      const rows = screen.getAllByTestId("image-row").filter((r) => r.dataset.id === id);
      expect(rows.map((r) => r.dataset.tag).sort()).toEqual(["1", "latest"]);
      expect(rows.every((r) => r.dataset.selected === "true")).toBe(true);
    });
  });

  it("shows cache hits on a second build", async () => {
    installMock({ speed: 0.02 });
    await openBuild();
    await fireEvent.input(screen.getByTestId("build-folder"), { target: { value: "/home/dev/hello-app" } });
    await fireEvent.click(screen.getByTestId("build-submit"));
    await screen.findByTestId("build-done", {}, { timeout: 3000 });
    expect(screen.queryAllByTestId("build-step-cached")).toHaveLength(0);
    expect(screen.getByTestId("build-submit").textContent).toContain("Build again");
    await fireEvent.click(screen.getByTestId("build-submit"));
    await screen.findByTestId("build-done", {}, { timeout: 3000 });
    const cached = screen.getAllByTestId("build-step").filter((s) => s.dataset.cached === "true");
    expect(cached.map((s) => s.dataset.n)).toEqual(["2", "3", "4"]);
    expect(screen.getAllByTestId("build-step-cached")).toHaveLength(3);
  });

  it("shows a Dockerfile error with its line, the problem marked and the suggestion", async () => {
    installMock({ speed: 0.02 });
    await openBuild();
    await fireEvent.input(screen.getByTestId("build-folder"), { target: { value: "/home/dev/broken-app" } });
    await fireEvent.click(screen.getByTestId("build-submit"));
    const err = await screen.findByTestId("build-error", {}, { timeout: 3000 });
    expect(err.dataset.line).toBe("2");
    expect(screen.getByTestId("build-error-location").textContent).toContain("Dockerfile, line 2");
    expect(screen.getByTestId("build-error-source").textContent).toContain("WORK /app");
    expect(screen.getByTestId("build-error-mark").textContent).toBe("WORK");
    expect(screen.getByTestId("build-error-suggestion").textContent).toContain("Did you mean WORKDIR?");
  });

  it("validates the folder and tags, and shows the backend's refusal", async () => {
    const { b } = installMock({ speed: 0 });
    await openBuild();
    await fireEvent.click(screen.getByTestId("build-submit"));
    expect(b.imageBuild).not.toHaveBeenCalled();
    expect(screen.getByTestId("build-dialog").textContent).toContain("enter the folder");
    await fireEvent.input(screen.getByTestId("build-folder"), { target: { value: "relative" } });
    expect(screen.getByTestId("build-dialog").textContent).toContain("full path");
    await fireEvent.input(screen.getByTestId("build-folder"), { target: { value: "/home/dev/missing" } });
    await fireEvent.input(screen.getByTestId("build-tag"), { target: { value: "Bad Tag" } });
    expect(screen.getByTestId("build-submit")).toHaveProperty("disabled", true);
    await fireEvent.input(screen.getByTestId("build-tag"), { target: { value: "ok:1" } });
    await fireEvent.click(screen.getByTestId("build-submit"));
    const e = await screen.findByTestId("build-form-error");
    expect(e.textContent).toContain("/home/dev/missing cannot be opened");
    expect(screen.queryByTestId("build-log")).toBeNull();
  });

  it("browses folders and uses the chosen one", async () => {
    installMock({ speed: 0 });
    await openBuild();
    await fireEvent.input(screen.getByTestId("build-folder"), { target: { value: "/home/dev" } });
    await fireEvent.click(screen.getByTestId("build-browse"));
    const dir = await waitFor(() => screen.getAllByTestId("build-browse-dir").find((d) => d.dataset.name === "hello-app")!);
    await fireEvent.click(dir);
    await waitFor(() => expect(screen.getByTestId("build-browser").textContent).toContain("/home/dev/hello-app"));
    await fireEvent.click(screen.getByTestId("build-browse-use"));
    expect((screen.getByTestId("build-folder") as HTMLInputElement).value).toBe("/home/dev/hello-app");
    expect(screen.queryByTestId("build-browser")).toBeNull();
  });
});
