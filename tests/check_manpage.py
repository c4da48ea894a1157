#!/usr/bin/env python3
"""Keeps the man page (docs/sandbox-journal.1) in step with --help.

usage: check_manpage.py BINARY MANPAGE

Walks the command tree the way a user would: 'sandbox-journal help' lists
the commands, each '<command> --help' lists its subcommands under a
'commands:' heading ('agents commands:' for a group of 'api'), and so on down.
Each help text is filed under its command path, the lowercase words that
follow 'sandbox-journal' on its usage line ('api sessions create',
'completion bash').  The man page's command sections are its .SS headings
after '.SH COMMANDS', filed under a path taken the same way.

Fails when
  - a command or subcommand has no section of its own;
  - an option a help text prints (--long, and '-s, --long' pairs) appears
    neither in that command's section nor in an enclosing command's section
    (the top of the page, before COMMANDS, encloses everything);
  - the page has a command section no help text knows, or names a --long
    option that no help text prints.
"""
import re
import subprocess
import sys

LONG = re.compile(r'(?<![\w-])--[a-z][a-z0-9-]*')
PAIR = re.compile(r'^\s+(-[A-Za-z]), (--[a-z][a-z0-9-]*)', re.M)
ENTRY = re.compile(r'^  ([a-z][a-z0-9-]*)(?:\s|$)')
WORD = re.compile(r'^[a-z][a-z0-9-]*$')


def command_path(synopsis):
    """'sandbox-journal api sessions create ID ...' -> 'api sessions create'."""
    words = synopsis.split()
    if 'sandbox-journal' not in words:
        return None
    path = []
    for w in words[words.index('sandbox-journal') + 1:]:
        if not WORD.match(w):
            break
        path.append(w)
    return ' '.join(path)


def run_help(binary, args):
    p = subprocess.run([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=30)
    if p.returncode != 0:
        sys.exit('%s %s: exit %d\n%s' % (binary, ' '.join(args), p.returncode, p.stdout))
    return p.stdout


def subcommands(text):
    """[(group, name)] listed under '<group> commands:' or 'commands:' headings."""
    out, group = [], None
    for line in text.splitlines():
        m = re.match(r'^([a-z]+ )?commands:$', line)
        if m:
            group = (m.group(1) or '').strip()
            continue
        if group is None:
            continue
        e = ENTRY.match(line)
        if e:
            out.append((group, e.group(1)))
        elif line and not line.startswith(' '):
            group = None  # the next heading ends the list
    return out


def walk(binary):
    """{command path: help text} for every command with a --help of its own,
    and the set of every command path (also 'help' and 'version')."""
    helps, paths = {}, set()
    top = run_help(binary, ['help'])
    helps[''] = top
    todo = []
    for _, name in subcommands(top):
        paths.add(name)
        if name not in ('help', 'version'):
            todo.append([name])
    while todo:
        args = todo.pop()
        text = run_help(binary, args + ['--help'])
        usage = next((l for l in text.splitlines() if l.startswith('usage:')), None)
        if usage is None:
            sys.exit('%s --help prints no usage line' % ' '.join(args))
        key = command_path(usage)
        if not key.startswith(' '.join(args)):
            sys.exit("usage line of '%s --help' names '%s'" % (' '.join(args), key))
        helps[key] = text
        paths.add(key)
        for group, name in subcommands(text):
            todo.append(args + ([group] if group else []) + [name])
    return helps, paths


FONT_MACROS = {'.B', '.I', '.BR', '.RB', '.BI', '.IB', '.IR', '.RI'}


def troff_text(line):
    """The text a troff line shows, near enough to search for options."""
    head = line.split(None, 1)
    if head and head[0] in FONT_MACROS:
        args = [a[1:-1] if a.startswith('"') else a
                for a in re.findall(r'"[^"]*"|\S+', head[1] if len(head) > 1 else '')]
        # .B and .I join their words with blanks, the alternating ones without.
        line = (' ' if head[0] in ('.B', '.I') else '').join(args)
    line = re.sub(r'\\f(\[[^]]*\]|\(..|.)', '', line)
    line = line.replace('\\-', '-').replace('\\e', '\\').replace('\\&', '')
    line = re.sub(r'\\\(..', ' ', line)
    return line


def man_sections(page):
    """{command path: text} for the COMMANDS section's .SS headings; '' is
    the top of the page before COMMANDS."""
    sections, key, in_commands, seen_commands = {'': ''}, '', False, False
    for raw in page.splitlines():
        line = troff_text(raw)
        if raw.startswith('.SH'):
            in_commands = raw.split(None, 1)[1].strip('" ') == 'COMMANDS'
            seen_commands |= in_commands
            key = None if seen_commands else ''
            continue
        if raw.startswith('.SS') and in_commands:
            key = command_path(line[3:].replace('"', ' '))
            if key is None:
                sys.exit('man page: command heading without sandbox-journal: %s' % raw)
            if key in sections:
                sys.exit('man page: two sections for %r' % key)
            sections[key] = ''
            continue
        if key is not None:
            sections[key] += line + '\n'
    return sections


def main():
    binary, manpage = sys.argv[1], sys.argv[2]
    with open(manpage, encoding='utf-8') as f:
        page = f.read()
    helps, paths = walk(binary)
    sections = man_sections(page)
    problems = []

    for path in sorted(paths):
        if not any(k == path or k.startswith(path + ' ') for k in sections if k):
            problems.append("command '%s' has no section in the man page" % path)

    def enclosing(path):
        """The sections of `path`, the commands around it and those under it
        (a command's examples use its subcommands' options)."""
        words = path.split()
        around = [sections.get(' '.join(words[:n]), '') for n in range(len(words), -1, -1)]
        under = [t for k, t in sections.items() if path and k.startswith(path + ' ')]
        return around + under

    printed = set()
    for path, text in sorted(helps.items()):
        texts = enclosing(path)
        options = set(LONG.findall(text))
        printed |= options
        for opt in sorted(options):
            if not any(re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(opt), t) for t in texts):
                problems.append("'%s' prints %s, missing from its man page section"
                                % (('sandbox-journal ' + path).strip(), opt))
        for short, long_ in PAIR.findall(text):
            pair = '%s, %s' % (short, long_)
            if not any(pair in t for t in texts):
                problems.append("'%s' prints '%s', missing from its man page section"
                                % (('sandbox-journal ' + path).strip(), pair))

    for key in sections:
        if key and key not in paths:
            problems.append("man page section '%s' is no command" % key)
    for opt in sorted(set(LONG.findall(troff_text(page))) - printed):
        problems.append('man page names %s, which no --help prints' % opt)

    for p in problems:
        print(p)
    if problems:
        return 1
    print('man page covers %d commands and %d options' % (len(paths), len(printed)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
