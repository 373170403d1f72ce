# SPDX-License-Identifier: GPL-2.0
"""A parser and checker for the subset of syzlang, syzkaller's system call
description language, that tools/testing/syzkaller/vduse.txt uses.

syzkaller itself cannot be built here, so this module does what its compiler
does for that subset: it parses the file (rejecting what it does not
understand), checks that every name is defined once and every reference
resolves, checks the arguments of the builtin types, and lays out structs and
unions the way syzkaller does for a given architecture (natural alignment,
int64 aligned to 4 bytes on 386, unions as large as their largest option, no
tail padding after a variable-length last field).

Supported: include, incdir, define, resource, type aliases (no templates),
integer and string flags, structs and unions with attributes, field
direction attributes, syscalls with return types and attributes.
"""

import re

BUILTIN_INTS = {"int8": 1, "int16": 2, "int32": 4, "int64": 8,
                "int16be": 2, "int32be": 4, "int64be": 8}
BUILTIN_TYPES = set(BUILTIN_INTS) | {
    "intptr", "const", "flags", "len", "bytesize", "bytesize2", "bytesize4",
    "bytesize8", "bitsize", "offsetof", "ptr", "ptr64", "array", "string",
    "stringnoz", "vma", "vma64", "proc", "void", "fileoff", "buffer",
    "filename", "bool8", "bool16", "bool32", "bool64", "boolptr", "text",
    "fmt", "glob", "optional", "compressed_image", "csum"}
# Builtins this checker can lay out and check; the others are rejected.
SUPPORTED_TYPES = set(BUILTIN_INTS) | {
    "intptr", "const", "flags", "len", "bytesize", "bytesize2", "bytesize4",
    "bytesize8", "bitsize", "ptr", "ptr64", "array", "string", "stringnoz",
    "vma", "vma64", "proc", "void", "fileoff", "bool8", "bool16", "bool32",
    "bool64", "boolptr"}
LEN_TYPES = {"len", "bytesize", "bytesize2", "bytesize4", "bytesize8",
             "bitsize"}
DIRECTIONS = {"in", "out", "inout"}
FIELD_ATTRS = {"in", "out", "inout", "out_overlay"}
CALL_ATTRS = {"disabled", "timeout", "prog_timeout", "ignore_return",
              "breaks_returns", "no_generate", "no_minimize", "remote_cover",
              "automatic_helper", "snapshot", "kfuzz_test"}
STRUCT_ATTRS = {"packed", "align", "size"}
UNION_ATTRS = {"varlen", "size"}
KEYWORDS = {"include", "incdir", "define", "resource", "type"}

# Names that syzkaller's own sys/linux/*.txt define and that descriptions
# may use without defining them: kind and, for resources, the base.
EXTERNAL = {
    "fd": ("resource", "int32"),
    "fd_event": ("resource", "fd"),
    "fd_memfd": ("resource", "fd"),
    "open_flags": ("flags", None),
    "mmap_prot": ("flags", None),
    "mmap_flags": ("flags", None),
}
# System calls whose number the .const file carries (syz_* calls are
# pseudo-syscalls of the executor and have none), with their argument counts.
SYSCALL_ARGS = {"ioctl": (2, 3), "openat": (3, 4), "read": (3, 3),
                "write": (3, 3), "mmap": (6, 6), "close": (1, 1)}
PSEUDO_ARGS = {"syz_open_dev": (3, 3)}


class SyzError(Exception):
    pass


class Diag:
    """Problems found, each with a category and a position."""

    def __init__(self, path):
        self.path = path
        self.items = []

    def add(self, cat, line, msg):
        self.items.append((cat, line, msg))

    def of(self, *cats):
        return ["%s:%s: %s" % (self.path, ln, m)
                for c, ln, m in self.items if c in cats]


# --------------------------------------------------------------------------
# Lexer and parser

TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\$[A-Za-z0-9_]+)?)
  | (?P<int>0[xX][0-9a-fA-F]+|[0-9]+)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<str>"(?:[^"\\]|\\.)*"|`[0-9a-fA-F]*`)
  | (?P<punct>[()\[\]{},:=\-])
""", re.X)


class Tok:
    __slots__ = ("kind", "text", "col")

    def __init__(self, kind, text, col):
        self.kind, self.text, self.col = kind, text, col

    def __repr__(self):
        return "%s(%r)" % (self.kind, self.text)


def strip_comment(line):
    """The line without its # comment (a # inside a string stays)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == "\\":
                continue
            if c == quote:
                quote = None
        elif c in "\"`'":
            quote = c
        elif c == "#":
            return line[:i]
    return line


def tokenize(text, lineno):
    toks = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise SyzError("line %d: unexpected character %r" %
                           (lineno, text[pos]))
        kind = m.lastgroup
        if kind != "ws":
            toks.append(Tok(kind, m.group(kind), pos))
        pos = m.end()
    return toks


