// Container actions as the list and the details header run them: toasts on failure, a
// confirmation before removing (force when it is up).

import { backend } from "../../backend";
import type { ContainerAction } from "../../bindings/ContainerAction";
import type { ContainerRow } from "../../bindings/ContainerRow";
import { confirmAction, toast, toastError } from "../../ui";
import { isUp } from "../../stores/containers";

const PAST: Record<ContainerAction, string> = {
  start: "Started",
  stop: "Stopped",
  restart: "Restarted",
  pause: "Paused",
  unpause: "Unpaused",
  kill: "Killed",
};

export async function runAction(c: Pick<ContainerRow, "id" | "name">, action: ContainerAction): Promise<boolean> {
  try {
    await (await backend()).containerAction(c.id, action);
    if (action === "restart") toast(`${PAST[action]} ${c.name}`, "success");
    return true;
  } catch (e) {
    toastError(e, `Could not ${action} ${c.name}`);
    return false;
  }
}

/** Asks, then removes (forced when running or paused). Resolves whether it was removed. */
export async function removeContainer(c: Pick<ContainerRow, "id" | "name" | "state">): Promise<boolean> {
  const up = isUp(c.state);
  const ok = await confirmAction(
    `Remove ${c.name}?`,
    up
      ? `${c.name} is ${c.state}. It will be stopped and removed; its anonymous volumes are kept.`
      : `The container ${c.name} will be deleted. Its anonymous volumes are kept.`,
    up ? "Stop and remove" : "Remove",
  );
  if (!ok) return false;
  try {
    await (await backend()).containerRemove(c.id, up, false);
    toast(`Removed ${c.name}`, "success");
    return true;
  } catch (e) {
    toastError(e, `Could not remove ${c.name}`);
    return false;
  }
}

/** Stops or removes many; one confirmation for a removal, one toast at the end. */
export async function bulk(rows: ContainerRow[], what: "stop" | "remove"): Promise<void> {
  if (rows.length === 0) return;
  if (what === "remove") {
    const up = rows.filter((r) => isUp(r.state)).length;
    const ok = await confirmAction(
      `Remove ${rows.length} container${rows.length === 1 ? "" : "s"}?`,
      (up ? `${up} of them ${up === 1 ? "is" : "are"} running and will be stopped first.\n` : "") +
        rows
          .slice(0, 8)
          .map((r) => r.name)
          .join(", ") +
        (rows.length > 8 ? `, and ${rows.length - 8} more` : ""),
      "Remove",
    );
    if (!ok) return;
  }
  const b = await backend();
  const targets = what === "stop" ? rows.filter((r) => isUp(r.state)) : rows;
  const results = await Promise.allSettled(
    targets.map((r) => (what === "stop" ? b.containerAction(r.id, "stop") : b.containerRemove(r.id, isUp(r.state), false))),
  );
  const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
  const done = targets.length - failed.length;
  if (done > 0) toast(`${what === "stop" ? "Stopped" : "Removed"} ${done} container${done === 1 ? "" : "s"}`, "success");
  if (failed.length) toastError(failed[0].reason, `${failed.length} could not be ${what === "stop" ? "stopped" : "removed"}`);
}
