/**
 * Entry point: one `TicketflowClient` for the page, created before React
 * renders, with tokens and stream positions restored from sessionStorage.
 */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { TicketflowProvider } from "@ticketflow/client/react";
import { App } from "./app";
import { createAppClient } from "./session_client";
import "./style.css";

const client = createAppClient();
const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <TicketflowProvider client={client}>
        <App />
      </TicketflowProvider>
    </StrictMode>,
  );
}
