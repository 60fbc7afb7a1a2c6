/**
 * A ticket beside the board: its fields (saved with If-Match, so a stale edit
 * is refused rather than lost), comments with @mention suggestions from the
 * project's members, the history timeline, and "show as of this version"
 * (`?as_of=<version>`). It refetches when the tickets channel says it changed.
 */
import { type SyntheticEvent, type KeyboardEvent, useCallback, useEffect, useRef, useState } from "react";
import type { Comment, HistoryItem, Member, Priority, Project, Ticket, TicketPatch, User } from "@ticketflow/client";
import { isTicketflowError } from "@ticketflow/client";
import { type PresenceState, useTicketflowClient } from "@ticketflow/client/react";
import { navigate, useLocation } from "../router";
import { errorText } from "../parts/errors";
import { pushToast } from "../parts/toasts";
import { PRIORITIES, splitLabels } from "./project";

interface Props {
  ticketId: string;
  project: Project;
  members: Member[];
  presence: PresenceState;
  me: User;
  onClose: () => void;
}

export function TicketDetail({ ticketId, project, members, presence, me, onClose }: Props) {
  const client = useTicketflowClient();
  const { query } = useLocation();
  const asOfRaw = query.get("as_of");
  const asOf = asOfRaw && /^\d+$/.test(asOfRaw) ? Number(asOfRaw) : undefined;
  const [ticket, setTicket] = useState<Ticket | null>(null);
  const [comments, setComments] = useState<Comment[]>([]);
  const [history, setHistory] = useState<HistoryItem[]>([]);
  const [deleted, setDeleted] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { setViewing } = presence;

  const load = useCallback(async () => {
    try {
      const [t, c, h] = await Promise.all([
        client.api.tickets.get(ticketId, asOf === undefined ? {} : { asOf }),
        client.api.comments.list(ticketId, { limit: 200 }),
        client.api.tickets.history(ticketId, { limit: 200 }),
      ]);
      setTicket(t);
      setComments(c.items);
      setHistory(h.items);
      setError(null);
    } catch (err) {
      if (isTicketflowError(err) && err.status === 404) {
        setDeleted(true);
        try {
          setHistory((await client.api.tickets.history(ticketId, { limit: 200 })).items);
        } catch {
          // No history either: an unknown id.
        }
      } else {
        setError(errorText(err));
      }
    }
  }, [client, ticketId, asOf]);

  useEffect(() => {
    void load();
  }, [load]);

  // Live: refetch when this ticket changes (the board's socket, shared).
  useEffect(() => {
    const handle = client.tickets(project.id);
    handle.on("message", (m) => {
      if (m.data.ticket_id !== ticketId) return;
      if (m.type === "ticket_update" && m.action === "deleted") setDeleted(true);
      else void load();
    });
    return () => {
      handle.release();
    };
  }, [client, project.id, ticketId, load]);

  useEffect(() => {
    setViewing(ticketId);
    return () => {
      setViewing(null);
    };
  }, [ticketId, setViewing]);

  const others = presence.users.filter((u) => u.userId !== me.id);
  const viewers = others.filter((u) => u.viewingTicketId === ticketId).map((u) => u.username);
  const typers = others.filter((u) => u.typingTicketId === ticketId).map((u) => u.username);
  const typing = () => {
    presence.setTyping(ticketId);
  };

  return (
    <aside className="detail card" aria-label="Ticket" data-testid="ticket-detail">
      <div className="row between">
        <h2>{ticket ? <span className="key">{ticket.key}</span> : "Ticket"}</h2>
        <button type="button" className="ghost" onClick={onClose} aria-label="Close ticket">
          ✕
        </button>
      </div>
      <p className="muted live-line" data-testid="detail-presence">
        {viewers.length > 0 && <span>{viewers.join(", ")} viewing</span>}
        {typers.length > 0 && <span data-testid="typing"> ✎ {typers.join(", ")} typing…</span>}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {deleted && <p className="notice">This ticket was deleted. Its history remains.</p>}
      {asOf !== undefined && ticket && (
        <p className="notice" data-testid="as-of-banner">
          Showing version {ticket.version} (as of).{" "}
          <button
            type="button"
            className="link"
            onClick={() => {
              const q = new URLSearchParams(query);
              q.delete("as_of");
              navigate(`${location.pathname}${q.toString() ? `?${q.toString()}` : ""}`);
            }}
          >
            Back to current
          </button>
        </p>
      )}
      {ticket && !deleted && <Fields key={`${ticket.id}:${ticket.version}`} ticket={ticket} project={project} members={members} readOnly={asOf !== undefined} onTyping={typing} />}
      {!deleted && asOf === undefined && ticket && <Comments ticketId={ticketId} comments={comments} members={members} onTyping={typing} onAdded={load} />}
      <History items={history} current={asOf} />
    </aside>
  );
}

