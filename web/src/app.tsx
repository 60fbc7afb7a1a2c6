/**
 * The app shell: who is logged in, the header (connection, bell, user) and
 * the screen for the current path.
 */
import { useEffect, useState } from "react";
import type { User } from "@ticketflow/client";
import { useTicketflowClient } from "@ticketflow/client/react";
import { Link, navigate, useLocation } from "./router";
import { LoginScreen } from "./screens/login";
import { ProjectsScreen } from "./screens/projects";
import { ProjectScreen } from "./screens/project";
import { ConnectionIndicator } from "./parts/connection";
import { NotificationBell } from "./parts/bell";
import { Toasts } from "./parts/toasts";
import { useDropSocketsWhenOffline } from "./parts/offline";

export function App() {
  const client = useTicketflowClient();
  const [user, setUser] = useState<User | null | undefined>(client.session.tokens ? undefined : null);
  const { path } = useLocation();
  useDropSocketsWhenOffline(client);

  useEffect(() => {
    const off = client.on("sessionEnded", () => {
      setUser(null);
    });
    if (client.session.tokens) {
      client.api.auth.me().then(setUser, () => {
        setUser(null);
      });
    }
    return off;
  }, [client]);

  if (user === undefined) return <p className="boot">Loading…</p>;
  if (user === null) {
    return (
      <>
        <LoginScreen
          onLoggedIn={(u) => {
            setUser(u);
            if (path === "/login" || path === "/register") navigate("/", { replace: true });
          }}
        />
        <Toasts />
      </>
    );
  }

  const logout = () => {
    // Signed out here at once; the server ends the session in the background (if it cannot be
    // reached, the tokens are forgotten all the same and expire on their own).
    client.api.auth.logout().catch(() => undefined);
    setUser(null);
    navigate("/login");
  };

  const project = /^\/p\/([^/]+)(?:\/t\/([^/]+))?\/?$/.exec(path);
  return (
    <div className="shell">
      <header className="topbar">
        <Link to="/" className="brand">
          ticketflow
        </Link>
        <nav aria-label="Main">
          <Link to="/">Projects</Link>
        </nav>
        <span className="spacer" />
        <ConnectionIndicator />
        <NotificationBell />
        <span className="me" title={user.display_name} data-testid="me">
          {user.username}
        </span>
        <button type="button" className="ghost" onClick={logout}>
          Log out
        </button>
      </header>
      <main className="content">
        {project?.[1] ? (
          <ProjectScreen key={project[1]} projectId={project[1]} ticketId={project[2]} me={user} />
        ) : path === "/" || path === "/login" || path === "/register" ? (
          <ProjectsScreen me={user} />
        ) : (
          <p role="alert">
            Nothing at {path}. <Link to="/">Go to projects</Link>
          </p>
        )}
      </main>
      <Toasts />
    </div>
  );
}