class Node:
    """A type expression, or one of its arguments.

    kind is "ident" (a name with optional [args] and a :N bitfield),
    "int", "str" or "char"; colon holds what follows a ':' (ranges, paths).
    """
    __slots__ = ("kind", "value", "args", "colon", "line", "bits", "neg")

    def __init__(self, kind, value, line):
        self.kind, self.value, self.line = kind, value, line
        self.args = []
        self.colon = []
        self.bits = None
        self.neg = False

    def __repr__(self):
        s = ("-" if self.neg else "") + str(self.value)
        if self.args:
            s += "[" + ", ".join(map(repr, self.args)) + "]"
        for c in self.colon:
            s += ":" + repr(c)
        return s


class TokStream:
    def __init__(self, toks, line):
        self.toks, self.i, self.line = toks, 0, line

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self):
        t = self.peek()
        if t is None:
            raise SyzError("line %d: unexpected end of line" % self.line)
        self.i += 1
        return t

    def expect(self, text):
        t = self.next()
        if t.text != text:
            raise SyzError("line %d: expected %r, got %r" %
                           (self.line, text, t.text))
        return t

    def at(self, text):
        t = self.peek()
        return t is not None and t.text == text

    def done(self):
        return self.i >= len(self.toks)

    def end(self):
        if not self.done():
            raise SyzError("line %d: unexpected %r" %
                           (self.line, self.peek().text))


def parse_value(ts):
    """One type argument: a type, a number, a string or a char, optionally
    followed by :value (a range, or a path for len)."""
    t = ts.next()
    if t.text == "-":
        n = ts.next()
        if n.kind != "int":
            raise SyzError("line %d: expected a number after '-'" % ts.line)
        node = Node("int", int(n.text, 0), ts.line)
        node.neg = True
    elif t.kind == "int":
        node = Node("int", int(t.text, 0), ts.line)
    elif t.kind == "char":
        node = Node("char", t.text[1:-1], ts.line)
    elif t.kind == "str":
        node = Node("str", t.text[1:-1], ts.line)
    elif t.kind == "name":
        ts.i -= 1
        return parse_type(ts, allow_colon=True)
    else:
        raise SyzError("line %d: unexpected %r in a type" % (ts.line, t.text))
    while ts.at(":"):
        ts.next()
        node.colon.append(parse_value(ts))
    return node


def parse_type(ts, allow_colon=False):
    t = ts.next()
    if t.kind != "name" or "$" in t.text:
        raise SyzError("line %d: expected a type, got %r" % (ts.line, t.text))
    node = Node("ident", t.text, ts.line)
    if ts.at("["):
        ts.next()
        while True:
            node.args.append(parse_value(ts))
            if ts.at(","):
                ts.next()
                continue
            ts.expect("]")
            break
    if ts.at(":"):
        if allow_colon:
            while ts.at(":"):
                ts.next()
                node.colon.append(parse_value(ts))
        else:
            ts.next()
            n = ts.next()
            if n.kind != "int":
                raise SyzError("line %d: expected a bitfield width" % ts.line)
            node.bits = int(n.text, 0)
    return node


def parse_attr_list(ts, close):
    attrs = []
    while True:
        attrs.append(parse_type(ts))
        if ts.at(","):
            ts.next()
            continue
        ts.expect(close)
        return attrs


class Field:
    def __init__(self, name, typ, attrs, line):
        self.name, self.type, self.attrs, self.line = name, typ, attrs, line

    def direction(self):
        for a in self.attrs:
            if a.value in DIRECTIONS:
                return a.value
        return None


class Struct:
    def __init__(self, name, is_union, line):
        self.name, self.is_union, self.line = name, is_union, line
        self.fields = []
        self.attrs = []

    def attr(self, name):
        for a in self.attrs:
            if a.value == name:
                return a
        return None


class Syscall:
    def __init__(self, name, line):
        self.name, self.line = name, line
        self.base = name.split("$", 1)[0]
        self.args = []
        self.ret = None
        self.attrs = []


class Description:
    def __init__(self, path):
        self.path = path
        self.includes = []
        self.incdirs = []
        self.defines = {}       # name -> (C expression, line)
        self.resources = {}     # name -> (base Node, [values], line)
        self.aliases = {}       # name -> (Node, line)
        self.flags = {}         # name -> ([values], is_str, line)
        self.structs = {}       # name -> Struct
        self.syscalls = {}      # name -> Syscall
        self.order = []         # (kind, name) in file order
        self.dups = []          # (line, message)


