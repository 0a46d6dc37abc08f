#!/usr/bin/env node
// Syntax check of PowerShell files with tree-sitter-powershell (WASM grammar) loaded by web-tree-sitter.
// No PowerShell runtime is needed. A file fails when its tree holds any ERROR or MISSING node; each one is
// printed as `path:line:col: ERROR|MISSING ...` (1-based line and column).
//
// Usage:
//   node check.js [--root DIR] [--json FILE] [FILE...]   check FILEs, or every *.ps1/*.psm1/*.psd1 under DIR
//                                                      (default: the repository root, two folders up)
//   node check.js --self-test [--json FILE]             prove the checker: fixtures/good/* must pass and every
//                                                      fixtures/bad/* must fail at the line its
//                                                      `# expect-error-line: N` comment names
// Exit code: 0 all clean, 1 a file has a syntax error (or a self-test expectation failed), 2 the tool itself
// could not run (grammar missing or ABI-incompatible).
'use strict';

const fs = require('fs');
const path = require('path');

const EXTENSIONS = new Set(['.ps1', '.psm1', '.psd1']);
// Folders never scanned: build output, installed packages, compiler output, VCS data, and this tool's own
// fixtures (fixtures/bad holds deliberately broken files; --self-test checks them instead).
const EXCLUDED_DIRS = new Set(['output', 'node_modules', 'bin', 'obj', '.git', 'TestResults']);
const SELF_DIR = __dirname;
const FIXTURES_DIR = path.join(SELF_DIR, 'fixtures');

function parseArgs(argv) {
  const opts = { root: path.resolve(SELF_DIR, '..', '..'), json: null, selfTest: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--root') opts.root = path.resolve(argv[++i]);
    else if (a === '--json') opts.json = path.resolve(argv[++i]);
    else if (a === '--self-test') opts.selfTest = true;
    else if (a === '--help' || a === '-h') { opts.help = true; }
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.files.push(path.resolve(a));
  }
  return opts;
}

function findPowerShellFiles(root) {
  const found = [];
  const walk = (dir) => {
    let entries;
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch (e) { return; }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (EXCLUDED_DIRS.has(e.name)) continue;
        if (path.resolve(full) === FIXTURES_DIR) continue;
        walk(full);
      } else if (e.isFile() && EXTENSIONS.has(path.extname(e.name).toLowerCase())) {
        found.push(full);
      }
    }
  };
  walk(root);
  return found;
}

async function loadParser() {
  const { Parser, Language, LANGUAGE_VERSION, MIN_COMPATIBLE_VERSION } = require('web-tree-sitter');
  await Parser.init();
  const wasm = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
  const language = await Language.load(wasm);
  const abi = language.abiVersion;
  if (abi < MIN_COMPATIBLE_VERSION || abi > LANGUAGE_VERSION) {
    throw new Error(`tree-sitter-powershell.wasm has ABI ${abi}; web-tree-sitter supports ` +
      `${MIN_COMPATIBLE_VERSION}..${LANGUAGE_VERSION}`);
  }
  const parser = new Parser();
  parser.setLanguage(language);
  return parser;
}

