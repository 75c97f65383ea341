/**
 * `pnpm bench [suite…] [options]`: runs the named suites (all by default) on every engine on the
 * machine's WebGPU adapter and CPU, prints a table with per-case ratios to Fluxion, and writes
 * JSON and a bar chart to bench/results/<date>-<adapter>.{json,png}.
 *
 * Options: --engines fluxion-webgpu,tfjs-wasm,…  --runs N  --warmup N  --quick  --budget-ms N
 * --max-steps N (e2e)  --filter TEXT (cases whose name contains it)  --with FILE.json (add another
 * run's rows, e.g. PyTorch's)  --out DIR  --no-write  --isolate (each engine in a process of its
 * own: engines sharing one process slow each other's WebGPU work down, see bench/README.md)
 * --no-probe (no adapter speed probe around the run; an isolated run's children get it)
 *
 * `pnpm bench profile [gan|vae|dcgan|wavegan|charlm] [--steps N]` instead breaks one Fluxion training step down
 * by kernel (see profile.ts).
 */
import { cpus, loadavg } from 'node:os';
import { writeChart } from './chart.js';
import { setupWebGPU } from './device.js';
import { e2eSuite } from './e2e.js';
import { type Engine, engineLabel } from './engines/engine.js';
import { fluxionEngine } from './engines/fluxion.js';
import { type BenchResult, formatTable, type RunInfo, readResults, writeResults } from './harness.js';
import { runIsolated } from './isolate.js';
import { opsSuite } from './ops.js';
import { type ProbeReading, probeNote, speedProbe } from './probe.js';
import type { Suite, SuiteOptions } from './suite.js';
import { trainSuite } from './train.js';

const SUITES: Record<string, Suite> = { ops: opsSuite, train: trainSuite, e2e: e2eSuite };

/** Every engine the suite knows, in table order. */
const ENGINE_LABELS = [
  'fluxion-webgpu',
  'fluxion-cpu',
  'tfjs-webgpu',
  'tfjs-wasm',
  'tfjs-cpu',
  'jax-js-webgpu',
  'jax-js-wasm',
];

