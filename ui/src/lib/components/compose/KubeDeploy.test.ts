import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import { setBackend, type Backend } from "../../backend";
import { mockBackend, type MockOptions } from "../../mock";
import { startEvents } from "../../stores/events";
import { composeProjects, reloadRemembered } from "../../stores/compose";
import { toasts } from "../../ui";
import Compose from "../../../pages/Compose.svelte";

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

async function setup(opts: MockOptions = {}, tune?: (b: Backend) => void): Promise<Backend> {
  const b = mockBackend({ latency: 0, ...opts });
  tune?.(b);
  setBackend(b);
  stopEvents = await startEvents();
  render(Compose);
  return b;
}

async function openFolder(path: string, name: string) {
  await screen.findByTestId("compose-project");
  await fireEvent.click(screen.getByTestId("compose-open"));
  await fireEvent.input(await screen.findByTestId("compose-open-path"), { target: { value: path } });
  await fireEvent.click(screen.getByTestId("compose-open-submit"));
  await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe(name));
}

/** Opens the dialog from the project header and waits for the contexts. */
async function openDialog(): Promise<HTMLElement> {
  const button = await screen.findByTestId("compose-kube-deploy");
  await waitFor(() => expect((button as HTMLButtonElement).disabled).toBe(false));
  await fireEvent.click(button);
  const dialog = await screen.findByTestId("kube-dialog");
  await waitFor(() => expect(within(dialog).queryByText(/Reading the kubeconfig/)).toBeNull());
  return dialog;
}

const select = (id: string) => screen.getByTestId(id) as HTMLSelectElement;
const input = (id: string) => screen.getByTestId(id) as HTMLInputElement;
const button = (id: string) => screen.getByTestId(id) as HTMLButtonElement;

async function waitPhase(phase: "done" | "error") {
  await waitFor(() => expect(screen.getByTestId("kube-progress").dataset.phase).toBe(phase));
}

