/**
 * Print the README "Reliability" table from the tally the fault suite appends (one JSON line per
 * test process, see faults.ts): `npx tsx test/helpers/faults-report.ts [TALLY_FILE]`. Rows of the
 * same fault are summed; notes (kill points not reached, known bugs) are listed under the table.
 */
import * as fs from 'node:fs';
import { TALLY_FILE } from './faults.js';

interface Row {
  fault: string;
  how: string;
  runs: number;
  violations: number;
  notes: string[];
}

const file = process.argv[2] ?? TALLY_FILE;
const rows = new Map<string, Row>();
const seeds = new Set<number>();
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (line.trim() === '') continue;
  const doc = JSON.parse(line) as { seed: number; rows: Row[] };
  seeds.add(doc.seed);
  for (const r of doc.rows) {
    const have = rows.get(r.fault) ?? { fault: r.fault, how: '', runs: 0, violations: 0, notes: [] };
    if (have.how === '' && r.how !== '') have.how = r.how;
    have.runs += r.runs;
    have.violations += r.violations;
    have.notes.push(...r.notes);
    rows.set(r.fault, have);
  }
}
const out: string[] = [];
out.push(`seed ${[...seeds].join(', ')}`, '');
out.push('| fault | how it is injected | runs | invariant violations |', '| --- | --- | ---: | ---: |');
let runs = 0;
let violations = 0;
for (const r of [...rows.values()].sort((a, b) => a.fault.localeCompare(b.fault))) {
  out.push(`| ${r.fault} | ${r.how} | ${r.runs} | ${r.violations} |`);
  runs += r.runs;
  violations += r.violations;
}
out.push(`| **total** | | **${runs}** | **${violations}** |`, '');
for (const r of rows.values()) for (const n of r.notes) out.push(`- ${r.fault}: ${n}`);
process.stdout.write(`${out.join('\n')}\n`);
