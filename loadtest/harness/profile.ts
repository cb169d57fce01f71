// Summarises V8 CPU profiles (`npm run bench -- --cpu-prof` writes one per service process into
// loadtest/results/prof/, named CPU.<date>.<time>.<pid>...; the bench prints each service's pid):
// busy time by package (node_modules/<pkg>), service module (svc:<service>/<file>), Node internal,
// GC and native code, then the hottest functions.
//
//   node --import tsx loadtest/harness/profile.ts loadtest/results/prof/CPU.*.<pid>.0.001.cpuprofile
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
}
interface Profile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

function category({ functionName: f, url: u }: CallFrame): string {
  if (f === '(idle)') return '(idle)';
  if (f === '(garbage collector)') return '(gc)';
  if (f === '(program)') return '(program)';
  let m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1]!;
  m = /services\/([^/]+)\/src\/(.*)$/.exec(u);
  if (m) return `svc:${m[1]}/${m[2]!.split('/')[0]}`;
  if (u.startsWith('node:'))
    return u
      .replace(/^node:(internal\/)?/, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/');
  return u ? `...${u.slice(-40)}` : `(native) ${f}`;
}

for (const file of process.argv.slice(2)) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const frame = byId.get(id)!.callFrame;
    const c = category(frame);
    cats.set(c, (cats.get(c) ?? 0) + dt);
    const k = `${frame.functionName || '(anonymous)'}  ${c}`;
    fns.set(k, (fns.get(k) ?? 0) + dt);
  });
  const busy = total - (cats.get('(idle)') ?? 0);
  const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`);
  for (const [c, t] of [...cats].sort((a, b) => b[1] - a[1]).slice(0, 25))
    if (c !== '(idle)') console.log(`  ${pct(t)}  ${c}`);
  console.log('  hottest functions (self time):');
  for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 20))
    if (!k.startsWith('(idle)')) console.log(`  ${pct(t)}  ${k}`);
}
