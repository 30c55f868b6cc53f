#!/usr/bin/env node
// The SDK's Node-version notice must be off before any client module loads.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

// `--version` alone is answered before the parser and the engine load (~0.3 s of imports).
if (process.argv.length === 3 && process.argv[2] === '--version') {
  const { VERSION } = await import('./version.js');
  process.stdout.write(VERSION + '\n');
  process.exit(0);
}

const { main } = await import('./main.js');

const controller = new AbortController();
let stops = 0;
// The REPL claims SIGINT: it stops the running apply and keeps the session open.
let claim: ((sig: 'SIGINT' | 'SIGTERM') => boolean) | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (claim?.(sig)) return;
    stops++;
    // A second Ctrl+C means "now": in-flight temp files are removed by the next run.
    if (stops > 1) process.exit(sig === 'SIGINT' ? 130 : 143);
    process.stderr.write(`\nstorage-sync: ${sig}: stopping after in-flight work is cleanly stopped…\n`);
    controller.abort(sig);
  });
}

// Installed as `storage-sync-ui` too (package.json bin): that name opens the REPL.
const asUi = /^storage-sync-ui(\.js)?$/.test(process.argv[1]?.split(/[\\/]/).pop() ?? '');
const code = await main(asUi ? ['repl', ...process.argv.slice(2)] : process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
  claimSignals: (handler) => {
    claim = handler;
  },
});
process.exitCode = code;