// Reads a file as PowerShell would: UTF-8 with or without BOM, or UTF-16 with a BOM.
function readSource(file) {
  const buf = fs.readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0xff && buf[1] === 0xfe) return buf.subarray(2).toString('utf16le');
  if (buf.length >= 2 && buf[0] === 0xfe && buf[1] === 0xff) {
    const swapped = Buffer.from(buf.subarray(2));
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

// Every ERROR or MISSING node, outermost first; nodes inside an ERROR are not reported again.
function syntaxProblems(tree) {
  const problems = [];
  const visit = (node) => {
    if (node.isMissing) {
      problems.push({ kind: 'MISSING', line: node.startPosition.row + 1, col: node.startPosition.column + 1,
        detail: `missing ${JSON.stringify(node.type)}` });
      return;
    }
    if (node.isError) {
      const snippet = node.text.split(/\r?\n/)[0].slice(0, 60);
      problems.push({ kind: 'ERROR', line: node.startPosition.row + 1, col: node.startPosition.column + 1,
        detail: `unexpected ${JSON.stringify(snippet)}` });
      return;
    }
    if (!node.hasError) return;
    for (let i = 0; i < node.childCount; i++) visit(node.child(i));
  };
  visit(tree.rootNode);
  return problems;
}

function checkFile(parser, file) {
  const tree = parser.parse(readSource(file));
  try {
    return syntaxProblems(tree);
  } finally {
    tree.delete();
  }
}

function rel(root, file) {
  const r = path.relative(root, file);
  return r.startsWith('..') ? file : r;
}

async function runCheck(parser, opts) {
  const files = opts.files.length > 0 ? opts.files : findPowerShellFiles(opts.root);
  const results = [];
  for (const file of files) {
    const problems = checkFile(parser, file);
    const name = rel(opts.root, file);
    for (const p of problems) console.log(`${name}:${p.line}:${p.col}: ${p.kind} ${p.detail}`);
    results.push({ name, passed: problems.length === 0, problems });
  }
  const failed = results.filter((r) => !r.passed).length;
  console.log(`ps-syntax: ${results.length} file(s) checked, ${results.length - failed} clean, ${failed} with syntax errors`);
  return results;
}

function expectedErrorLine(source) {
  const m = /#\s*expect-error-line:\s*(\d+)/.exec(source);
  return m ? Number(m[1]) : null;
}

async function runSelfTest(parser) {
  const results = [];
  const list = (sub) => {
    const dir = path.join(FIXTURES_DIR, sub);
    return fs.readdirSync(dir).filter((n) => EXTENSIONS.has(path.extname(n).toLowerCase())).sort()
      .map((n) => path.join(dir, n));
  };
  for (const file of list('good')) {
    const problems = checkFile(parser, file);
    const name = `self-test good/${path.basename(file)}`;
    const passed = problems.length === 0;
    if (!passed) for (const p of problems) console.log(`${name}: unexpected ${p.kind} at ${p.line}:${p.col} ${p.detail}`);
    results.push({ name, passed, problems });
  }
  for (const file of list('bad')) {
    const problems = checkFile(parser, file);
    const expected = expectedErrorLine(readSource(file));
    const name = `self-test bad/${path.basename(file)}`;
    let passed = problems.length > 0;
    let why = 'no ERROR or MISSING node found in a broken file';
    if (passed && expected !== null && !problems.some((p) => p.line === expected)) {
      passed = false;
      why = `expected a problem on line ${expected}, got lines ${problems.map((p) => p.line).join(', ')}`;
    }
    if (!passed) console.log(`${name}: FAILED: ${why}`);
    else console.log(`${name}: caught ${problems.map((p) => `${p.kind} at ${p.line}:${p.col}`).join('; ')}`);
    results.push({ name, passed, problems });
  }
  const failed = results.filter((r) => !r.passed).length;
  console.log(`ps-syntax self-test: ${results.length} case(s), ${results.length - failed} as expected, ${failed} not`);
  return results;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`ps-syntax: ${e.message}`);
    return 2;
  }
  if (opts.help) {
    console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 14).join('\n'));
    return 0;
  }
  let parser;
  try {
    parser = await loadParser();
  } catch (e) {
    console.error(`ps-syntax: cannot load the PowerShell grammar: ${e.message}`);
    return 2;
  }
  const results = opts.selfTest ? await runSelfTest(parser) : await runCheck(parser, opts);
  if (opts.json) {
    const failed = results.filter((r) => !r.passed).length;
    fs.writeFileSync(opts.json, JSON.stringify({ passed: results.length - failed, failed, results }, null, 2));
  }
  return results.every((r) => r.passed) ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (e) => { console.error(e); process.exitCode = 2; });
