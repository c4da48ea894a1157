// src/http/ui/markdown.js under Node's test runner (node --test), with the
// fake document of fake_dom.mjs: what it renders for a table of cases, the
// XSS corpus (xss_corpus.json) against exact output and allow-lists, and
// hostile inputs against a bound on the work done (steps, not wall time).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { renderMarkdown, safeHref } from '../../src/http/ui/markdown.js';
import { makeDoc, toHtml, walk, textOf } from './fake_dom.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, '..', '..', 'src', 'http', 'ui');

const render = (text) => toHtml(renderMarkdown(text, makeDoc()));
const A = (href, text, extra = '') =>
  `<a href="${href}" rel="noopener noreferrer nofollow" target="_blank"${extra}>${text}</a>`;

const CASES = [
  ['empty', '', ''],
  ['paragraphs', 'one\ntwo\n\nthree', '<p>one\ntwo</p><p>three</p>'],
  ['atx headings', '# h1\n### h3 ###\n####### seven', '<h1>h1</h1><h3>h3</h3><p>####### seven</p>'],
  ['setext headings', 'Title\n=====\nSub\n---', '<h1>Title</h1><h2>Sub</h2>'],
  ['emphasis and strong', '*a* _b_ **c** __d__ ***e***', '<p><em>a</em> <em>b</em> <strong>c</strong> <strong>d</strong> <em><strong>e</strong></em></p>'],
  ['nested emphasis', '*a **b** c*', '<p><em>a <strong>b</strong> c</em></p>'],
  ['intraword underscore is text', 'snake_case_name and 2*3*4', '<p>snake_case_name and 2<em>3</em>4</p>'],
  ['unmatched delimiters', '**a *b', '<p>**a *b</p>'],
  ['strikethrough', '~~gone~~ ~one~', '<p><del>gone</del> <del>one</del></p>'],
  ['inline code', 'use `a < b` and `` x ` y ``', '<p>use <code>a &lt; b</code> and <code>x ` y</code></p>'],
  ['unclosed code', 'a `b', '<p>a `b</p>'],
  ['code keeps markup', '`*not* [x](https://e.x/)`', '<p><code>*not* [x](https://e.x/)</code></p>'],
  ['fenced code', '```python\nif a < b:\n    pass\n```', '<pre><code class="language-python">if a &lt; b:\n    pass\n</code></pre>'],
  ['tilde fence, unclosed', '~~~\ncode\n', '<pre><code>code\n\n</code></pre>'],
  ['indented code', '    x = 1\n    y = 2\n\ntext', '<pre><code>x = 1\ny = 2\n</code></pre><p>text</p>'],
  ['bullet list', '- a\n- b\n* c', '<ul><li>a</li><li>b</li></ul><ul><li>c</li></ul>'],
  ['nested list', '- a\n  - b\n    - c\n- d', '<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li><li>d</li></ul>'],
  ['ordered list with start', '3. three\n4. four', '<ol start="3"><li>three</li><li>four</li></ol>'],
  ['loose list', '- a\n\n- b', '<ul><li><p>a</p></li><li><p>b</p></li></ul>'],
  ['item continued after a blank line is loose', '* a\n\n  b\n* c', '<ul><li><p>a</p><p>b</p></li><li><p>c</p></li></ul>'],
  ['loose inner list, tight outer list', '- a\n  - b\n\n  - c\n- d', '<ul><li>a<ul><li><p>b</p></li><li><p>c</p></li></ul></li><li>d</li></ul>'],
  ['list item with code', '1. run:\n\n   ```sh\n   make\n   ```\n2. done', '<ol><li><p>run:</p><pre><code class="language-sh">make\n</code></pre></li><li><p>done</p></li></ol>'],
  ['list interrupts paragraph', 'text\n- item', '<p>text</p><ul><li>item</li></ul>'],
  ['numbered line in paragraph', 'in 2024\n2. no list', '<p>in 2024\n2. no list</p>'],
  ['blockquote', '> a\n> > b\nlazy', '<blockquote><p>a</p><blockquote><p>b\nlazy</p></blockquote></blockquote>'],
  ['thematic breaks', 'a\n\n***\n- - -\n___', '<p>a</p><hr><hr><hr>'],
  ['hard breaks', 'a  \nb\\\nc', '<p>a<br>b<br>c</p>'],
  ['link', '[site](https://example.com/a?b=1 "The title")', `<p>${A('https://example.com/a?b=1', 'site', ' title="The title"')}</p>`],
  ['link with parentheses', '[w](https://en.wikipedia.org/wiki/C_(language))', `<p>${A('https://en.wikipedia.org/wiki/C_(language)', 'w')}</p>`],
  ['link text with emphasis', '[*a* `b`](http://e.x)', `<p>${A('http://e.x/', '<em>a</em> <code>b</code>')}</p>`],
  ['non-http link is text', '[x](ftp://e.x/f)', '<p>[x](ftp://e.x/f)</p>'],
  ['autolink', '<https://e.x/p>', `<p>${A('https://e.x/p', 'https://e.x/p')}</p>`],
  ['bare url', 'see https://e.x/a, then (http://e.x/b).', `<p>see ${A('https://e.x/a', 'https://e.x/a')}, then (${A('http://e.x/b', 'http://e.x/b')}).</p>`],
  ['url inside word is text', 'xhttps://e.x', '<p>xhttps://e.x</p>'],
  ['image is a link', '![chart](https://e.x/c.png)', `<p>${A('https://e.x/c.png', '<span class="md-image-label">image</span> chart', ' class="md-image"')}</p>`],
  ['raw html is text', '<b>bold</b>', '<p>&lt;b&gt;bold&lt;/b&gt;</p>'],
  ['entities', '&copy; &#65; &#x42; &bogus;', '<p>\u00a9 A B &amp;bogus;</p>'],
  ['backslash escapes', '\\*not\\* \\[x\\]', '<p>*not* [x]</p>'],
  ['table', '| a | b |\n|:--|--:|\n| 1 | `\\|` |\n| 2 |', '<table><thead><tr><th class="md-align-left">a</th><th class="md-align-right">b</th></tr></thead><tbody><tr><td class="md-align-left">1</td><td class="md-align-right"><code>|</code></td></tr><tr><td class="md-align-left">2</td><td class="md-align-right"></td></tr></tbody></table>'],
  ['table needs a delimiter row', 'a | b\nc | d', '<p>a | b\nc | d</p>'],
  ['crlf', 'a\r\nb', '<p>a\nb</p>'],
  ['null byte', 'a\u0000b', '<p>a\ufffdb</p>'],
  ['bidi override shown', 'a\u202eb', '<p>a<span class="md-bidi" title="U+202E">[U+202E]</span>b</p>'],
];