function Fields({ ticket, project, members, readOnly, onTyping }: { ticket: Ticket; project: Project; members: Member[]; readOnly: boolean; onTyping: () => void }) {
  const client = useTicketflowClient();
  const [title, setTitle] = useState(ticket.title);
  const [description, setDescription] = useState(ticket.description);
  const [priority, setPriority] = useState<Priority>(ticket.priority);
  const [statusId, setStatusId] = useState(ticket.status.id);
  const [assignee, setAssignee] = useState(ticket.assignee?.id ?? "");
  const [labels, setLabels] = useState(ticket.labels.join(", "));
  const [busy, setBusy] = useState(false);

  const patch: TicketPatch = {};
  if (title.trim() !== ticket.title) patch.title = title.trim();
  if (description !== ticket.description) patch.description = description;
  if (priority !== ticket.priority) patch.priority = priority;
  if (statusId !== ticket.status.id) patch.status_id = statusId;
  if (assignee !== (ticket.assignee?.id ?? "")) patch.assignee_id = assignee || null;
  const newLabels = splitLabels(labels);
  if (newLabels.join("\u0000") !== ticket.labels.join("\u0000")) patch.labels = newLabels;
  const dirty = Object.keys(patch).length > 0;

  const save = async (e: SyntheticEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await client.api.tickets.update(ticket.id, patch, { ifMatch: ticket.version });
      // The channel's message for this change refetches the ticket.
    } catch (err) {
      if (isTicketflowError(err) && err.code === "version_conflict") {
        pushToast("Changed meanwhile", `${ticket.key} was changed by someone else; your edit was not saved. Review and retry.`, "error");
      } else {
        pushToast(`Could not save ${ticket.key}`, errorText(err), "error");
      }
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!confirm(`Delete ${ticket.key}?`)) return;
    try {
      await client.api.tickets.delete(ticket.id, { ifMatch: ticket.version });
    } catch (err) {
      pushToast(`Could not delete ${ticket.key}`, errorText(err), "error");
    }
  };

  return (
    <form className="fields" onSubmit={(e) => void save(e)} aria-label="Ticket fields">
      <fieldset disabled={readOnly || busy}>
        <label>
          Title
          <input name="title" required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} data-testid="detail-title" />
        </label>
        <div className="grid3">
          <label>
            Status
            <select name="status" value={statusId} onChange={(e) => setStatusId(Number(e.target.value))}>
              {project.statuses.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Priority
            <select name="priority" value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
              {PRIORITIES.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </label>
          <label>
            Assignee
            <select name="assignee" value={assignee} onChange={(e) => setAssignee(e.target.value)} data-testid="detail-assignee">
              <option value="">Unassigned</option>
              {members.map((m) => (
                <option key={m.user_id} value={m.user_id}>
                  {m.username}
                </option>
              ))}
            </select>
          </label>
        </div>
        <label>
          Labels
          <input name="labels" value={labels} onChange={(e) => setLabels(e.target.value)} placeholder="comma, separated" />
        </label>
        <label>
          Description
          <textarea
            name="description"
            rows={4}
            value={description}
            onChange={(e) => {
              setDescription(e.target.value);
              onTyping();
            }}
          />
        </label>
        <p className="muted small">
          Reported by @{ticket.reporter.username} · v{ticket.version} · updated {new Date(ticket.updated_at).toLocaleString()}
        </p>
        {!readOnly && (
          <div className="row">
            <button type="submit" disabled={!dirty}>
              Save
            </button>
            <span className="spacer" />
            <button type="button" className="ghost danger" onClick={() => void remove()}>
              Delete
            </button>
          </div>
        )}
      </fieldset>
    </form>
  );
}

/** The `@word` right before the caret, if any (what a suggestion would complete). */
function mentionAt(text: string, caret: number): { start: number; prefix: string } | null {
  const m = /(^|[^\w])@([a-z0-9_.-]*)$/.exec(text.slice(0, caret));
  if (!m) return null;
  const prefix = m[2] ?? "";
  return { start: caret - prefix.length - 1, prefix };
}

