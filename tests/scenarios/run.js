#!/usr/bin/env node
// Reference interpreter for the scenario language (see /work/shared/docs/scenario-language.md).
// Usage: node tests/scenarios/run.js [FILE.scn]   (reads stdin when no file is given)
// Prints one label per line, at process exit, in the order the callbacks ran.
// On malformed input: prints "NAME:LINE:COL: error: ..." to stderr and exits 2.
'use strict';
const fs = require('fs');
const { performance } = require('perf_hooks');

// ---------------------------------------------------------------- parsing
class ParseError extends Error {}

function tokenize(src) {
  const toks = [];
  const lines = src.split(/\r?\n/);
  for (let li = 0; li < lines.length; li++) {
    let line = lines[li];
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    const re = /[{}]|[^\s{}]+/g;
    let m;
    while ((m = re.exec(line)) !== null) {
      toks.push({ text: m[0], line: li + 1, col: m.index + 1 });
    }
  }
  return toks;
}

const BLOCK_OPS = new Set(['timeout', 'interval', 'immediate', 'tick', 'micro']);
const LABEL_OPS = new Set(['log', 'clear', 'unref', 'ref', 'refresh']);

function parse(src) {
  const toks = tokenize(src);
  let pos = 0;
  const eofPos = () => {
    const lines = src.split(/\r?\n/);
    // position just past the last non-empty content
    let l = lines.length;
    while (l > 1 && lines[l - 1].trim() === '') l--;
    return { line: l, col: (lines[l - 1] || '').length + 1 };
  };
  const where = (t) => (t ? `${t.line}:${t.col}` : `${eofPos().line}:${eofPos().col}`);
  const fail = (t, msg) => {
    const what = t ? `token '${t.text}'` : 'end of input';
    const e = new ParseError(`${where(t)}: error: unexpected ${what}: ${msg}`);
    throw e;
  };
  const label = (opTok) => {
    const t = toks[pos];
    if (!t) fail(t, `expected a LABEL after '${opTok.text}' (at ${where(opTok)})`);
    if (t.text === '{' || t.text === '}') fail(t, `expected a LABEL after '${opTok.text}' (at ${where(opTok)})`);
    pos++;
    return t.text;
  };
  const number = (opTok, what, min) => {
    const t = toks[pos];
    if (!t) fail(t, `expected ${what} after '${opTok.text}' (at ${where(opTok)})`);
    if (/^-\d+$/.test(t.text)) fail(t, `${what} must be non-negative`);
    if (!/^\d+$/.test(t.text)) fail(t, `expected ${what} (a non-negative decimal integer)`);
    const v = Number(t.text);
    if (!Number.isSafeInteger(v)) fail(t, `${what} is too large`);
    if (v < min) fail(t, `${what} must be >= ${min}`);
    pos++;
    return v;
  };
  const block = (opTok) => {
    const t = toks[pos];
    if (!t || t.text !== '{') fail(t, `expected '{' to open the body of '${opTok.text}' (at ${where(opTok)})`);
    pos++;
    const body = ops(false, t);
    return body;
  };
  function ops(top, openTok) {
    const out = [];
    for (;;) {
      const t = toks[pos];
      if (!t) {
        if (top) return out;
        fail(t, `missing '}' to close the '{' at ${where(openTok)}`);
      }
      if (t.text === '}') {
        if (top) fail(t, "'}' without a matching '{'");
        pos++;
        return out;
      }
      pos++;
      const op = t.text;
      if (op === 'log' || LABEL_OPS.has(op)) {
        out.push({ op, label: label(t) });
      } else if (op === 'busy') {
        out.push({ op, ms: number(t, 'MS', 0) });
      } else if (op === 'timeout') {
        const lbl = label(t);
        const ms = number(t, 'MS', 0);
        out.push({ op, label: lbl, ms, body: block(t) });
      } else if (op === 'interval') {
        const lbl = label(t);
        const ms = number(t, 'MS', 0);
        const count = number(t, 'COUNT', 1);
        out.push({ op, label: lbl, ms, count, body: block(t) });
      } else if (BLOCK_OPS.has(op)) {
        out.push({ op, label: label(t), body: block(t) });
      } else {
        fail(t, 'unknown op (expected one of log timeout interval immediate tick micro busy clear unref ref refresh)');
      }
    }
  }
  return ops(true, null);
}

// ---------------------------------------------------------------- running
const out = [];
const handles = new Map(); // label -> { kind: 'timeout'|'interval'|'immediate', h }

function busy(ms) {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

function run(body) {
  for (const o of body) {
    switch (o.op) {
      case 'log': out.push(o.label); break;
      case 'busy': busy(o.ms); break;
      case 'timeout': {
        const h = setTimeout(() => { out.push(o.label); run(o.body); }, o.ms);
        handles.set(o.label, { kind: 'timeout', h });
        break;
      }
      case 'interval': {
        let runs = 0;
        const h = setInterval(() => {
          out.push(o.label);
          runs++;
          run(o.body);
          if (runs >= o.count) clearInterval(h);
        }, o.ms);
        handles.set(o.label, { kind: 'interval', h });
        break;
      }
      case 'immediate': {
        const h = setImmediate(() => { out.push(o.label); run(o.body); });
        handles.set(o.label, { kind: 'immediate', h });
        break;
      }
      case 'tick': process.nextTick(() => { out.push(o.label); run(o.body); }); break;
      case 'micro': queueMicrotask(() => { out.push(o.label); run(o.body); }); break;
      case 'clear': {
        const e = handles.get(o.label);
        if (!e) break;
        if (e.kind === 'timeout') clearTimeout(e.h);
        else if (e.kind === 'interval') clearInterval(e.h);
        else clearImmediate(e.h);
        break;
      }
      case 'unref': { const e = handles.get(o.label); if (e) e.h.unref(); break; }
      case 'ref': { const e = handles.get(o.label); if (e) e.h.ref(); break; }
      case 'refresh': {
        const e = handles.get(o.label);
        // As in Node.js: an Immediate has no refresh(), so this throws a TypeError (uncaught: exit 1).
        if (e) e.h.refresh();
        break;
      }
      default: throw new Error(`internal: bad op ${o.op}`);
    }
  }
}

// ---------------------------------------------------------------- main
const file = process.argv[2];
let src, name;
try {
  if (file !== undefined && file !== '-') { src = fs.readFileSync(file, 'utf8'); name = file; }
  else { src = fs.readFileSync(0, 'utf8'); name = '<stdin>'; }
} catch (e) {
  fs.writeSync(2, `run.js: cannot read ${file === undefined ? 'stdin' : file}: ${e.message}\n`);
  process.exit(2);
}

let program;
try {
  program = parse(src);
} catch (e) {
  if (!(e instanceof ParseError)) throw e;
  fs.writeSync(2, `${name}:${e.message}\n`);
  process.exit(2);
}

process.on('exit', () => {
  if (out.length) fs.writeSync(1, out.join('\n') + '\n');
});
run(program);