for (const [name, input, html] of CASES) {
  test(`renders: ${name}`, () => assert.equal(render(input), html));
}

test('safeHref accepts only absolute http(s) URLs', () => {
  assert.equal(safeHref('https://e.x'), 'https://e.x/');
  assert.equal(safeHref(' \u0000HTTP://E.X/a b'), 'http://e.x/a%20b');
  assert.equal(safeHref('ht\ttp://e.x/'), 'http://e.x/');
  for (const bad of ['javascript:alert(1)', 'JAVASCRIPT:x', 'java\tscript:x', ' javascript:x', 'data:text/html,x',
    'vbscript:x', '//e.x', '/a', 'https:e.x', 'http:///', 'mailto:a@e.x', '', null, undefined, 42]) {
    assert.equal(safeHref(bad), null, String(bad));
  }
});

// ---------------------------------------------------------------- corpus

const ELEMENTS = new Set(['p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'em', 'strong', 'del', 'code', 'pre', 'ul', 'ol',
  'li', 'blockquote', 'a', 'br', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span']);
const ATTRIBUTES = new Set(['href', 'title', 'rel', 'target', 'class', 'start']);
const CLASS_RE = /^(md-(image|image-label|bidi|align-(left|right|center))|language-[A-Za-z0-9_+-]{1,32})$/;

// The allow-lists every rendering obeys, whatever the input.
function assertInert(frag, label) {
  for (const n of walk(frag)) {
    if (n.kind !== 'element') continue;
    assert.ok(ELEMENTS.has(n.tag), `${label}: element <${n.tag}>`);
    for (const [k, v] of n.attrs) {
      assert.ok(ATTRIBUTES.has(k), `${label}: attribute ${k} on <${n.tag}>`);
      if (k === 'class') assert.match(v, CLASS_RE, `${label}: class`);
      if (k === 'start') assert.ok(n.tag === 'ol' && /^[0-9]{1,9}$/.test(v), `${label}: start=${v}`);
      if (k === 'rel') assert.equal(v, 'noopener noreferrer nofollow', label);
      if (k === 'target') assert.equal(v, '_blank', label);
      if (k === 'href') {
        assert.equal(n.tag, 'a', `${label}: href on <${n.tag}>`);
        const u = new URL(v);
        assert.ok(u.protocol === 'http:' || u.protocol === 'https:', `${label}: href ${v}`);
        assert.equal(u.href, v, `${label}: href is the parser's serialization`);
      }
    }
    if (n.tag === 'a') {
      assert.ok(n.attrs.has('href') && n.attrs.has('rel') && n.attrs.has('target'), `${label}: bare <a>`);
    }
  }
}

const corpus = JSON.parse(readFileSync(join(here, 'xss_corpus.json'), 'utf8'));
const inputOf = (i) => (typeof i === 'string' ? i : (i.prefix || '') + i.repeat.repeat(i.times) + (i.suffix || ''));

test('the corpus is substantial and names its cases once', () => {
  assert.ok(corpus.cases.length >= 80);
  assert.equal(new Set(corpus.cases.map((c) => c.name)).size, corpus.cases.length);
});

for (const c of corpus.cases) {
  test(`xss corpus: ${c.name}`, () => {
    const input = inputOf(c.input);
    const frag = renderMarkdown(input, makeDoc());
    assertInert(frag, c.name);
    if (c.html !== undefined) assert.equal(toHtml(frag), c.html);
    if (c.text === 'input') assert.equal(textOf(frag), input);
    if (c.links !== undefined) assert.equal([...walk(frag)].filter((n) => n.tag === 'a').length, c.links);
    assert.ok(c.html !== undefined || c.text !== undefined, 'every case states its result');
  });
}

test('the renderer source builds DOM only through the allowed calls', () => {
  for (const f of ['markdown.js', 'format.js']) {
    const src = readFileSync(join(srcDir, f), 'utf8').replace(/^\s*\/\/.*$/gm, '');
    for (const banned of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'Function(',
      'DOMParser', 'createContextualFragment', '.style', 'setAttributeNS', 'import(']) {
      assert.ok(!src.includes(banned), `${f} uses ${banned}`);
    }
    // setAttribute only with literal names from the allow-list.
    for (const m of src.matchAll(/setAttribute\(\s*([^,]+),/g)) {
      assert.match(m[1], /^'(href|title|rel|target|class|start)'$/, `${f}: setAttribute(${m[1]}`);
    }
  }
});

// The step counter cannot see inside a regular expression, and V8's engine
// backtracks: /[ \t]+$/ retries from every position of a run of spaces, so
// 50,000 of them cost seconds (markdown.js's first version trimmed lines that
// way).  Every alternative that ends at $ must also start at ^.
test('no regular expression is anchored at $ alone', () => {
  for (const f of ['markdown.js', 'format.js']) {
    const src = readFileSync(join(srcDir, f), 'utf8').replace(/^\s*\/\/.*$/gm, '');
    const literals = [...src.matchAll(/(?<![\w)\]\s])\s*\/((?:\\.|\[(?:\\.|[^\]\\])*\]|[^/\\\n[])+)\/[dgimsuy]*/g)]
      .map((m) => m[1]);
    assert.ok(literals.length >= (f === 'markdown.js' ? 10 : 1), `${f}: regular expressions found`);
    for (const re of literals) {
      // Top-level alternatives (outside brackets and groups).
      const alts = [];
      let depth = 0;
      let cur = '';
      for (let i = 0; i < re.length; i++) {
        const c = re[i];
        if (c === '\\') { cur += c + re[++i]; continue; }
        if (c === '[') { const j = re.indexOf(']', i + 1); cur += re.slice(i, j + 1); i = j; continue; }
        if (c === '(') depth++;
        if (c === ')') depth--;
        if (c === '|' && depth === 0) { alts.push(cur); cur = ''; continue; }
        cur += c;
      }
      alts.push(cur);
      for (const alt of alts) {
        if (/(^|[^\\])\$$/.test(alt)) assert.ok(alt.startsWith('^'), `${f}: /${re}/ ends at $ without ^`);
      }
    }
  }
});

