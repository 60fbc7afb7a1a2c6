/** Who is in the project right now, which ticket each views, and who types. */
import type { PresenceMember, TicketSummary, User } from "@ticketflow/client";
import { Avatar } from "../screens/projects";

export function PresenceBar({ users, tickets, me }: { users: PresenceMember[]; tickets: TicketSummary[]; me: User }) {
  const keyOf = (id: string | null) => (id ? (tickets.find((t) => t.id === id)?.key ?? "a ticket") : null);
  return (
    <ul className="presence" aria-label="People here" data-testid="presence">
      {users.map((u) => {
        const viewing = keyOf(u.viewingTicketId);
        const typing = keyOf(u.typingTicketId);
        const what = typing ? `typing on ${typing}` : viewing ? `viewing ${viewing}` : "on the board";
        return (
          <li key={u.userId} data-testid="presence-user" data-username={u.username} data-viewing={viewing ?? ""} data-typing={typing ?? ""} title={`${u.username}: ${what}`}>
            <Avatar name={u.username} className={typing ? "typing" : ""} />
            <span className="presence-text">
              {u.userId === me.id ? "you" : u.username}
              <span className="muted"> · {what}</span>
            </span>
          </li>
        );
      })}
    </ul>
  );
}
