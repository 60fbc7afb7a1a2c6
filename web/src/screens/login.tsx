/** Log in or register (then log in). Token refresh is the client's business. */
import { type SyntheticEvent, useState } from "react";
import type { User } from "@ticketflow/client";
import { useTicketflowClient } from "@ticketflow/client/react";
import { errorText } from "../parts/errors";
import { navigate, useLocation } from "../router";

export function LoginScreen({ onLoggedIn }: { onLoggedIn: (user: User) => void }) {
  const client = useTicketflowClient();
  const { path } = useLocation();
  const registering = path === "/register";
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: SyntheticEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (registering) {
        await client.api.auth.register(displayName ? { username, password, display_name: displayName } : { username, password });
      }
      await client.api.auth.login({ username, password });
      onLoggedIn(await client.api.auth.me());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="auth">
      <form className="card auth-card" onSubmit={(e) => void submit(e)} aria-labelledby="auth-title">
        <h1 id="auth-title">{registering ? "Create an account" : "Log in to ticketflow"}</h1>
        <label>
          Username
          <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
        </label>
        {registering && (
          <label>
            Display name <span className="muted">(optional)</span>
            <input name="display_name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={registering ? "new-password" : "current-password"}
            required
            minLength={registering ? 8 : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {registering ? "Register" : "Log in"}
        </button>
        <p className="muted">
          {registering ? "Have an account? " : "New here? "}
          <a
            href={registering ? "/login" : "/register"}
            onClick={(e) => {
              e.preventDefault();
              setError(null);
              navigate(registering ? "/login" : "/register");
            }}
          >
            {registering ? "Log in" : "Create an account"}
          </a>
        </p>
      </form>
    </main>
  );
}
