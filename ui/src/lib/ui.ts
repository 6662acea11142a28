// App-wide UI services every page uses: toasts and confirmations. The shell (App.svelte)
// renders them; pages only call these functions.

import { writable } from "svelte/store";
import { errorMessage } from "./backend";

export type ToastKind = "info" | "success" | "error";

export interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
}

export const toasts = writable<Toast[]>([]);
let nextToast = 1;

export function toast(message: string, kind: ToastKind = "info", ms = kind === "error" ? 8000 : 4000): void {
  const id = nextToast++;
  toasts.update((t) => [...t, { id, kind, message }]);
  setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  toasts.update((t) => t.filter((x) => x.id !== id));
}

/** Shows the engine's message of a failed call as an error toast. */
export function toastError(e: unknown, context?: string): void {
  const m = errorMessage(e);
  toast(context ? `${context}: ${m}` : m, "error");
}

export interface ConfirmRequest {
  title: string;
  message: string;
  /** The confirm button's label, e.g. "Remove". */
  action: string;
  danger: boolean;
  resolve: (ok: boolean) => void;
}

export const confirmation = writable<ConfirmRequest | null>(null);

/** Asks before a destructive action; resolves true when confirmed. */
export function confirmAction(title: string, message: string, action = "Remove", danger = true): Promise<boolean> {
  return new Promise((resolve) => {
    confirmation.set({
      title,
      message,
      action,
      danger,
      resolve: (ok) => {
        confirmation.set(null);
        resolve(ok);
      },
    });
  });
}