// ------------------------------------------------------- linear-time bounds

// A document that only counts: hostile inputs make millions of nodes and the
// strict fake's proxies would dominate the run.
function countingDoc() {
  const counts = { nodes: 0, maxDepth: 0 };
  const node = () => {
    counts.nodes++;
    const n = {
      depth: 0,
      setAttribute() {},
      appendChild(child) {
        child.depth = this.depth + 1;  // children are appended before their own children
        return child;
      },
    };
    return n;
  };
  return { counts, createElement: node, createTextNode: node, createDocumentFragment: node };
}

// Output depth, measured on the strict fake for smaller inputs.
function depthOf(frag) {
  let max = 0;
  const stack = [[frag, 0]];
  while (stack.length) {
    const [n, d] = stack.pop();
    if (d > max) max = d;
    for (const c of n.children) stack.push([c, d + 1]);
  }
  return max;
}

const MB = 1 << 20;
const fill = (unit, n) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
const STEPS_PER_CHAR = 12;

// The brief's four, at 1 MB, then cmark's pathological shapes, smaller.
const HOSTILE = [
  ['1 MB of *', fill('*', MB)],
  ['1 MB of [', fill('[', MB)],
  ['1 MB of backticks', fill('`', MB)],
  ['1 MB of nested >', fill('>', MB)],
  ['1 MB of > lines', fill('> > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > x\n', MB)],
  ['single backticks', '`a'.repeat(100000)],
  ['backtick runs of every length', Array.from({ length: 1400 }, (_, i) => 'e' + '`'.repeat(i)).join('')],
  ['nested strong/emph', '*a **a '.repeat(20000) + 'b' + ' a** a*'.repeat(20000)],
  ['emphasis closers without openers', 'a_ '.repeat(80000)],
  ['emphasis openers without closers', '_a '.repeat(80000)],
  ['openers and closers, multiples of 3', 'a**b' + 'c* '.repeat(80000)],
  ['link openers and emphasis closers', '[ a_'.repeat(60000)],
  ['mismatched openers and closers', '*a_ '.repeat(60000)],
  ['nested brackets', '['.repeat(120000) + 'a' + ']'.repeat(120000)],
  ['unclosed links <', '[a](<b'.repeat(8000)],
  ['unclosed links', '[a](b'.repeat(8000)],
  ['unclosed link titles', '[a](b "'.repeat(8000)],
  ['unbalanced link parentheses', '[a](('.repeat(8000)],
  ['link closers without openers', 'a]'.repeat(120000)],
  ['deeply nested lists', Array.from({ length: 1500 }, (_, i) => ' '.repeat(i) + '* a').join('\n')],
  ['one line of nested list markers', '- '.repeat(200000) + 'x'],
  ['bare url starts', 'http://'.repeat(60000)],
  ['autolink starts', '<http:'.repeat(60000)],
  ['entities', '&#1'.repeat(100000)],
  ['trailing spaces before newlines', ('a' + ' '.repeat(50000) + 'b\n').repeat(4)],
  ['heading with spaces and hashes', '# a' + ' '.repeat(100000) + 'b #'],
  ['encoded spaces in a link destination', '[x](https://a' + '&#32;'.repeat(20000) + 'b)'],
  ['table rows', 'a|b\n-|-\n' + '|x|y\n'.repeat(60000)],
];