interface Args {
  suites: string[];
  engines: string[];
  options: SuiteOptions;
  outDir?: string;
  /** Results files (e.g. PyTorch's) whose rows join this run's table and chart. */
  merge: string[];
  write: boolean;
  /** Run each engine in a child process of its own. */
  isolate: boolean;
  /** Read the adapter speed probe around the run (an isolated run's parent reads it for its children). */
  probe: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    suites: [],
    engines: ENGINE_LABELS,
    options: { runs: 5, warmup: 1, quick: false, budgetMs: 20_000, maxSteps: 0, filter: '' },
    merge: [],
    write: true,
    isolate: false,
    probe: true,
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) usage(`${flag} needs a non-negative number, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--engines') args.engines = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--runs') args.options.runs = Math.max(1, num(a, argv[++i]));
    else if (a === '--warmup') args.options.warmup = num(a, argv[++i]);
    else if (a === '--budget-ms') args.options.budgetMs = num(a, argv[++i]);
    else if (a === '--max-steps') args.options.maxSteps = num(a, argv[++i]);
    else if (a === '--quick') args.options.quick = true;
    else if (a === '--filter') args.options.filter = argv[++i] ?? '';
    else if (a === '--out') args.outDir = argv[++i];
    else if (a === '--with') args.merge.push(argv[++i] ?? '');
    else if (a === '--no-write') args.write = false;
    else if (a === '--isolate') args.isolate = true;
    else if (a === '--no-probe') args.probe = false;
    else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else args.suites.push(a);
  }
  const unknownSuites = args.suites.filter((s) => !(s in SUITES));
  if (unknownSuites.length) usage(`unknown suite(s) ${unknownSuites.join(', ')}`);
  const unknownEngines = args.engines.filter((e) => !ENGINE_LABELS.includes(e));
  if (unknownEngines.length) usage(`unknown engine(s) ${unknownEngines.join(', ')}`);
  if (!args.suites.length) args.suites = Object.keys(SUITES);
  return args;
}

function usage(error?: string): never {
  if (error) console.error(`bench: ${error}`);
  console.error(
    `usage: pnpm bench [${Object.keys(SUITES).join('|')}…] [--engines ${ENGINE_LABELS.join(',')}]\n` +
      '                  [--runs N] [--warmup N] [--quick] [--budget-ms N] [--max-steps N] [--filter TEXT]\n' +
      '                  [--with FILE.json] [--out DIR] [--no-write] [--isolate] [--no-probe]\n' +
      '       pnpm bench profile [gan|vae|dcgan|wavegan|charlm] [--steps N]',
  );
  process.exit(error ? 2 : 0);
}

/** Creates the engines by label; those that cannot start here are reported and left out. */
async function createEngines(labels: string[], hasGpu: boolean): Promise<Map<string, Engine>> {
  const made = new Map<string, Engine>();
  const note = (label: string, why: string) => console.error(`bench: ${label} not available: ${why}`);
  for (const label of labels) {
    const [engine, backend] = [
      label.slice(0, label.lastIndexOf('-')),
      label.slice(label.lastIndexOf('-') + 1),
    ];
    if (backend === 'webgpu' && !hasGpu) {
      note(label, 'no WebGPU adapter');
      continue;
    }
    try {
      let e: Engine | string | null;
      if (engine === 'fluxion') e = await fluxionEngine(backend as 'cpu' | 'webgpu');
      else if (engine === 'tfjs') e = await (await import('./engines/tfjs.js')).tfjsEngine(backend as 'cpu');
      else e = await (await import('./engines/jax.js')).jaxEngine(backend as 'wasm');
      if (typeof e === 'string' || e === null) note(label, e ?? 'backend did not initialise');
      else made.set(label, e);
    } catch (err) {
      note(label, (err as Error).message);
    }
  }
  return made;
}

if (process.argv[2] === 'profile') {
  await (await import('./profile.js')).profileMain(process.argv.slice(3));
  process.exit(0);
}
const args = parseArgs(process.argv.slice(2));
const adapter = await setupWebGPU();
const load = loadavg()[0];
const results: BenchResult[] = [];
let probes: ProbeReading[] = [];
if (args.isolate) {
  const isolated = await runIsolated(args.suites, args.options, args.engines);
  results.push(...isolated.rows);
  probes = isolated.probes;
} else {
  const before = args.probe ? await speedProbe() : null;
  const wanted = [...new Set([...args.engines, 'fluxion-cpu', 'tfjs-cpu'])];
  const available = await createEngines(wanted, adapter !== null);
  const engines = args.engines.flatMap((l) => available.get(l) ?? []);
  const references = ['fluxion-cpu', 'tfjs-cpu'].flatMap((l) => available.get(l) ?? []);
  console.error(
    `bench: adapter ${adapter ? `${adapter.name} (${adapter.info.description ?? adapter.info.device ?? ''})` : 'none'}; ` +
      `engines ${engines.map(engineLabel).join(', ')}`,
  );
  for (const name of args.suites) {
    results.push(
      ...(await SUITES[name]({
        engines,
        references,
        options: args.options,
        log: (line) => console.error(line),
      })),
    );
  }
  if (args.probe) probes = [{ label: 'run', before, after: await speedProbe() }];
}
for (const file of args.merge) results.push(...readResults(file));
console.log(formatTable(results));
const probeText = adapter && probes.length > 0 ? probeNote(probes) : null;
const info: RunInfo = {
  adapter: adapter?.name ?? 'cpu',
  adapterInfo: adapter?.info,
  command: `pnpm bench ${process.argv.slice(2).join(' ')}`.trim(),
  notes: [
    `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`,
    args.isolate ? 'each engine in a process of its own (--isolate)' : 'every engine in one process',
    `load average ${load.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end` +
      (Math.max(load, loadavg()[0]) > 0.5 ? ' (measured under load: noisy)' : ''),
    ...(probeText ? [probeText] : []),
  ],
};
if (probeText) console.error(`bench: ${probeText}`);
if (args.write) {
  const json = writeResults(info, results, args.outDir);
  const png = writeChart(json.replace(/\.json$/, '.png'), info, results);
  console.log(`wrote ${json}\nwrote ${png}`);
}
process.exit(0);
