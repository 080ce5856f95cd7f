#!/bin/sh
# Upload a module, queue a task, follow its events, read its result: the
# REST API with nothing but curl.
#
#   FABRIC_API_URL=http://127.0.0.1:7080 FABRIC_API_TOKEN=fab_... \
#     ./submit.sh wordfreq.wasm book.txt
#
# The URL and an admin token are api_url and api_token in the cluster
# profile that `fabric up` writes (~/.config/fabric/cluster.toml).
set -eu
module=${1:?usage: submit.sh MODULE.wasm [INPUT]}
input=${2:-/dev/null}
url=${FABRIC_API_URL:?set FABRIC_API_URL (api_url in the cluster profile)}
auth="Authorization: Bearer ${FABRIC_API_TOKEN:?set FABRIC_API_TOKEN}"

# 1. The module, as raw bytes; the answer names it by its SHA-256.
sha=$(curl -sS --fail-with-body -H "$auth" --data-binary "@$module" \
  "$url/api/v1/modules" | sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p')
echo "module $sha"

# 2. The task: the module, its stdin in base64, a timeout.
b64=$(base64 < "$input" | tr -d '\n')
id=$(curl -sS --fail-with-body -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"module\":\"$sha\",\"input_b64\":\"$b64\",\"limits\":{\"timeout_ms\":30000}}" \
  "$url/api/v1/tasks" | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
echo "task $id"

# 3. Its events as they happen (Server-Sent Events); the stream ends with
#    an `end` event once the task finished.
curl -sS -N --fail-with-body -H "$auth" "$url/api/v1/tasks/$id/events" |
  sed -n 's/^event: //p'

# 4. Its result: status, exit code, stdout, stderr, fuel, duration.
curl -sS --fail-with-body -H "$auth" "$url/api/v1/tasks/$id/output"
echo
