/**
 * The notification bell: unread count, the list with mark-read and
 * mark-all-read, and a toast for each notification that arrives live (any
 * type, `general` announcements included).
 */
import { useEffect, useRef, useState } from "react";
import type { Notification } from "@ticketflow/client";
import { useNotifications } from "@ticketflow/client/react";
import { navigate } from "../router";
import { pushToast } from "./toasts";
import { errorText } from "./errors";

function toast(n: Notification): void {
  pushToast(n.title, n.message);
}

export function NotificationBell() {
  const { items, unreadCount, markRead, markAllRead, loading } = useNotifications({ onNotification: toast });
  const [open, setOpen] = useState(false);
  const panel = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setOpen(false);
    };
    const onClick = (e: MouseEvent) => {
      if (panel.current && e.target instanceof Node && !panel.current.contains(e.target)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("mousedown", onClick);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("mousedown", onClick);
    };
  }, [open]);

  const act = (p: Promise<void>) => {
    p.catch((err: unknown) => {
      pushToast("Could not mark read", errorText(err), "error");
    });
  };

  return (
    <div className="bell-wrap" ref={panel}>
      <button
        type="button"
        className="ghost bell"
        aria-haspopup="true"
        aria-expanded={open}
        aria-label={`Notifications, ${unreadCount} unread`}
        data-testid="bell"
        onClick={() => {
          setOpen(!open);
        }}
      >
        <svg aria-hidden="true" width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
          <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
        {unreadCount > 0 && (
          <span className="badge" data-testid="unread-count">
            {unreadCount}
          </span>
        )}
      </button>
      {open && (
        <div className="popover notif-panel" role="dialog" aria-label="Notifications">
          <div className="row between">
            <strong>Notifications</strong>
            <button
              type="button"
              className="link"
              disabled={unreadCount === 0}
              onClick={() => {
                act(markAllRead());
              }}
            >
              Mark all read
            </button>
          </div>
          {loading && items.length === 0 && <p className="muted">Loading…</p>}
          {!loading && items.length === 0 && <p className="muted">No notifications.</p>}
          <ul className="notif-list">
            {items.map((n) => (
              <li key={n.id} className={n.read ? "read" : "unread"} data-testid="notification">
                <button
                  type="button"
                  className="notif-main"
                  onClick={() => {
                    if (!n.read) act(markRead(n.id));
                    if (n.project_id && n.ticket_id) {
                      setOpen(false);
                      navigate(`/p/${n.project_id}/t/${n.ticket_id}`);
                    }
                  }}
                >
                  <span className="notif-title">{n.title}</span>
                  <span className="notif-msg">{n.message}</span>
                  <time className="muted" dateTime={n.timestamp}>
                    {new Date(n.timestamp).toLocaleString()}
                  </time>
                </button>
                {!n.read && (
                  <button
                    type="button"
                    className="link"
                    aria-label={`Mark "${n.title}" read`}
                    onClick={() => {
                      act(markRead(n.id));
                    }}
                  >
                    Mark read
                  </button>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