def parse(text, path="vduse.txt"):
    """Parse a description; raises SyzError on the first syntax error."""
    desc = Description(path)
    lines = text.split("\n")
    i = 0

    def record(kind, table, name, value, line):
        if name in table:
            desc.dups.append((line, "%s %s is defined twice (first on line %d)"
                              % (kind, name, line_of(table[name]))))
            return
        table[name] = value
        desc.order.append((kind, name))

    while i < len(lines):
        lineno = i + 1
        raw = lines[i]
        i += 1
        line = strip_comment(raw).rstrip()
        if not line.strip():
            continue
        if line[0] in " \t":
            raise SyzError("line %d: unexpected indentation" % lineno)
        m = re.match(r"^(include|incdir)\s+<([^<>\s]+)>$", line)
        if m:
            (desc.includes if m.group(1) == "include"
             else desc.incdirs).append(m.group(2))
            continue
        if re.match(r"^(include|incdir)\b", line):
            raise SyzError("line %d: malformed %s" % (lineno, line.split()[0]))
        m = re.match(r"^define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(\S.*)$", line)
        if m:
            record("define", desc.defines, m.group(1),
                   (m.group(2).strip(), lineno), lineno)
            continue
        if re.match(r"^define\b", line):
            raise SyzError("line %d: malformed define" % lineno)
        ts = TokStream(tokenize(line, lineno), lineno)
        first = ts.next()
        if first.text == "resource":
            name = ts.next()
            if name.kind != "name" or "$" in name.text:
                raise SyzError("line %d: bad resource name" % lineno)
            ts.expect("[")
            base = parse_type(ts)
            ts.expect("]")
            values = []
            if ts.at(":"):
                ts.next()
                while True:
                    values.append(parse_value(ts))
                    if ts.at(","):
                        ts.next()
                        continue
                    break
            ts.end()
            record("resource", desc.resources, name.text,
                   (base, values, lineno), lineno)
            continue
        if first.text == "type":
            name = ts.next()
            if name.kind != "name" or "$" in name.text:
                raise SyzError("line %d: bad type name" % lineno)
            if ts.at("["):
                raise SyzError("line %d: type templates are not supported by "
                               "this checker" % lineno)
            typ = parse_type(ts)
            ts.end()
            record("type", desc.aliases, name.text, (typ, lineno), lineno)
            continue
        if first.kind != "name":
            raise SyzError("line %d: unexpected %r" % (lineno, first.text))
        nxt = ts.peek()
        if nxt is not None and nxt.text == "=":
            if "$" in first.text:
                raise SyzError("line %d: bad flags name" % lineno)
            ts.next()
            values = []
            is_str = None
            while True:
                v = parse_value(ts)
                if v.colon or v.args:
                    raise SyzError("line %d: bad flags value" % lineno)
                kind_str = v.kind == "str"
                if is_str is None:
                    is_str = kind_str
                elif is_str != kind_str:
                    raise SyzError("line %d: flags mix strings and integers"
                                   % lineno)
                values.append(v)
                if ts.at(","):
                    ts.next()
                    continue
                break
            ts.end()
            record("flags", desc.flags, first.text,
                   (values, bool(is_str), lineno), lineno)
            continue
        if nxt is not None and nxt.text in ("{", "[") and ts.peek(1) is None:
            is_union = nxt.text == "["
            close = "]" if is_union else "}"
            if "$" in first.text:
                raise SyzError("line %d: bad struct name" % lineno)
            st = Struct(first.text, is_union, lineno)
            while True:
                if i >= len(lines):
                    raise SyzError("line %d: %s %s is not closed" %
                                   (lineno, "union" if is_union else "struct",
                                    first.text))
                fl = strip_comment(lines[i]).rstrip()
                flno = i + 1
                i += 1
                if not fl.strip():
                    continue
                fts = TokStream(tokenize(fl, flno), flno)
                t0 = fts.peek()
                if t0.text == close and fl[0] not in " \t":
                    fts.next()
                    if fts.at("["):
                        fts.next()
                        st.attrs = parse_attr_list(fts, "]")
                    fts.end()
                    break
                if fl[0] not in " \t":
                    raise SyzError("line %d: field %r is not indented (is a "
                                   "%r missing?)" % (flno, fl.strip(), close))
                fname = fts.next()
                if fname.kind != "name" or "$" in fname.text:
                    raise SyzError("line %d: bad field name %r" %
                                   (flno, fname.text))
                ftype = parse_type(fts)
                fattrs = []
                if fts.at("("):
                    fts.next()
                    fattrs = parse_attr_list(fts, ")")
                fts.end()
                st.fields.append(Field(fname.text, ftype, fattrs, flno))
            record("union" if is_union else "struct", desc.structs,
                   st.name, st, lineno)
            continue
        if nxt is not None and nxt.text == "(":
            call = Syscall(first.text, lineno)
            ts.next()
            if not ts.at(")"):
                while True:
                    an = ts.next()
                    if an.kind != "name" or "$" in an.text:
                        raise SyzError("line %d: bad argument name %r" %
                                       (lineno, an.text))
                    call.args.append(Field(an.text, parse_type(ts), [],
                                           lineno))
                    if ts.at(","):
                        ts.next()
                        continue
                    break
            ts.expect(")")
            if not ts.done() and ts.peek().kind == "name":
                call.ret = parse_type(ts)
            if ts.at("("):
                ts.next()
                call.attrs = parse_attr_list(ts, ")")
            ts.end()
            record("syscall", desc.syscalls, call.name, call, lineno)
            continue
        raise SyzError("line %d: cannot parse %r" % (lineno, line.strip()))
    return desc