describe("Deploy to Kubernetes", () => {
  it("deploys to the chosen context and namespace with live progress, then shows the status and deletes it", async () => {
    const b = await setup();
    const deploy = vi.spyOn(b, "kubeDeploy");
    const del = vi.spyOn(b, "kubeDelete");
    await openFolder("/home/dev/hello-app", "hello-app");
    await openDialog();

    // the current context, its server, and its namespace (none set: default)
    expect(select("kube-context").value).toBe("kind-dev");
    expect(screen.getByTestId("kube-context-server").textContent).toContain("https://127.0.0.1:40123");
    expect(screen.getByTestId("kube-context-server").textContent).toContain("/home/dev/.kube/config");
    expect(input("kube-namespace").value).toBe("default");
    // keyboard: the context select has the focus once the contexts are read
    await waitFor(() => expect(document.activeElement).toBe(select("kube-context")));
    // another context brings its own namespace
    await fireEvent.change(select("kube-context"), { target: { value: "staging" } });
    expect(input("kube-namespace").value).toBe("shop");
    expect(screen.getByTestId("kube-context-server").textContent).toContain("https://k8s.staging.internal:6443");

    // the namespace is checked as typed
    await fireEvent.input(input("kube-namespace"), { target: { value: "Demo_1" } });
    expect(screen.getByTestId("kube-namespace-error").textContent).toBe("use lowercase letters: namespaces are lowercase");
    expect(button("kube-deploy-submit").disabled).toBe(true);
    await fireEvent.input(input("kube-namespace"), { target: { value: "demo" } });
    expect(screen.queryByTestId("kube-namespace-error")).toBeNull();
    expect(screen.getByTestId("kube-dialog").textContent).toContain("created if missing");
    await fireEvent.change(select("kube-service-type"), { target: { value: "NodePort" } });
    await fireEvent.click(button("kube-deploy-submit"));

    await waitPhase("done");
    expect(deploy).toHaveBeenCalledWith(
      {
        target: { files: ["/home/dev/hello-app/compose.yaml"], project_name: "hello-app", environment: {} },
        kubeconfig: null,
        context: "staging",
        namespace: "demo",
        push: false,
        service_type: "NodePort",
        timeout_secs: 300,
      },
      expect.any(Function),
    );
    // pinned images, applied objects (the new namespace first), one bar per deployment
    const images = screen.getAllByTestId("kube-image").map((r) => [r.dataset.service, r.textContent]);
    expect(images.map(([s]) => s)).toEqual(["db", "web"]);
    for (const [, text] of images) expect(text).toMatch(/busybox@sha256:[0-9a-f]{64}/);
    expect(screen.getAllByTestId("kube-applied").map((r) => `${r.dataset.kind}/${r.dataset.name}`)).toEqual([
      "Namespace/demo",
      "PersistentVolumeClaim/hello-app-data",
      "Service/web",
      "Deployment/db",
      "Deployment/web",
    ]);
    const rollouts = screen.getAllByTestId("kube-rollout");
    expect(rollouts.map((r) => `${r.dataset.deployment}:${r.dataset.state}`)).toEqual(["db:available", "web:available"]);
    expect(rollouts[1].textContent).toContain("Available · 1/1 ready");
    expect(screen.getByTestId("kube-warnings").textContent).toContain("services.web.depends_on");
    expect(screen.getByTestId("kube-deploy-done").textContent).toContain("namespace demo of staging");

    // the status of what was deployed
    await fireEvent.click(button("kube-show-status"));
    await waitFor(() => expect(screen.getAllByTestId("kube-status-deployment").map((r) => r.dataset.name)).toEqual(["db", "web"]));
    expect(screen.getAllByTestId("kube-status-deployment").every((r) => r.dataset.rolledOut === "true")).toBe(true);
    const svc = screen.getByTestId("kube-status-service");
    expect(svc.textContent).toContain("NodePort");
    expect(svc.textContent).toMatch(/8080:30\d+\/TCP/);
    expect(svc.textContent).not.toContain("→");
    expect(screen.getAllByTestId("kube-status-pod").map((p) => p.dataset.phase)).toEqual(["Running", "Running"]);
    expect(screen.getByTestId("kube-status-volume").dataset.name).toBe("hello-app-data");

    // Delete from cluster asks first; without volumes the claim stays
    await fireEvent.click(button("kube-delete"));
    const box = screen.getByTestId("kube-delete-box");
    expect(box.textContent).toContain("hello-app");
    await fireEvent.click(button("kube-delete-cancel"));
    expect(screen.queryByTestId("kube-delete-box")).toBeNull();
    await fireEvent.click(button("kube-delete"));
    await fireEvent.click(button("kube-delete-confirm"));
    await waitFor(() => expect(screen.getByTestId("kube-delete-kept").textContent).toContain("hello-app-data"));
    expect(del).toHaveBeenLastCalledWith({ project: "hello-app", kubeconfig: null, context: "staging", namespace: "demo", volumes: false });
    await waitFor(() => expect(screen.queryAllByTestId("kube-status-deployment")).toEqual([]));
    expect(screen.getByTestId("kube-status-volume").dataset.name).toBe("hello-app-data");
    // and with volumes, nothing is left
    await fireEvent.click(button("kube-delete"));
    await fireEvent.click(screen.getByTestId("kube-delete-volumes"));
    await fireEvent.click(button("kube-delete-confirm"));
    await screen.findByTestId("kube-status-empty");
    expect(del).toHaveBeenLastCalledWith(expect.objectContaining({ volumes: true }));

    // the choice is remembered for the next time
    await fireEvent.keyDown(screen.getByTestId("kube-dialog"), { key: "Escape" });
    await waitFor(() => expect(screen.queryByTestId("kube-dialog")).toBeNull());
    await openDialog();
    expect(select("kube-context").value).toBe("staging");
    expect(input("kube-namespace").value).toBe("demo");
    expect(select("kube-service-type").value).toBe("NodePort");
  });

  it("shows a failed rollout's pod events and last log lines in a monospace block", async () => {
    await setup();
    await openFolder("/home/dev/hello-app", "hello-app");
    await openDialog();
    await fireEvent.input(input("kube-namespace"), { target: { value: "crashloop" } });
    await fireEvent.click(button("kube-deploy-submit"));
    await waitPhase("error");
    const err = screen.getByTestId("kube-deploy-error");
    expect(err.querySelector("strong")!.textContent).toMatch(/^rollout of deployment db failed: ProgressDeadlineExceeded/);
    const report = screen.getByTestId("kube-deploy-report");
    expect(report.tagName).toBe("PRE");
    expect(report.textContent).toContain("pod db-7d9f8b6c5-x4k2p: Running, CrashLoopBackOff, last exit code 1, 4 restarts");
    expect(report.textContent).toContain("Warning  BackOff  Back-off restarting failed container");
    expect(report.textContent).toContain("error: cannot connect to db:5432: connection refused");
    expect(screen.getAllByTestId("kube-rollout").find((r) => r.dataset.deployment === "db")!.dataset.state).toBe("failed");
    // back to the settings, fixed, and deployed
    await fireEvent.click(button("kube-back"));
    await fireEvent.input(input("kube-namespace"), { target: { value: "default" } });
    await fireEvent.click(button("kube-deploy-submit"));
    await waitPhase("done");
  });

  it("needs Push images first for an image built here, and shows the push", async () => {
    await setup();
    // shop: api is built from a Dockerfile
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("shop"));
    await openDialog();
    expect(screen.getByTestId("kube-dialog").textContent).toContain("Needed for api (built here)");
    await fireEvent.click(button("kube-deploy-submit"));
    await waitPhase("error");
    expect(screen.getByTestId("kube-deploy-error").textContent).toContain("services.api: image ghcr.io/acme/shop-api:1.8.2 has no registry digest");
    expect(screen.queryByTestId("kube-deploy-report")).toBeNull();
    await fireEvent.click(button("kube-back"));
    await fireEvent.click(screen.getByTestId("kube-push"));
    await fireEvent.click(button("kube-deploy-submit"));
    await waitPhase("done");
    expect(screen.getByTestId("kube-push-lines").textContent).toContain("Pushed");
    expect(screen.getAllByTestId("kube-image").find((r) => r.dataset.service === "api")!.textContent).toMatch(/ghcr\.io\/acme\/shop-api@sha256:/);
    // a published port: the Service's port, then the container's
    await fireEvent.click(button("kube-show-status"));
    await waitFor(() => expect(screen.getAllByTestId("kube-status-service").map((r) => r.dataset.name)).toEqual(["api", "db", "web"]));
    expect(screen.getAllByTestId("kube-status-service").find((r) => r.dataset.name === "web")!.textContent).toContain("8080→80/TCP");
  });

  it("says where it looked when there is no kubeconfig, and reads a file the user names", async () => {
    const b = await setup({ kube: "none" });
    const contexts = vi.spyOn(b, "kubeContexts");
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("shop"));
    const dialog = await openDialog();
    const empty = within(dialog).getByTestId("kube-empty");
    expect(empty.textContent).toContain("No kubeconfig found");
    expect(empty.textContent).toContain("/home/dev/.kube/config");
    expect(empty.textContent).toContain("kubectl config set-context");
    expect(empty.textContent).toContain("KUBECONFIG");
    expect(screen.queryByTestId("kube-deploy-submit")).toBeNull();
    await waitFor(() => expect(document.activeElement).toBe(input("kube-kubeconfig-path")));
    await fireEvent.input(input("kube-kubeconfig-path"), { target: { value: "/srv/kube/prod.yaml" } });
    await fireEvent.click(button("kube-kubeconfig-use"));
    await waitFor(() => expect(contexts).toHaveBeenLastCalledWith("/srv/kube/prod.yaml"));
    await waitFor(() => expect(screen.getByTestId("kube-empty").textContent).toContain("/srv/kube/prod.yaml"));
  });

  it("shows a kubeconfig that cannot be read with the library's message", async () => {
    await setup({}, (b) => {
      b.kubeContexts = async () => {
        throw { code: "invalid_input", message: "kubeconfig /home/dev/.kube/config: invalid type: string, expected a sequence" };
      };
    });
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("shop"));
    await openDialog();
    expect(screen.getByTestId("kube-contexts-error").textContent).toContain("expected a sequence");
  });

  it("shows an unreachable cluster's error in the status view", async () => {
    await setup({}, (b) => {
      b.kubeStatus = async () => {
        throw { code: "kubernetes", message: 'connecting: cannot reach the Kubernetes API server at https://127.0.0.1:40123 (context "kind-dev", kubeconfig /home/dev/.kube/config): Connection refused (os error 111)' };
      };
    });
    await waitFor(() => expect(screen.getByTestId("compose-project-name").textContent).toBe("shop"));
    await openDialog();
    await fireEvent.click(button("kube-status-open"));
    await waitFor(() => expect(screen.getByTestId("kube-status-error").textContent).toContain("Connection refused"));
    // nothing to delete while the status is unknown
    expect(button("kube-delete").disabled).toBe(true);
  });
});
