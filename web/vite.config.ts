// Vite build of the web app. The SDK is compiled from its sources through an
// alias (no separate SDK build), and the output in dist/ is committed and
// embedded in the server binary, so the build must be byte-for-byte
// reproducible: content-hashed names, no timestamps, no source maps with
// absolute paths.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const sdk = (p: string) => fileURLToPath(new URL(`../clients/ts/src/${p}`, import.meta.url));
const local = (p: string) => fileURLToPath(new URL(`./node_modules/${p}`, import.meta.url));

export default defineConfig({
  base: "/",
  resolve: {
    alias: [
      { find: /^@ticketflow\/client\/react$/, replacement: sdk("react/index.tsx") },
      { find: /^@ticketflow\/client$/, replacement: sdk("index.ts") },
      // The SDK's sources live outside web/: their `react` must be this app's copy.
      { find: /^react$/, replacement: local("react/index.js") },
      { find: /^react\/jsx-runtime$/, replacement: local("react/jsx-runtime.js") },
    ],
    dedupe: ["react", "react-dom"],
  },
  esbuild: { jsx: "automatic" },
  server: { fs: { allow: [".."] } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    reportCompressedSize: false,
    modulePreload: { polyfill: false },
  },
});