def line_of(entry):
    if isinstance(entry, (Struct, Syscall)):
        return entry.line
    return entry[-1]


# --------------------------------------------------------------------------
# Semantic checks

class Checker:
    """Name resolution and builtin-type checks of a parsed description.

    consts is the set of constant names known from the .const file; a name
    used as a number that is neither there nor a define is reported.
    """

    def __init__(self, desc, consts):
        self.d = desc
        self.consts = set(consts)
        self.diag = Diag(desc.path)
        self.used_consts = {}   # name -> first line
        self.produced = set()
        self.consumed = set()

    def err(self, cat, line, msg):
        self.diag.add(cat, line, msg)

    # -- names ----------------------------------------------------------

    def check_names(self):
        d = self.d
        for line, msg in d.dups:
            self.err("names", line, msg)
        types = {}
        for kind, table in (("resource", d.resources), ("type", d.aliases),
                            ("struct", d.structs)):
            for name, v in table.items():
                line = line_of(v)
                if name in BUILTIN_TYPES or name in KEYWORDS:
                    self.err("names", line, "%s %s redefines a builtin" %
                             (kind, name))
                if name in EXTERNAL:
                    self.err("names", line, "%s %s redefines syzkaller's %s"
                             % (kind, name, name))
                if name in types:
                    self.err("names", line, "%s %s clashes with %s on line %d"
                             % (kind, name, types[name][0], types[name][1]))
                types[name] = (kind, line)
        for name, v in d.flags.items():
            if name in EXTERNAL:
                self.err("names", v[2], "flags %s redefines syzkaller's %s" %
                         (name, name))
        for name, (expr, line) in d.defines.items():
            if name in types or name in d.flags:
                self.err("names", line, "define %s clashes with a type or "
                         "flags of the same name" % name)
        for st in d.structs.values():
            seen = {}
            for f in st.fields:
                if f.name in seen:
                    self.err("names", f.line, "field %s of %s is defined "
                             "twice (first on line %d)" %
                             (f.name, st.name, seen[f.name]))
                seen[f.name] = f.line
        for call in d.syscalls.values():
            seen = set()
            for a in call.args:
                if a.name in seen:
                    self.err("names", call.line, "argument %s of %s is "
                             "defined twice" % (a.name, call.name))
                seen.add(a.name)

    # -- references -----------------------------------------------------

    def use_const(self, node):
        """node is a number or a constant name; returns True if valid."""
        if node.kind in ("int", "char"):
            return True
        if node.kind != "ident" or node.args or node.bits is not None:
            self.err("semantic", node.line, "expected a number or a "
                     "constant, got %r" % node)
            return False
        self.used_consts.setdefault(node.value, node.line)
        if node.value not in self.consts and node.value not in self.d.defines:
            self.err("undefined", node.line, "constant %s is not defined "
                     "(neither in the .const file nor by a define)" %
                     node.value)
            return False
        return True

    def resource_kind(self, name):
        if name in self.d.resources:
            return "resource"
        if name in EXTERNAL and EXTERNAL[name][0] == "resource":
            return "resource"
        return None

    def flags_kind(self, name):
        if name in self.d.flags:
            return "str" if self.d.flags[name][1] else "int"
        if name in EXTERNAL and EXTERNAL[name][0] == "flags":
            return "int"
        return None

    def check_int_base(self, node, what):
        if node.kind != "ident" or node.value not in BUILTIN_INTS and \
                node.value != "intptr" or node.args:
            self.err("semantic", node.line, "%s needs an integer base type "
                     "(int8..int64, intptr), got %r" % (what, node))

    def check_type(self, node, ctx, siblings=(), direction="in"):
        """ctx: "arg", "ret", "field" (struct or union) or "elem" (ptr or
        array element); siblings: names a len may refer to."""
        if node.kind != "ident":
            self.err("semantic", node.line, "expected a type, got %r" % node)
            return
        name, args = node.value, node.args
        needs_base = ctx in ("field", "elem")
        if node.bits is not None:
            if ctx != "field" or name not in BUILTIN_INTS:
                self.err("semantic", node.line, "bitfields are only allowed "
                         "on integer fields")
            else:
                self.err("semantic", node.line, "bitfields are not supported "
                         "by this checker")
        opt = [a for a in args if a.kind == "ident" and a.value == "opt"
               and not a.args]
        if opt:
            args = [a for a in args if a not in opt]
        if name in self.d.aliases:
            if args:
                self.err("semantic", node.line, "type alias %s takes no "
                         "arguments" % name)
            return self.check_type(self.d.aliases[name][0], ctx, siblings,
                                   direction)
        if self.resource_kind(name):
            if args:
                self.err("semantic", node.line, "resource %s takes no "
                         "arguments" % name)
            # Uses behind pointers are counted by check_directions().
            if name in self.d.resources and ctx == "ret":
                self.produced.add(name)
            return
        if name in self.d.structs:
            if args:
                self.err("semantic", node.line, "%s takes no arguments" %
                         name)
            if ctx in ("arg", "ret"):
                self.err("semantic", node.line, "struct %s cannot be a "
                         "syscall argument (use ptr)" % name)
            return
        if name in BUILTIN_TYPES and name not in SUPPORTED_TYPES:
            self.err("semantic", node.line, "builtin %s is not supported by "
                     "this checker" % name)
            return
        if name not in BUILTIN_TYPES:
            self.err("undefined", node.line, "type %s is not defined" % name)
            return
        if opt and name not in ("ptr", "ptr64", "vma", "vma64"):
            self.err("semantic", node.line, "%s cannot be opt" % name)
        if ctx == "ret" and name not in self.d.resources:
            self.err("semantic", node.line, "a syscall can only return a "
                     "resource")
        if name in BUILTIN_INTS or name == "intptr":
            if len(args) > 2:
                self.err("semantic", node.line, "too many arguments to %s" %
                         name)
            if args:
                a = args[0]
                if a.kind == "ident" and self.flags_kind(a.value):
                    if len(args) > 1:
                        self.err("semantic", node.line, "%s[flags] takes no "
                                 "alignment" % name)
                else:
                    self.use_const(a)
                    for c in a.colon:
                        self.use_const(c)
                    if len(a.colon) > 1:
                        self.err("semantic", node.line, "bad range %r" % a)
                    if len(args) > 1:
                        if not a.colon:
                            self.err("semantic", node.line, "alignment needs "
                                     "a range")
                        self.use_const(args[1])
            return
        if name in ("bool8", "bool16", "bool32", "bool64", "boolptr"):
            if args:
                self.err("semantic", node.line, "%s takes no arguments" % name)
            return
        if name == "const":
            if not 1 <= len(args) <= 2:
                self.err("semantic", node.line, "const needs a value and "
                         "(in structs and pointers) a base type")
                return
            self.use_const(args[0])
            if len(args) == 2:
                self.check_int_base(args[1], "const")
            elif needs_base:
                self.err("semantic", node.line, "const in a struct or "
                         "pointer needs a base type")
            return
        if name == "flags":
            if not 1 <= len(args) <= 2:
                self.err("semantic", node.line, "flags needs a flags name and "
                         "(in structs and pointers) a base type")
                return
            f = args[0]
            if f.kind != "ident" or f.args:
                self.err("semantic", node.line, "flags needs a flags name")
            elif self.flags_kind(f.value) is None:
                self.err("undefined", node.line, "flags %s are not defined" %
                         f.value)
            elif self.flags_kind(f.value) != "int":
                self.err("semantic", node.line, "flags %s are strings" %
                         f.value)
            if len(args) == 2:
                self.check_int_base(args[1], "flags")
            elif needs_base:
                self.err("semantic", node.line, "flags in a struct or pointer "
                         "needs a base type")
            return
        if name in LEN_TYPES:
            if not 1 <= len(args) <= 2:
                self.err("semantic", node.line, "%s needs a target and (in "
                         "structs) a base type" % name)
                return
            tgt = args[0]
            if tgt.kind != "ident" or tgt.args:
                self.err("semantic", node.line, "bad %s target %r" %
                         (name, tgt))
            elif tgt.value not in siblings and tgt.value != "parent" and \
                    tgt.value not in self.d.structs and tgt.value != "syscall":
                self.err("undefined", node.line, "%s target %s is not a "
                         "sibling field or argument" % (name, tgt.value))
            if len(args) == 2:
                self.check_int_base(args[1], name)
            elif needs_base:
                self.err("semantic", node.line, "%s in a struct needs a base "
                         "type" % name)
            return
        if name in ("ptr", "ptr64"):
            if len(args) != 2:
                self.err("semantic", node.line, "%s needs a direction and a "
                         "type" % name)
                return
            d = args[0]
            if d.kind != "ident" or d.value not in DIRECTIONS or d.args:
                self.err("semantic", node.line, "bad pointer direction %r "
                         "(in, out or inout)" % d)
                return
            self.check_type(args[1], "elem", (), d.value)
            return
        if name == "array":
            if not 1 <= len(args) <= 2:
                self.err("semantic", node.line, "array needs an element type "
                         "and an optional size")
                return
            self.check_type(args[0], "elem", (), direction)
            if len(args) == 2:
                s = args[1]
                self.use_const(s)
                for c in s.colon:
                    self.use_const(c)
            return
        if name in ("string", "stringnoz"):
            if len(args) > 2:
                self.err("semantic", node.line, "too many arguments to %s" %
                         name)
                return
            if args:
                a = args[0]
                if a.kind == "ident" and not a.args:
                    k = self.flags_kind(a.value)
                    if k is None:
                        self.err("undefined", node.line, "string flags %s are "
                                 "not defined" % a.value)
                    elif k != "str":
                        self.err("semantic", node.line, "flags %s are not "
                                 "strings" % a.value)
                elif a.kind != "str":
                    self.err("semantic", node.line, "string needs a literal "
                             "or string flags")
            if len(args) == 2:
                if name == "stringnoz":
                    self.err("semantic", node.line, "fixed-size string can't "
                             "be non-zero-terminated")
                self.use_const(args[1])
            return
        if name in ("vma", "vma64"):
            if len(args) > 1:
                self.err("semantic", node.line, "too many arguments to %s" %
                         name)
            for a in args:
                self.use_const(a)
                for c in a.colon:
                    self.use_const(c)
            return
        if name == "proc":
            if len(args) not in (2, 3):
                self.err("semantic", node.line, "proc needs start, per-proc "
                         "count and (in structs) a base type")
                return
            self.use_const(args[0])
            self.use_const(args[1])
            if len(args) == 3:
                self.check_int_base(args[2], "proc")
            return
        if name == "fileoff":
            if len(args) > 1:
                self.err("semantic", node.line, "too many arguments to "
                         "fileoff")
            elif args:
                self.check_int_base(args[0], "fileoff")
            return
        if name == "void":
            if args:
                self.err("semantic", node.line, "void takes no arguments")
            if ctx in ("arg", "ret"):
                self.err("semantic", node.line, "void cannot be an argument")
            return

    def check(self):
        d = self.d
        self.check_names()
        for name, (base, values, line) in d.resources.items():
            b = base.value
            if base.args or not (b in BUILTIN_INTS or b == "intptr" or
                                 self.resource_kind(b)):
                self.err("undefined", line, "resource %s has an unknown base "
                         "%r" % (name, base))
            for v in values:
                self.use_const(v)
        for name, (values, is_str, line) in d.flags.items():
            if not is_str:
                for v in values:
                    self.use_const(v)
        for name, (typ, line) in d.aliases.items():
            if not (typ.value in BUILTIN_INTS or typ.value in (
                    "intptr", "const", "flags", "proc", "ptr", "ptr64")):
                self.err("semantic", line, "type alias %s: syzkaller allows "
                         "only integers, const, flags, proc and ptr as alias "
                         "targets" % name)
            self.check_type(typ, "field")
        for st in d.structs.values():
            names = [f.name for f in st.fields]
            if not st.fields:
                self.err("semantic", st.line, "%s has no fields" % st.name)
            allowed = UNION_ATTRS if st.is_union else STRUCT_ATTRS
            for a in st.attrs:
                if a.value not in allowed:
                    self.err("semantic", st.line, "unknown attribute %s of %s"
                             % (a.value, st.name))
                elif a.value in ("align", "size"):
                    if len(a.args) != 1:
                        self.err("semantic", st.line, "%s needs one "
                                 "argument" % a.value)
                    else:
                        self.use_const(a.args[0])
                elif a.args:
                    self.err("semantic", st.line, "%s takes no arguments" %
                             a.value)
            for f in st.fields:
                for a in f.attrs:
                    if a.value not in FIELD_ATTRS or a.args:
                        self.err("semantic", f.line, "unsupported field "
                                 "attribute %r" % a)
                self.check_type(f.type, "field", names,
                                f.direction() or "inout")
        for call in d.syscalls.values():
            names = [a.name for a in call.args]
            for a in call.args:
                self.check_type(a.type, "arg", names, "in")
            if call.ret is not None:
                self.check_type(call.ret, "ret")
            for a in call.attrs:
                if a.value not in CALL_ATTRS:
                    self.err("semantic", call.line, "unknown syscall "
                             "attribute %s" % a.value)
            if call.base in SYSCALL_ARGS:
                lo, hi = SYSCALL_ARGS[call.base]
            elif call.base in PSEUDO_ARGS:
                lo, hi = PSEUDO_ARGS[call.base]
            else:
                self.err("semantic", call.line, "system call %s is not known "
                         "to this checker" % call.base)
                continue
            if not lo <= len(call.args) <= hi:
                self.err("semantic", call.line, "%s takes %d to %d "
                         "arguments, not %d" % (call.base, lo, hi,
                                                len(call.args)))
        self.check_directions()
        self.check_unused()
        for name, (base, values, line) in d.resources.items():
            if name not in self.produced:
                self.err("resources", line, "resource %s is never produced "
                         "(returned or written by the kernel)" % name)
            if name not in self.consumed:
                self.err("resources", line, "resource %s is never consumed "
                         "(passed to the kernel)" % name)
        return self.diag

    def check_unused(self):
        """syzkaller refuses structs, unions, type aliases, flags and
        resources that no syscall reaches."""
        d = self.d
        seen = set()

        def walk(node):
            if node.kind != "ident":
                return
            name = node.value
            if name in seen:
                return
            if name in d.structs or name in d.aliases or \
                    name in d.flags or name in d.resources:
                seen.add(name)
            if name in d.aliases:
                walk(d.aliases[name][0])
            elif name in d.structs:
                for f in d.structs[name].fields:
                    walk(f.type)
            elif name in d.resources:
                walk(d.resources[name][0])
            for a in node.args + node.colon:
                walk(a)

        for call in d.syscalls.values():
            for a in call.args:
                walk(a.type)
            if call.ret is not None:
                walk(call.ret)
        for kind, table in (("struct", d.structs), ("type", d.aliases),
                            ("flags", d.flags), ("resource", d.resources)):
            for name, v in table.items():
                if name not in seen:
                    self.err("semantic", line_of(v), "%s %s is never used "
                             "(syzkaller refuses unused definitions)" %
                             (kind, name))

    def check_directions(self):
        """Resource use inside structs depends on the direction of the
        pointer that leads to them; walk from the syscalls."""
        d = self.d
        seen = set()

        def walk(node, direction):
            if node.kind != "ident":
                return
            name = node.value
            if name in d.aliases:
                return walk(d.aliases[name][0], direction)
            if name in d.resources:
                if direction in ("out", "inout"):
                    self.produced.add(name)
                if direction in ("in", "inout"):
                    self.consumed.add(name)
                return
            if name in ("ptr", "ptr64") and len(node.args) == 2:
                return walk(node.args[1], node.args[0].value)
            if name == "array" and node.args:
                return walk(node.args[0], direction)
            if name in d.structs:
                key = (name, direction)
                if key in seen:
                    return
                seen.add(key)
                for f in d.structs[name].fields:
                    walk(f.type, f.direction() or direction)

        for call in d.syscalls.values():
            for a in call.args:
                walk(a.type, "in")


