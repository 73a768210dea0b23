// A federation gateway over a composed supergraph, on loopback:
//
//   node gateway.mjs <supergraph.graphql>
//
// Listens on 127.0.0.1 on a free port and prints `listening <url>` once ready.
// Every subgraph request carries the client's `Authorization` header: stepgraph
// scopes every read, entity lookups included, to the caller's organization, so
// a gateway that drops the header leaves it nothing to read.
import { readFileSync } from "node:fs";

import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

const supergraphFile = process.argv[2];
if (!supergraphFile) {
  console.error("usage: node gateway.mjs <supergraph.graphql>");
  process.exit(2);
}

// Header propagation: the same rule for every subgraph.
class ForwardAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) {
      request.http.headers.set("authorization", context.authorization);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraphFile, "utf8"),
  buildService: ({ url }) => new ForwardAuthorization({ url }),
});

const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: 0 },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
console.log(`listening ${url}`);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.stop().then(() => process.exit(0)));
}
