#!/bin/sh
# Rebuilds the app and fails if the committed web/dist differs from the build:
# dist/ is embedded in the server binary, so it must match the sources, and the
# build must be reproducible (same sources, same bytes) for this to mean anything.
set -eu
cd "$(dirname "$0")/.."
npm run build --silent
# Untracked files in dist/ (a new hashed asset) count as a difference too.
untracked=$(git ls-files --others --exclude-standard -- dist)
if ! git diff --exit-code --stat -- dist || [ -n "$untracked" ]; then
  [ -n "$untracked" ] && printf 'untracked in web/dist:\n%s\n' "$untracked"
  echo "web/dist is out of date: run 'npm run build' in web/ and commit dist/" >&2
  exit 1
fi
echo "web/dist matches a fresh build"