function Comments({ ticketId, comments, members, onTyping, onAdded }: { ticketId: string; comments: Comment[]; members: Member[]; onTyping: () => void; onAdded: () => Promise<void> }) {
  const client = useTicketflowClient();
  const [body, setBody] = useState("");
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState(false);
  const box = useRef<HTMLTextAreaElement>(null);

  const mention = mentionAt(body, caret);
  const suggestions = mention && !dismissed ? members.filter((m) => m.username.startsWith(mention.prefix.toLowerCase())).slice(0, 6) : [];

  const pick = (m: Member) => {
    if (!mention) return;
    const next = `${body.slice(0, mention.start)}@${m.username} ${body.slice(caret)}`;
    const pos = mention.start + m.username.length + 2;
    setBody(next);
    setCaret(pos);
    requestAnimationFrame(() => {
      box.current?.focus();
      box.current?.setSelectionRange(pos, pos);
    });
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (suggestions.length === 0) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      setActive((a) => (a + (e.key === "ArrowDown" ? 1 : suggestions.length - 1)) % suggestions.length);
    } else if (e.key === "Enter" || e.key === "Tab") {
      const m = suggestions[active] ?? suggestions[0];
      if (m) {
        e.preventDefault();
        pick(m);
      }
    } else if (e.key === "Escape") {
      setDismissed(true);
    }
  };

  const submit = async (e: SyntheticEvent) => {
    e.preventDefault();
    try {
      await client.api.comments.add(ticketId, body);
      setBody("");
      await onAdded();
    } catch (err) {
      pushToast("Could not comment", errorText(err), "error");
    }
  };

  return (
    <section className="comments" aria-label="Comments">
      <h3>Comments ({comments.length})</h3>
      <ul>
        {comments.map((c) => (
          <li key={c.id} data-testid="comment">
            <strong>@{c.author.username}</strong> <time className="muted small">{new Date(c.created_at).toLocaleString()}</time>
            <p>{c.body}</p>
          </li>
        ))}
      </ul>
      <form onSubmit={(e) => void submit(e)} className="comment-form">
        <label htmlFor="comment-body">Add a comment (type @ to mention)</label>
        <div className="mention-wrap">
          <textarea
            id="comment-body"
            ref={box}
            rows={3}
            required
            maxLength={10000}
            value={body}
            aria-autocomplete="list"
            aria-controls="mention-list"
            aria-expanded={suggestions.length > 0}
            data-testid="comment-body"
            onChange={(e) => {
              setBody(e.target.value);
              setCaret(e.target.selectionStart);
              setActive(0);
              setDismissed(false);
              onTyping();
            }}
            onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
            onKeyDown={onKey}
          />
          {suggestions.length > 0 && (
            <ul id="mention-list" role="listbox" className="popover mentions" data-testid="mention-suggestions">
              {suggestions.map((m, i) => (
                <li
                  key={m.user_id}
                  role="option"
                  aria-selected={i === active}
                  className={i === active ? "active" : ""}
                  onMouseDown={(e) => {
                    e.preventDefault();
                    pick(m);
                  }}
                >
                  @{m.username} <span className="muted">{m.display_name}</span>
                </li>
              ))}
            </ul>
          )}
        </div>
        <button type="submit" disabled={body.trim().length === 0}>
          Comment
        </button>
      </form>
    </section>
  );
}

function describe(item: HistoryItem): string {
  const d = item.data;
  const s = (k: string): string => {
    const v = d[k];
    if (typeof v === "string" || typeof v === "number") return String(v);
    if (v && typeof v === "object" && "name" in v && typeof v.name === "string") return v.name;
    if (v && typeof v === "object" && "username" in v && typeof v.username === "string") return `@${v.username}`;
    return "";
  };
  switch (item.type) {
    case "TicketCreated":
      return `created “${s("title")}”`;
    case "TicketTitleChanged":
      return `renamed to “${s("title")}”`;
    case "TicketDescriptionChanged":
      return "changed the description";
    case "TicketPriorityChanged":
      return `set priority ${s("priority")}`;
    case "TicketLabelsChanged":
      return "changed labels";
    case "TicketStatusChanged":
      return `moved to ${s("status") || s("to") || s("status_id")}`;
    case "TicketAssigned":
      return `assigned ${s("assignee") || s("assignee_username") || ""}`.trim();
    case "TicketUnassigned":
      return "unassigned";
    case "CommentAdded":
      return "commented";
    case "TicketDeleted":
      return "deleted the ticket";
    default:
      return item.type;
  }
}

function History({ items, current }: { items: HistoryItem[]; current: number | undefined }) {
  const { query } = useLocation();
  const asOfHref = (version: number) => {
    const q = new URLSearchParams(query);
    q.set("as_of", String(version));
    return `${location.pathname}?${q.toString()}`;
  };
  return (
    <section className="history" aria-label="History">
      <h3>History</h3>
      <ol className="timeline" data-testid="history">
        {items.map((h) => (
          <li key={h.event_id} className={current === h.version ? "current" : ""}>
            <span className="ver">v{h.version}</span> <strong>@{h.actor.username}</strong> {describe(h)}{" "}
            <time className="muted small" dateTime={h.occurred_at}>
              {new Date(h.occurred_at).toLocaleString()}
            </time>{" "}
            {h.type !== "TicketDeleted" && (
              <button
                type="button"
                className="link small"
                onClick={() => {
                  navigate(asOfHref(h.version));
                }}
              >
                show as of v{h.version}
              </button>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
