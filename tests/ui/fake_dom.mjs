// A tiny stand-in for `document`: the four calls the renderers may use and
// nothing else.  Any other property the renderer reaches for (innerHTML,
// insertAdjacentHTML, style, on* handlers, ...) throws, so using one fails
// the test instead of passing silently.

const ALLOWED_ELEMENT_METHODS = new Set(['setAttribute', 'appendChild']);

function strict(target, what) {
  return new Proxy(target, {
    get(t, key) {
      if (typeof key === 'symbol' || key in t) return t[key];
      throw new Error(`renderer used ${what}.${String(key)}`);
    },
    set(t, key, value) {
      if (key in t && !ALLOWED_ELEMENT_METHODS.has(key)) { t[key] = value; return true; }
      throw new Error(`renderer set ${what}.${String(key)}`);
    },
  });
}

export function makeDoc() {
  const counts = { elements: 0, texts: 0, appends: 0 };
  const makeNode = (kind, tag) => {
    const node = {
      kind,            // 'element' | 'text' | 'fragment'
      tag,             // lower-case element name
      attrs: new Map(),
      children: [],
      parent: null,
      data: '',
      setAttribute(name, value) {
        if (kind !== 'element') throw new Error('setAttribute on ' + kind);
        this.attrs.set(String(name), String(value));
      },
      appendChild(child) {
        if (kind === 'text') throw new Error('appendChild on a text node');
        if (!child || !child.kind || child.kind === 'fragment') throw new Error('appendChild of a non-node');
        if (child.parent) throw new Error('node appended twice');
        child.parent = this;
        this.children.push(child);
        counts.appends++;
        return child;
      },
    };
    return strict(node, kind === 'element' ? '<' + tag + '>' : kind);
  };
  const doc = {
    counts,
    createElement(tag) {
      if (!/^[a-z][a-z0-9]*$/.test(tag)) throw new Error('bad element name ' + tag);
      counts.elements++;
      return makeNode('element', tag);
    },
    createTextNode(data) {
      counts.texts++;
      const t = makeNode('text');
      t.data = String(data);
      return t;
    },
    createDocumentFragment() { return makeNode('fragment'); },
  };
  return strict(doc, 'document');
}

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// The tree as HTML text, for comparing with expected strings.
export function toHtml(node) {
  if (node.kind === 'text') return esc(node.data);
  const inner = node.children.map(toHtml).join('');
  if (node.kind === 'fragment') return inner;
  const attrs = [...node.attrs].map(([k, v]) => ` ${k}="${esc(v)}"`).join('');
  if (node.tag === 'br' || node.tag === 'hr') return `<${node.tag}${attrs}>`;
  return `<${node.tag}${attrs}>${inner}</${node.tag}>`;
}

// Every node below root, iteratively (trees may be deep).
export function* walk(root) {
  const stack = [root];
  while (stack.length) {
    const n = stack.pop();
    yield n;
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
}

export function textOf(root) {
  let s = '';
  for (const n of walk(root)) if (n.kind === 'text') s += n.data;
  return s;
}
