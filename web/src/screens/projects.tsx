/** Projects: the caller's projects, creating one, and each one's members. */
import { type SyntheticEvent, useCallback, useEffect, useState } from "react";
import type { Member, Project, User } from "@ticketflow/client";
import { useTicketflowClient } from "@ticketflow/client/react";
import { Link } from "../router";
import { errorText } from "../parts/errors";

export function ProjectsScreen({ me }: { me: User }) {
  const client = useTicketflowClient();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [key, setKey] = useState("");
  const [name, setName] = useState("");
  const [managing, setManaging] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const all: Project[] = [];
      for await (const p of client.api.paginate((after) => client.api.projects.list(after ? { limit: 200, after } : { limit: 200 }))) all.push(p);
      setProjects(all);
    } catch (err) {
      setError(errorText(err));
    }
  }, [client]);

  useEffect(() => {
    void load();
  }, [load]);

  const create = async (e: SyntheticEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const { data } = await client.api.projects.create({ key: key.trim().toUpperCase(), name: name.trim() });
      setProjects((ps) => [...(ps ?? []), data]);
      setKey("");
      setName("");
      setManaging(data.id);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section className="projects">
      <h1>Projects</h1>
      <form className="card inline-form" onSubmit={(e) => void create(e)} aria-label="New project">
        <label>
          Key
          <input name="key" required pattern="[A-Za-z][A-Za-z0-9]{1,9}" placeholder="PROJ" value={key} onChange={(e) => setKey(e.target.value)} size={8} />
        </label>
        <label className="grow">
          Name
          <input name="name" required maxLength={100} placeholder="Project name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit">Create project</button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {projects === null ? (
        <p className="muted">Loading…</p>
      ) : projects.length === 0 ? (
        <p className="muted">No projects yet. Create one, or ask an admin to add you ({me.username}).</p>
      ) : (
        <ul className="project-list">
          {projects.map((p) => (
            <li key={p.id} className="card" data-testid="project">
              <div className="row between">
                <Link to={`/p/${p.id}`} className="project-link">
                  <span className="key">{p.key}</span> {p.name}
                </Link>
                <button
                  type="button"
                  className="ghost"
                  aria-expanded={managing === p.id}
                  onClick={() => {
                    setManaging(managing === p.id ? null : p.id);
                  }}
                >
                  Members
                </button>
              </div>
              {managing === p.id && <Members projectId={p.id} me={me} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Members({ projectId, me }: { projectId: string; me: User }) {
  const client = useTicketflowClient();
  const [members, setMembers] = useState<Member[] | null>(null);
  const [username, setUsername] = useState("");
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    client.api.members.list(projectId, { limit: 200 }).then(
      (page) => {
        setMembers(page.items);
      },
      (err: unknown) => {
        setError(errorText(err));
      },
    );
  }, [client, projectId]);

  const add = async (e: SyntheticEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const { data } = await client.api.members.add(projectId, username.trim());
      setMembers((ms) => [...(ms ?? []), data]);
      setUsername("");
    } catch (err) {
      setError(errorText(err));
    }
  };

  const remove = async (m: Member) => {
    setError(null);
    try {
      await client.api.members.remove(projectId, m.user_id);
      setMembers((ms) => (ms ?? []).filter((x) => x.user_id !== m.user_id));
    } catch (err) {
      setError(errorText(err));
    }
  };

  const iAmAdmin = members?.some((m) => m.user_id === me.id && m.role === "admin") ?? false;
  return (
    <div className="members">
      <ul>
        {(members ?? []).map((m) => (
          <li key={m.user_id} className="row between" data-testid="member">
            <span>
              <Avatar name={m.username} /> {m.display_name} <span className="muted">@{m.username}</span> {m.role === "admin" && <span className="pill">admin</span>}
            </span>
            {iAmAdmin && m.user_id !== me.id && (
              <button type="button" className="link danger" onClick={() => void remove(m)} aria-label={`Remove ${m.username}`}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {iAmAdmin && (
        <form className="inline-form" onSubmit={(e) => void add(e)} aria-label="Add member">
          <label className="grow">
            Add member by username
            <input name="member" required value={username} onChange={(e) => setUsername(e.target.value)} placeholder="username" />
          </label>
          <button type="submit">Add</button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function Avatar({ name, className = "" }: { name: string; className?: string }) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return (
    <span className={`avatar ${className}`} style={{ background: `hsl(${h} 55% 45%)` }} aria-hidden="true">
      {name.slice(0, 2).toUpperCase()}
    </span>
  );
}
