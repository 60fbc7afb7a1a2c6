/**
 * One project: presence, the live board (a column per status, filtered like
 * the list API: `?status_id=` and `?assignee_id=`), the new-ticket form, and
 * the open ticket's detail beside the board.
 */
import { type SyntheticEvent, useEffect, useState } from "react";
import type { Member, Priority, Project, TicketSummary, User } from "@ticketflow/client";
import { usePresence, useTicketStream, useTicketflowClient } from "@ticketflow/client/react";
import { Link, navigate, useLocation } from "../router";
import { errorText } from "../parts/errors";
import { pushToast } from "../parts/toasts";
import { useTicketStreamStats } from "../parts/stream_stats";
import { PresenceBar } from "../parts/presence";
import { TicketDetail } from "./ticket";

export const PRIORITIES: Priority[] = ["low", "medium", "high", "urgent"];

export function ProjectScreen({ projectId, ticketId, me }: { projectId: string; ticketId: string | undefined; me: User }) {
  const client = useTicketflowClient();
  const { query } = useLocation();
  const [project, setProject] = useState<Project | null>(null);
  const [members, setMembers] = useState<Member[]>([]);
  const [error, setError] = useState<string | null>(null);
  const stream = useTicketStream(projectId);
  const presence = usePresence(projectId);
  useTicketStreamStats(client, projectId);

  useEffect(() => {
    client.api.projects.get(projectId).then(setProject, (err: unknown) => {
      setError(errorText(err));
    });
    client.api.members.list(projectId, { limit: 200 }).then(
      (p) => {
        setMembers(p.items);
      },
      () => undefined,
    );
  }, [client, projectId]);

  const statusFilter = query.get("status_id");
  const assigneeFilter = query.get("assignee_id");
  const setFilter = (name: string, value: string) => {
    const q = new URLSearchParams(query);
    if (value) q.set(name, value);
    else q.delete(name);
    const s = q.toString();
    navigate(`${location.pathname}${s ? `?${s}` : ""}`, { replace: true });
  };
  const keepQuery = query.toString() ? `?${query.toString()}` : "";

  if (error) {
    return (
      <p className="error" role="alert">
        {error} <Link to="/">Back to projects</Link>
      </p>
    );
  }
  if (!project) return <p className="muted">Loading project…</p>;

  const visible = stream.tickets.filter(
    (t) =>
      (!statusFilter || String(t.status.id) === statusFilter) &&
      (!assigneeFilter || (assigneeFilter === "none" ? t.assignee === null : t.assignee?.id === assigneeFilter)),
  );
  const columns = statusFilter ? project.statuses.filter((s) => String(s.id) === statusFilter) : project.statuses;

  return (
    <section className={`project ${ticketId ? "with-detail" : ""}`}>
      <div className="project-head">
        <h1>
          <span className="key">{project.key}</span> {project.name}
        </h1>
        <PresenceBar users={presence.users} tickets={stream.tickets} me={me} />
      </div>
      <div className="toolbar">
        <NewTicket projectId={projectId} members={members} />
        <label>
          Status
          <select value={statusFilter ?? ""} onChange={(e) => setFilter("status_id", e.target.value)} data-testid="filter-status">
            <option value="">All</option>
            {project.statuses.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Assignee
          <select value={assigneeFilter ?? ""} onChange={(e) => setFilter("assignee_id", e.target.value)} data-testid="filter-assignee">
            <option value="">Anyone</option>
            <option value={me.id}>Me</option>
            <option value="none">Unassigned</option>
            {members
              .filter((m) => m.user_id !== me.id)
              .map((m) => (
                <option key={m.user_id} value={m.user_id}>
                  {m.username}
                </option>
              ))}
          </select>
        </label>
        <span className="muted count" data-testid="ticket-count">
          {visible.length} of {stream.tickets.length} tickets
        </span>
      </div>
      <div className="workspace">
        <div className="board" data-testid="board" aria-busy={stream.loading}>
          {columns.map((status) => {
            const cards = visible.filter((t) => t.status.id === status.id);
            return (
              <section key={status.id} className="column" aria-label={status.name} data-testid={`column-${status.id}`}>
                <h2 style={{ borderColor: status.color }}>
                  {status.name} <span className="muted">{cards.length}</span>
                </h2>
                <ul>
                  {cards.map((t) => (
                    <Card
                      key={t.id}
                      ticket={t}
                      project={project}
                      selected={t.id === ticketId}
                      href={`/p/${projectId}/t/${t.id}${keepQuery}`}
                      viewers={presence.users.filter((u) => u.userId !== me.id && u.viewingTicketId === t.id).map((u) => u.username)}
                    />
                  ))}
                </ul>
              </section>
            );
          })}
        </div>
        {ticketId && (
          <TicketDetail
            key={ticketId}
            ticketId={ticketId}
            project={project}
            members={members}
            presence={presence}
            me={me}
            onClose={() => {
              navigate(`/p/${projectId}${keepQuery}`);
            }}
          />
        )}
      </div>
    </section>
  );
}

function Card({ ticket, project, selected, href, viewers }: { ticket: TicketSummary; project: Project; selected: boolean; href: string; viewers: string[] }) {
  const client = useTicketflowClient();
  const index = project.statuses.findIndex((s) => s.id === ticket.status.id);
  const move = async (delta: number) => {
    const target = project.statuses[index + delta];
    if (!target) return;
    try {
      await client.api.tickets.update(ticket.id, { status_id: target.id }, { ifMatch: ticket.version });
    } catch (err) {
      pushToast(`Could not move ${ticket.key}`, errorText(err), "error");
    }
  };
  return (
    <li className={`ticket-card prio-${ticket.priority} ${selected ? "selected" : ""}`} data-testid="ticket-card" data-ticket-id={ticket.id} data-key={ticket.key}>
      <Link to={href} className="card-link">
        <span className="key">{ticket.key}</span>
        <span className="title">{ticket.title}</span>
      </Link>
      <div className="card-meta">
        <span className={`prio prio-${ticket.priority}`}>{ticket.priority}</span>
        <span className="assignee" data-testid="card-assignee">
          {ticket.assignee ? `@${ticket.assignee.username}` : "unassigned"}
        </span>
        {viewers.length > 0 && (
          <span className="viewers" title={`Viewing: ${viewers.join(", ")}`}>
            viewing: {viewers.join(", ")}
          </span>
        )}
        <span className="spacer" />
        <button type="button" className="icon" disabled={index <= 0} aria-label={`Move ${ticket.key} left`} onClick={() => void move(-1)}>
          ◀
        </button>
        <button
          type="button"
          className="icon"
          disabled={index >= project.statuses.length - 1}
          aria-label={`Move ${ticket.key} right`}
          onClick={() => void move(1)}
        >
          ▶
        </button>
      </div>
    </li>
  );
}

function NewTicket({ projectId, members }: { projectId: string; members: Member[] }) {
  const client = useTicketflowClient();
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState("");
  const [priority, setPriority] = useState<Priority>("medium");
  const [assignee, setAssignee] = useState("");
  const [labels, setLabels] = useState("");
  const [error, setError] = useState<string | null>(null);

  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)} data-testid="new-ticket">
        + New ticket
      </button>
    );
  }
  const submit = async (e: SyntheticEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await client.api.tickets.create(projectId, {
        title: title.trim(),
        priority,
        ...(assignee ? { assignee_id: assignee } : {}),
        labels: splitLabels(labels),
      });
      setTitle("");
      setLabels("");
      setOpen(false);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="card new-ticket" onSubmit={(e) => void submit(e)} aria-label="New ticket">
      <label className="grow">
        Title
        <input name="title" required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} autoFocus />
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
        <select name="assignee" value={assignee} onChange={(e) => setAssignee(e.target.value)}>
          <option value="">Unassigned</option>
          {members.map((m) => (
            <option key={m.user_id} value={m.user_id}>
              {m.username}
            </option>
          ))}
        </select>
      </label>
      <label>
        Labels
        <input name="labels" value={labels} onChange={(e) => setLabels(e.target.value)} placeholder="bug, ui" size={12} />
      </label>
      <button type="submit">Create</button>
      <button type="button" className="ghost" onClick={() => setOpen(false)}>
        Cancel
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export function splitLabels(s: string): string[] {
  return s
    .split(",")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}
