/**
 * `pnpm bench [suite...]`: runs the named suites (all by default), prints a table and writes JSON
 * to bench/results/.
 */
import { cpuSuite } from './cpu.js';
import { type BenchResult, formatTable, writeResults } from './harness.js';

const SUITES: Record<string, () => Promise<BenchResult[]>> = { cpu: cpuSuite };

const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = asked.filter((s) => !(s in SUITES));
if (unknown.length) {
  console.error(`bench: unknown suite(s) ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
const results: BenchResult[] = [];
for (const name of asked.length ? asked : Object.keys(SUITES)) results.push(...(await SUITES[name]()));
console.log(formatTable(results));
console.log(`wrote ${writeResults('cpu', results)}`);
