/**
 * The `fluxion` command run from the repository's sources (`pnpm fluxion train vae …`).
 */
import { runCli } from '@fluxion/models/node';

process.exitCode = await runCli(process.argv.slice(2));
