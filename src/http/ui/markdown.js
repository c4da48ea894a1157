// Stand-in until the markdown renderer lands (branch `markdown` writes the
// real one under this name): the text as one text node, which is always
// safe and never interprets anything.
export function renderMarkdown(text, doc) {
  const frag = doc.createDocumentFragment();
  frag.appendChild(doc.createTextNode(String(text)));
  return frag;
}
