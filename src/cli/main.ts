/** Entry of the `kapija` command. */
import { runCli } from './index.js';

runCli(process.argv.slice(2), process.env, {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  stdin: process.stdin,
}).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`kapija: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
