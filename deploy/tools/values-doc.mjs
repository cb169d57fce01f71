#!/usr/bin/env node
// Generates the values table of charts/corebank/README.md from values.yaml (defaults) and
// values.schema.json (types and descriptions), between the markers
//   <!-- values-table:start --> and <!-- values-table:end -->
//
//   node deploy/tools/values-doc.mjs           rewrite the table
//   node deploy/tools/values-doc.mjs --check   exit 1 when the committed table is stale
//
// The README is formatted with the repository's Prettier settings, so `prettier --check` and this
// check agree.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import YAML from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const chartDir = join(root, 'charts/corebank');
const readmePath = join(chartDir, 'README.md');
const START = '<!-- values-table:start -->';
const END = '<!-- values-table:end -->';

function resolve(schema, node) {
  let n = node;
  while (n && n.$ref) {
    const name = n.$ref.replace('#/definitions/', '');
    n = { ...schema.definitions[name], ...Object.fromEntries(Object.entries(n).filter(([k]) => k !== '$ref')) };
  }
  return n ?? {};
}

function typeOf(schema, node) {
  const n = resolve(schema, node);
  if (n.enum) return n.enum.map((e) => JSON.stringify(e)).join(' | ');
  if (n.const !== undefined) return JSON.stringify(n.const);
  if (n.oneOf) return [...new Set(n.oneOf.map((o) => typeOf(schema, o)))].join(' or ');
  if (n.type === 'array') {
    if (Array.isArray(n.items)) return `[${n.items.map((i) => typeOf(schema, i)).join(', ')}]`;
    return `list of ${typeOf(schema, n.items ?? {})}`;
  }
  const map = mapSchema(n);
  if (map) return `map of ${typeOf(schema, map)}`;
  return n.type ?? 'any';
}

/** The schema of a map's values: additionalProperties, or the one patternProperties entry. */
function mapSchema(n) {
  if (n.type !== 'object' || n.properties) return undefined;
  if (n.additionalProperties && typeof n.additionalProperties === 'object') return n.additionalProperties;
  const patterns = Object.values(n.patternProperties ?? {});
  return patterns.length === 1 ? patterns[0] : undefined;
}

const show = (v) => {
  if (v === undefined) return '(unset)';
  if (Array.isArray(v) && v.some((e) => e && typeof e === 'object' && !Array.isArray(e))) {
    return `(${v.length} ${v.length === 1 ? 'entry' : 'entries'}, see values.yaml)`;
  }
  return JSON.stringify(v);
};

/** Rows: [key, type, default, description]. */
function rows(schema, node, value, path, out) {
  const n = resolve(schema, node);
  if (n.properties) {
    for (const [key, child] of Object.entries(n.properties)) {
      const c = resolve(schema, child);
      const p = path ? `${path}.${key}` : key;
      const v = value?.[key];
      const isClosedObject = c.type === 'object' && c.properties;
      const isServiceMap = Boolean(mapSchema(c)?.$ref);
      if (isClosedObject) {
        out.push([p, 'object', '', c.description ?? '']);
        rows(schema, c, v, p, out);
      } else if (isServiceMap) {
        const item = mapSchema(c);
        out.push([p, `map of ${item.$ref.replace('#/definitions/', '')}`, '', c.description ?? '']);
        for (const name of Object.keys(v ?? {})) {
          out.push([`${p}.${name}`, 'object', '', `The ${name} service.`]);
          rows(schema, item, v[name], `${p}.${name}`, out);
        }
      } else {
        out.push([p, typeOf(schema, c), show(v), c.description ?? '']);
        const items = c.type === 'array' && !Array.isArray(c.items) ? resolve(schema, c.items) : null;
        if (items?.properties) {
          for (const [key2, child2] of Object.entries(items.properties)) {
            const c2 = resolve(schema, child2);
            out.push([`${p}[].${key2}`, typeOf(schema, c2), '', c2.description ?? '']);
          }
        }
      }
    }
  }
  return out;
}

export function valuesTable() {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8'));
  const values = YAML.parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
  const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const cell = (s) => (s === '' ? '' : `\`${String(s).replace(/`/g, "'")}\``);
  const lines = ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |'];
  for (const [key, type, def, desc] of rows(schema, schema, values, '', [])) {
    lines.push(`| \`${key}\` | ${esc(type)} | ${esc(cell(def))} | ${esc(desc)} |`);
  }
  return lines.join('\n');
}

export async function renderReadme(current) {
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${readmePath}: markers ${START} ... ${END} not found`);
  const next = `${current.slice(0, start + START.length)}\n\n${valuesTable()}\n\n${current.slice(end)}`;
  const options = (await prettier.resolveConfig(readmePath)) ?? {};
  return prettier.format(next, { ...options, filepath: readmePath });
}

async function main() {
  const current = readFileSync(readmePath, 'utf8');
  const next = await renderReadme(current);
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('charts/corebank/README.md: the values table is stale; run node deploy/tools/values-doc.mjs');
      process.exit(1);
    }
    console.log('charts/corebank/README.md values table is up to date');
    return;
  }
  writeFileSync(readmePath, next);
  console.log('wrote the values table of charts/corebank/README.md');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
