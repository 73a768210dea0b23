// Runs the graphql-http audit suite against a stepgraph server and prints the results as JSON.
// Usage: node audit.mjs <graphql url> [bearer token]
import { auditServer } from "graphql-http";

const [url, token] = process.argv.slice(2);
if (!url) {
  console.error("usage: node audit.mjs <url> [token]");
  process.exit(2);
}

const fetchWithToken = (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn: fetchWithToken });
const report = [];
for (const result of results) {
  report.push({
    id: result.id,
    name: result.name,
    status: result.status,
    reason: result.status === "ok" ? null : result.reason,
    response: result.status === "ok" ? null : await describe(result.response),
  });
}
console.log(JSON.stringify(report, null, 2));

async function describe(response) {
  if (!response) return null;
  let body = null;
  try {
    body = await response.text();
  } catch {
    body = "(body already read)";
  }
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    body: body && body.slice(0, 300),
  };
}
