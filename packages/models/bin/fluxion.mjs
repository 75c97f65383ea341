#!/usr/bin/env node
// The `fluxion` command of an installed @fluxion/models (built to dist/ by `pnpm build`).
import { runCli } from '../dist/node.js';

process.exitCode = await runCli(process.argv.slice(2));
