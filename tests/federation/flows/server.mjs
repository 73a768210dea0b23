// A sample flows subgraph: owns `Flow { id name status }` and lists flows.
//
//   node flows/server.mjs <flows.json>
//
// <flows.json> is `[{"id": "...", "name": "...", "status": "ACTIVE"}, ...]`.
// Listens on 127.0.0.1 on a free port and prints `listening <url>` once ready.
// It records the Authorization header of every GraphQL request it serves, so a
// test can check what a gateway forwarded: `GET /requests` returns them as JSON.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { buildSubgraphSchema } from "@apollo/subgraph";
import { graphql, parse } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
const typeDefs = parse(readFileSync(join(here, "schema.graphql"), "utf8"));

const flowsFile = process.argv[2];
if (!flowsFile) {
  console.error("usage: node flows/server.mjs <flows.json>");
  process.exit(2);
}
const flows = JSON.parse(readFileSync(flowsFile, "utf8"));
const byId = new Map(flows.map((flow) => [flow.id, flow]));

const schema = buildSubgraphSchema({
  typeDefs,
  resolvers: {
    Query: { flows: () => flows },
    Flow: { __resolveReference: (reference) => byId.get(reference.id) ?? null },
  },
});

const seen = [];

function send(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

const server = createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (request.method === "GET" && url.pathname === "/requests") {
    send(response, 200, seen);
    return;
  }
  if (request.method !== "POST" || url.pathname !== "/graphql") {
    send(response, 404, { errors: [{ message: "POST /graphql or GET /requests" }] });
    return;
  }
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      send(response, 400, { errors: [{ message: "the body is not JSON" }] });
      return;
    }
    seen.push({
      authorization: request.headers.authorization ?? null,
      query: body.query,
    });
    const result = await graphql({
      schema,
      source: body.query,
      variableValues: body.variables,
      operationName: body.operationName,
    });
    send(response, 200, result);
  });
});

server.listen(0, "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/graphql`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
