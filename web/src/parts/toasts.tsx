/**
 * Toasts: a tiny store any part of the app can push to, and the stack that
 * shows them. Each fades after a few seconds or on dismiss.
 */
import { useSyncExternalStore } from "react";

export interface Toast {
  id: number;
  title: string;
  message: string;
  kind: "info" | "error";
}

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<() => void>();

function publish(next: Toast[]): void {
  toasts = next;
  for (const l of [...listeners]) l();
}

export function pushToast(title: string, message: string, kind: Toast["kind"] = "info"): void {
  const toast = { id: nextId++, title, message, kind };
  publish([...toasts, toast].slice(-5));
  setTimeout(() => {
    dismissToast(toast.id);
  }, 6000);
}

export function dismissToast(id: number): void {
  publish(toasts.filter((t) => t.id !== id));
}

export function Toasts() {
  const list = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => toasts,
  );
  return (
    <div className="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} data-testid="toast">
          <div>
            <strong>{t.title}</strong>
            <div>{t.message}</div>
          </div>
          <button
            type="button"
            className="ghost"
            aria-label="Dismiss"
            onClick={() => {
              dismissToast(t.id);
            }}
          >
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