for (const [name, input] of HOSTILE) {
  test(`linear work: ${name}`, () => {
    const stats = {};
    const doc = countingDoc();
    renderMarkdown(input, doc, stats);
    assert.ok(stats.steps <= STEPS_PER_CHAR * input.length + 1000,
      `${stats.steps} steps for ${input.length} characters`);
    assert.ok(doc.counts.nodes <= 2 * input.length + 10, `${doc.counts.nodes} nodes`);
  });
}

test('work grows linearly: 4x the input, at most ~4x the steps', () => {
  for (const unit of ['*a **a ', '[a](b', 'a_ ', '[ a_', '> - ', '`a``']) {
    const steps = [1, 4].map((k) => {
      const stats = {};
      renderMarkdown(unit.repeat(10000 * k), countingDoc(), stats);
      return stats.steps;
    });
    assert.ok(steps[1] <= 4.4 * steps[0], `${JSON.stringify(unit)}: ${steps[0]} -> ${steps[1]}`);
  }
});

test('nesting is capped: deep input gives a shallow tree', () => {
  for (const input of ['>'.repeat(5000) + ' x', '- '.repeat(5000) + 'x', '*'.repeat(3000) + 'a' + '*'.repeat(3000),
    '*a _b '.repeat(3000) + ' b_ a*'.repeat(3000)]) {
    const frag = renderMarkdown(input, makeDoc());
    assert.ok(depthOf(frag) <= 80, `depth ${depthOf(frag)}`);
    assertInert(frag, 'deep');
  }
});
