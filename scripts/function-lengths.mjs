/**
 * Lists every function in src/ (declarations, function expressions, arrows, methods, accessors,
 * constructors) longer than a limit, and fails when there is one: a function over the limit is
 * a flow nobody can hold in mind at once, and the place a later change hides a bug.
 *
 *   node scripts/function-lengths.mjs [--max N] [--top K] [DIR...]
 *
 * --max N   the limit in lines, from the function's first line to its last (default 150)
 * --top K   also print the K longest functions, over the limit or not (for a report)
 * DIR...    where to look (default src); every .ts file below, parsed with the TypeScript compiler
 *
 * A nested function counts in its own right and within its enclosing function: a 300-line closure
 * is 300 lines even when it is made of small arrows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';

const { values, positionals } = parseArgs({
  options: { max: { type: 'string', default: '150' }, top: { type: 'string', default: '0' } },
  allowPositionals: true,
});
const max = Number(values.max);
const top = Number(values.top);
if (!Number.isInteger(max) || max < 1 || !Number.isInteger(top) || top < 0) {
  process.stderr.write('usage: node scripts/function-lengths.mjs [--max N] [--top K] [DIR...]\n');
  process.exit(2);
}
const roots = positionals.length ? positionals : ['src'];

/** Every .ts file below `dir` (declaration files left out), in a stable order. */
function sourceFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return sourceFiles(p);
      return e.isFile() && p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
    });
}

/** A readable name: the function's own, or what it is assigned to, passed to or returned as. */
function nameOf(node, file) {
  if (node.name) return node.name.getText(file);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) return parent.name.getText(file);
  if (ts.isCallExpression(parent)) return `(argument of ${parent.expression.getText(file).slice(0, 40)})`;
  if (ts.isExportAssignment(parent)) return 'export default';
  return '(anonymous)';
}

function isFunction(node) {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isFunctionExpression(node) ||
    ts.isArrowFunction(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node)
  );
}

/** Every function of one file with its length in lines. */
function functionsOf(fileName) {
  const file = ts.createSourceFile(fileName, fs.readFileSync(fileName, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = [];
  const visit = (node) => {
    if (isFunction(node) && node.body) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(node.end).line;
      found.push({ file: fileName, line: first + 1, name: nameOf(node, file), lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

const all = roots.flatMap(sourceFiles).flatMap(functionsOf);
const byLength = [...all].sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
const show = (f) => `${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}\n`;

if (top > 0) {
  process.stdout.write(`the ${Math.min(top, all.length)} longest of ${all.length} functions:\n`);
  for (const f of byLength.slice(0, top)) process.stdout.write(show(f));
}
const over = byLength.filter((f) => f.lines > max);
if (over.length) {
  process.stdout.write(`${over.length} function(s) over ${max} lines (split them into named pieces):\n`);
  for (const f of over) process.stdout.write(show(f));
  process.exit(1);
}
process.stdout.write(`no function over ${max} lines in ${roots.join(', ')} (${all.length} functions)\n`);
