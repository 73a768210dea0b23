// Composes subgraph SDL files into a supergraph with two independent composers
// and prints the outcome as JSON on stdout.
//
//   node compose.mjs [--exclude-tag TAG]... NAME=URL=SDL_FILE...
//
//   node compose.mjs --exclude-tag internal \
//     stepgraph=http://127.0.0.1:8000/graphql=../../schema.graphql \
//     flows=http://127.0.0.1:4001/graphql=flows/schema.graphql
//
// Composers:
//   apollo  @apollo/composition, the composer of Rover and Apollo GraphOS; it also
//           reports hints (e.g. INCONSISTENT_DESCRIPTION), which are not errors
//           but show where subgraphs disagree.
//   guild   @theguild/federation-composition, the composer of Hive (MIT).
//
// Output:
//   {
//     "ok": true when no composer reported an error or a hint,
//     "errors": [{"composer", "code", "message"}],
//     "hints": [{"composer", "code", "message"}],
//     "supergraphSdl": the supergraph from apollo (null when it failed),
//     "apiSdl": the public API schema (what clients see) from guild,
//     "contracts": {"<TAG>": {"errors": [...], "apiSdl": "..."}}: one per --exclude-tag,
//                  the API schema of a contract variant without the elements so tagged
//                  (composed by guild; its errors are also in "errors")
//   }
// Exit status: 0 when "ok", 1 when not, 2 on bad usage.
import { readFileSync } from "node:fs";

import { composeServices as apolloCompose } from "@apollo/composition";
import {
  composeSchemaContract,
  composeServices as guildCompose,
} from "@theguild/federation-composition";
import { parse } from "graphql";

function usage(message) {
  console.error(`compose.mjs: ${message}`);
  console.error("usage: node compose.mjs [--exclude-tag TAG]... NAME=URL=SDL_FILE...");
  process.exit(2);
}

const excludedTags = [];
const subgraphs = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--exclude-tag") {
    if (i + 1 >= args.length) usage("--exclude-tag needs a tag name");
    excludedTags.push(args[++i]);
    continue;
  }
  const first = args[i].indexOf("=");
  const last = args[i].lastIndexOf("=");
  if (first <= 0 || last === first) usage(`not NAME=URL=SDL_FILE: ${args[i]}`);
  const name = args[i].slice(0, first);
  const url = args[i].slice(first + 1, last);
  const file = args[i].slice(last + 1);
  let sdl;
  try {
    sdl = readFileSync(file, "utf8");
  } catch (error) {
    usage(`cannot read ${file}: ${error.message}`);
  }
  subgraphs.push({ name, url, sdl });
}
if (subgraphs.length === 0) usage("no subgraph given");

function describe(composer, issue) {
  const code = issue.extensions?.code ?? issue.definition?.code ?? null;
  return { composer, code, message: issue.message };
}

function services() {
  return subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) }));
}

const errors = [];
const hints = [];

const apollo = apolloCompose(services());
errors.push(...(apollo.errors ?? []).map((e) => describe("apollo", e)));
hints.push(...(apollo.hints ?? []).map((h) => describe("apollo", h)));

const guild = guildCompose(services());
errors.push(...(guild.errors ?? []).map((e) => describe("guild", e)));

const contracts = {};
for (const tag of excludedTags) {
  const contract = composeSchemaContract(
    services(),
    { include: new Set(), exclude: new Set([tag]) },
    true,
  );
  const contractErrors = (contract.errors ?? []).map((e) =>
    describe(`guild contract -${tag}`, e),
  );
  errors.push(...contractErrors);
  contracts[tag] = { errors: contractErrors, apiSdl: contract.publicSdl ?? null };
}

const result = {
  ok: errors.length === 0 && hints.length === 0,
  errors,
  hints,
  supergraphSdl: apollo.supergraphSdl ?? null,
  apiSdl: guild.publicSdl ?? null,
  contracts,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
// exitCode rather than exit(): exit() would cut stdout short when it is a pipe.
process.exitCode = result.ok ? 0 : 1;