# --------------------------------------------------------------------------
# Layout

class Arch:
    def __init__(self, name, ptr_size, int64_align):
        self.name, self.ptr_size, self.int64_align = \
            name, ptr_size, int64_align


ARCHES = {
    "amd64": Arch("amd64", 8, 8),
    "386": Arch("386", 4, 4),
    "arm64": Arch("arm64", 8, 8),
}


class Layout:
    """size (static, or the size up to a variable-length tail), align,
    varlen, and for structs the field offsets; for arrays elem_size."""

    def __init__(self, size, align, varlen=False):
        self.size, self.align, self.varlen = size, align, varlen
        self.fields = []    # (Field, offset, Layout)
        self.options = []   # unions: (Field, Layout)
        self.elem = None
        self.kind = "scalar"
        self.struct = None


class LayoutEngine:
    def __init__(self, desc, arch, consts):
        self.d, self.arch, self.consts = desc, arch, consts
        self.cache = {}

    def value(self, node):
        if node.kind == "int":
            v = node.value
            return -v if node.neg else v
        if node.kind == "char":
            return ord(node.value)
        if node.value in self.consts:
            return self.consts[node.value]
        raise SyzError("no value for constant %s on %s" %
                       (node.value, self.arch.name))

    def int_layout(self, size):
        align = size
        if size == 8:
            align = self.arch.int64_align
        return Layout(size, align)

    def base_size(self, node):
        if node.value == "intptr":
            return self.arch.ptr_size
        return BUILTIN_INTS[node.value]

    def resource_size(self, name):
        while True:
            if name in self.d.resources:
                base = self.d.resources[name][0].value
            elif name in EXTERNAL:
                base = EXTERNAL[name][1]
            else:
                raise SyzError("unknown resource %s" % name)
            if base in BUILTIN_INTS:
                return BUILTIN_INTS[base]
            if base == "intptr":
                return self.arch.ptr_size
            name = base

    def of(self, node, ctx="field"):
        name = node.value
        args = [a for a in node.args
                if not (a.kind == "ident" and a.value == "opt")]
        if name in self.d.aliases:
            return self.of(self.d.aliases[name][0], ctx)
        if name in self.d.resources or name in EXTERNAL:
            return self.int_layout(self.resource_size(name))
        if name in self.d.structs:
            return self.struct(name)
        if name in BUILTIN_INTS:
            return self.int_layout(BUILTIN_INTS[name])
        if name in ("intptr", "boolptr"):
            return self.int_layout(self.arch.ptr_size)
        if name in ("bool8", "bool16", "bool32", "bool64"):
            return self.int_layout(int(name[4:]) // 8)
        if name in ("const", "flags"):
            if len(args) == 2:
                return self.int_layout(self.base_size(args[1]))
            return self.int_layout(self.arch.ptr_size)
        if name in LEN_TYPES:
            if len(args) == 2:
                return self.int_layout(self.base_size(args[1]))
            return self.int_layout(self.arch.ptr_size)
        if name == "proc":
            if len(args) == 3:
                return self.int_layout(self.base_size(args[2]))
            return self.int_layout(self.arch.ptr_size)
        if name == "fileoff":
            if args:
                return self.int_layout(self.base_size(args[0]))
            return self.int_layout(self.arch.ptr_size)
        if name in ("ptr", "vma"):
            return self.int_layout(self.arch.ptr_size)
        if name in ("ptr64", "vma64"):
            return self.int_layout(8)
        if name == "void":
            return Layout(0, 1)
        if name == "array":
            elem = self.of(args[0])
            if len(args) == 2:
                lo = self.value(args[1])
                hi = self.value(args[1].colon[0]) if args[1].colon else lo
                varlen = lo != hi or elem.varlen
                n = lo if not varlen else 0
            else:
                varlen, n = True, 0
            lay = Layout(n * elem.size, elem.align, varlen)
            # arrays of bytes are buffers for syzkaller: alignment 1
            if elem.kind == "scalar" and elem.size == 1:
                lay.align = 1
            lay.elem = elem
            lay.kind = "array"
            return lay
        if name in ("string", "stringnoz"):
            z = 1 if name == "string" else 0
            if len(args) == 2:
                return Layout(self.value(args[1]), 1)
            if not args:
                return Layout(0, 1, True)
            a = args[0]
            if a.kind == "str":
                return Layout(len(a.value) + z, 1)
            lens = {len(v.value) + z for v in self.d.flags[a.value][0]}
            if len(lens) == 1:
                return Layout(lens.pop(), 1)
            return Layout(0, 1, True)
        raise SyzError("cannot lay out %r" % node)

    def struct(self, name):
        if name in self.cache:
            lay = self.cache[name]
            if lay is None:
                raise SyzError("%s contains itself" % name)
            return lay
        self.cache[name] = None
        st = self.d.structs[name]
        if st.is_union:
            lay = self.union(st)
        else:
            lay = self.plain_struct(st)
        lay.struct = st
        self.cache[name] = lay
        return lay

    def union(self, st):
        size, align, varlen = 0, 1, False
        opts = []
        for f in st.fields:
            fl = self.of(f.type)
            opts.append((f, fl))
            size = max(size, fl.size)
            align = max(align, fl.align)
            varlen = varlen or fl.varlen
        if st.attr("varlen"):
            varlen = True
        sz = st.attr("size")
        if sz is not None:
            want = self.value(sz.args[0])
            if size > want:
                raise SyzError("union %s is larger than its size attribute"
                               % st.name)
            size, varlen = want, False
        lay = Layout(size, align, varlen)
        lay.options = opts
        lay.kind = "union"
        return lay

    def plain_struct(self, st):
        packed = st.attr("packed") is not None
        off, align, varlen = 0, 1, False
        fields = []
        for i, f in enumerate(st.fields):
            fl = self.of(f.type)
            a = 1 if packed else fl.align
            align = max(align, a)
            if off % a:
                off += a - off % a
            fields.append((f, off, fl))
            if fl.varlen:
                if i != len(st.fields) - 1 and not packed:
                    raise SyzError("%s: variable-length field %s must be the "
                                   "last one (or the struct packed)" %
                                   (st.name, f.name))
                varlen = True
            else:
                off += fl.size
        al = st.attr("align")
        if al is not None:
            align = self.value(al.args[0])
        if not varlen and off % align:
            off += align - off % align
        sz = st.attr("size")
        if sz is not None:
            want = self.value(sz.args[0])
            if off > want:
                raise SyzError("struct %s is larger than its size attribute"
                               % st.name)
            off = want
        lay = Layout(off, align, varlen)
        lay.fields = fields
        lay.kind = "struct"
        return lay
