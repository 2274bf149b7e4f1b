#!/usr/bin/env python3
"""Checks one C<->Rust boundary: the C header(s) against the Rust declarations.

Used by scripts/check-headers.sh; run that, not this. Two modes:

  externs  The Rust side's `extern "C" { ... }` blocks (functions C implements) and its
           `#[no_mangle] extern "C" fn` items (functions Rust implements for C) are turned into
           C prototypes, and a translation unit that includes the real header(s) and then
           those prototypes is compiled with `cc -fsyntax-only -Werror`. A parameter or
           return type that differs makes the compiler stop with "conflicting types". Also:
           every Rust import must be declared by the header(s), and every function the
           header(s) declare with one of the --prefix prefixes must be a Rust import, a Rust
           export, or named with --c-only (a function only C calls), so an unused leftover
           shows up.

  cbindgen The header that cbindgen generates from the Rust side (the functions, the
           constants and the #[repr(C)] structs) is compiled after the hand-written header:
           the functions as above; each constant as `_Static_assert(C_NAME == value)`; each
           struct field by offset and size. --same 'A=B' makes the check read C's type A as
           B (documented where it is used).

Rust types map to C as: c_int int, c_uint unsigned int, c_char char, c_void void, uN/iN
(u)intN_t, usize size_t, isize ptrdiff_t, bool _Bool, `*const T` `T const *`, `*mut T` `T *`,
`extern "C" fn(..) -> R` (also in Option<..>) a function pointer, `-> !` noreturn; other names
through --type Rust=C.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

PRIMITIVES = {
    "c_int": "int", "c_uint": "unsigned int", "c_char": "char", "c_void": "void",
    "c_long": "long", "c_ulong": "unsigned long", "c_short": "short", "c_ushort": "unsigned short",
    "u8": "uint8_t", "i8": "int8_t", "u16": "uint16_t", "i16": "int16_t", "u32": "uint32_t",
    "i32": "int32_t", "u64": "uint64_t", "i64": "int64_t", "usize": "size_t", "isize": "ptrdiff_t",
    "bool": "_Bool",
}


class Fail(Exception):
    pass


def strip_rust_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def split_top(text, sep=","):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def c_decl(rtype, name, types):
    """The C declaration of `name` with Rust type `rtype` (name may be "")."""
    t = rtype.strip()
    m = re.fullmatch(r"Option\s*<\s*(.*)\s*>", t, flags=re.S)
    if m and re.match(r"(unsafe\s+)?extern", m.group(1)):
        t = m.group(1).strip()
    m = re.fullmatch(r"(?:unsafe\s+)?extern\s+\"C\"\s+fn\s*\((.*)\)\s*(?:->\s*(.*))?", t, flags=re.S)
    if m:
        args = fn_args(m.group(1), types)
        return c_decl(m.group(2) or "()", f"(*{name})({args})", types)
    m = re.fullmatch(r"\*\s*(const|mut)\s+(.*)", t, flags=re.S)
    if m:
        inner = c_decl(m.group(2), "", types)
        const = " const" if m.group(1) == "const" else ""
        return f"{inner}{const} *{name}".rstrip()
    if t in ("()", ""):
        base = "void"
    else:
        last = t.split("::")[-1]
        if last in types:
            base = types[last]
        elif last in PRIMITIVES:
            base = PRIMITIVES[last]
        else:
            raise Fail(f"no C type for the Rust type `{t}`: add --type {last}=<C type>")
    return f"{base} {name}".rstrip()


def fn_args(text, types):
    args = []
    for a in split_top(text):
        name, _, rtype = a.partition(":")
        args.append(c_decl(rtype, name.strip().lstrip("_") or "", types))
    return ", ".join(args) if args else "void"


def prototype(name, args, ret, types):
    params = fn_args(args, types)
    ret = (ret or "").strip()
    if ret == "!":
        return f"void {name}({params}) __attribute__((noreturn));"
    return c_decl(ret or "()", f"{name}({params})", types) + ";"


FN_SIG = r"fn\s+(\w+)\s*\((.*?)\)\s*(?:->\s*([^;{]+?))?\s*"


def rust_items(paths, types):
    """(imports, exports): name -> C declaration."""
    imports, exports = {}, {}
    for path in paths:
        text = strip_rust_comments(open(path, encoding="utf-8").read())
        for block in re.finditer(r"extern\s+\"C\"\s*\{", text):
            depth, i = 1, block.end()
            while depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            body = re.sub(r"#\[[^\]]*(\[[^\]]*\][^\]]*)*\]", "", text[block.end():i - 1], flags=re.S)
            for m in re.finditer(r"(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?" + FN_SIG + ";", body, flags=re.S):
                imports[m.group(1)] = prototype(m.group(1), m.group(2), m.group(3), types)
            for m in re.finditer(r"(?:pub(?:\([^)]*\))?\s+)?static\s+(mut\s+)?(\w+)\s*:\s*([^;]+);", body):
                decl = c_decl(m.group(3), m.group(2), types)
                imports[m.group(2)] = "extern " + ("" if m.group(1) else "const ") + decl + ";"
        for m in re.finditer(r"#\[no_mangle\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?"
                             r"extern\s+\"C\"\s+" + FN_SIG + r"\{", text, flags=re.S):
            exports[m.group(1)] = prototype(m.group(1), m.group(2), m.group(3), types)
    return imports, exports


def header_functions(paths, prefixes):
    names = set()
    for path in paths:
        text = strip_c_comments(open(path, encoding="utf-8").read())
        text = re.sub(r"^\s*#.*?(?<!\\)$", "", text, flags=re.M | re.S)
        text = re.sub(r"extern\s+\"C\"\s*\{|^\s*\}\s*$", ";", text, flags=re.M)
        for decl in text.split(";"):
            m = re.match(r"\s*(?:extern\s+)?[\w\s\*]*?\b(\w+)\s*\(", decl)
            if m and not re.match(r"\s*typedef\b", decl) and m.group(1).startswith(tuple(prefixes)):
                names.add(m.group(1))
    return names


def compile_tu(tu, cc, includes, label):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"check_{label}.c")
        with open(path, "w", encoding="utf-8") as f:
            f.write(tu)
        cmd = [cc, "-std=c11", "-fsyntax-only", "-Wall", "-Werror"]
        cmd += [f"-I{i}" for i in includes] + [path]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            numbered = "\n".join(f"{n + 1:4} {line}" for n, line in enumerate(tu.splitlines()))
            raise Fail(f"{' '.join(cmd)} failed:\n{run.stderr}\n--- the checked file:\n{numbered}")


def check_externs(args, types):
    imports, exports = rust_items(args.rust, types)
    decls = {}
    for h in args.header:
        decls[h] = strip_c_comments(open(h, encoding="utf-8").read())
    problems = []
    for name in sorted(imports):
        if name in args.external:
            continue
        if not any(re.search(rf"\b{name}\b", text) for text in decls.values()):
            problems.append(f"{name}: Rust declares it (extern \"C\"), no header does")
    declared = header_functions(args.header, args.prefix)
    c_only = set(args.c_only)
    for name in sorted(declared - set(imports) - set(exports) - c_only):
        problems.append(f"{name}: declared by the header, but Rust neither calls nor defines it "
                        "(remove it, or pass --c-only if only C calls it)")
    for name in sorted(c_only - declared):
        problems.append(f"{name}: named with --c-only but not declared by the header")
    checked = {n: d for n, d in {**exports, **imports}.items()
               if (n in imports or n in declared) and n not in args.external}
    tu = "".join(f'#include "{os.path.abspath(h)}"\n' for h in args.header + args.context)
    tu += "\n/* the Rust declarations */\n" + "\n".join(checked[n] for n in sorted(checked)) + "\n"
    if args.show:
        print(tu)
    compile_tu(tu, args.cc, args.include, args.label)
    if problems:
        raise Fail("\n".join(problems))
    return len(checked)


def check_cbindgen(args, types):
    gen = open(args.generated, encoding="utf-8").read()
    gen = strip_c_comments(gen)
    same = dict(s.split("=", 1) for s in args.same)
    hand = open(args.header[0], encoding="utf-8").read()
    for a, b in same.items():
        hand = re.sub(rf"\b{re.escape(a)}\b(?!;)", b, hand)
    # C's hand-written header (with --same applied) first, then what cbindgen made of Rust.
    tu = [hand, "\n/* ---- from cbindgen ---- */\n"]
    for d in args.define:
        name, _, expr = d.partition("=")
        tu.append(f"#if {expr or 1}\n#define {name} 1\n#endif\n")
    asserts, count = [], 0
    lines = gen.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"\s*#\s*include", line) or re.match(r"\s*typedef\s+struct\s+\w+\s+\w+\s*;", line):
            i += 1  # the includes are the header's; opaque types must be the header's own
            continue
        m = re.match(r"\s*#\s*define\s+(\w+)\s+(.+)$", line)
        if m:
            tu.append(f"#define RUST_{m.group(1)} ({m.group(2).strip()})\n")
            asserts.append(m.group(1))
            i += 1
            continue
        m = re.match(r"\s*typedef\s+struct\s*\{", line)
        if m:
            body = []
            i += 1
            while not re.match(r"\s*\}\s*\w+\s*;", lines[i]):
                body.append(lines[i])
                i += 1
            name = re.match(r"\s*\}\s*(\w+)", lines[i]).group(1)
            fields = [re.search(r"(\w+)\s*(\[[^\]]*\])?\s*;", f).group(1) for f in body if ";" in f]
            tu.append("typedef struct {\n" + "\n".join(body) + f"\n}} rust_{name};\n")
            tu.append(f"_Static_assert(sizeof({name}) == sizeof(rust_{name}), \"{name}: size differs from Rust\");\n")
            for f in fields:
                tu.append(f"_Static_assert(offsetof({name}, {f}) == offsetof(rust_{name}, {f}) && "
                          f"sizeof((({name} *)0)->{f}) == sizeof(((rust_{name} *)0)->{f}), "
                          f"\"{name}.{f}: offset or size differs from Rust\");\n")
            count += 1
            i += 1
            continue
        if re.search(r"\b\w+\s*\(", line) and line.rstrip().endswith(";") and not line.lstrip().startswith("#"):
            count += 1
        tu.append(line + "\n")
        i += 1
    tu.append("\n")
    for name in asserts:
        tu.append(f"#ifndef RUST_{name}\n#else\n_Static_assert(({name}) == RUST_{name}, "
                  f"\"{name}: the value differs from Rust\");\n#endif\n")
    compile_tu("#include <stddef.h>\n" + "".join(tu), args.cc, args.include, args.label)
    declared = header_functions([args.header[0]], args.prefix)
    made = header_functions([args.generated], args.prefix)
    problems = [f"{n}: in the generated declarations, not in {args.header[0]}" for n in sorted(made - declared)]
    problems += [f"{n}: declared by {args.header[0]} but not defined by the Rust side "
                 "(pass --c-only if C defines it)" for n in sorted(declared - made - set(args.c_only))]
    if problems:
        raise Fail("\n".join(problems))
    return count + len(asserts)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["externs", "cbindgen"])
    p.add_argument("--label", required=True, help="name of the boundary, for messages")
    p.add_argument("--rust", nargs="*", default=[], help="Rust files (externs mode)")
    p.add_argument("--generated", help="cbindgen's output (cbindgen mode)")
    p.add_argument("--header", action="append", required=True, help="the C header(s)")
    p.add_argument("--context", action="append", default=[],
                   help="header also included in the compile (its declarations must agree too), "
                        "not scanned for unused functions (externs mode)")
    p.add_argument("--include", action="append", default=[], help="-I directories")
    p.add_argument("--prefix", action="append", default=["uasyncio_"], help="prefixes of checked names")
    p.add_argument("--c-only", action="append", default=[], help="header function that only C calls")
    p.add_argument("--external", action="append", default=[],
                   help="Rust import from another C API (e.g. the RTOS kernel's), not checked")
    p.add_argument("--type", action="append", default=[], help="Rust=C type name")
    p.add_argument("--same", action="append", default=[], help="C type A read as B (cbindgen mode)")
    p.add_argument("--define", action="append", default=[], help="NAME[=C preprocessor condition]: a macro cbindgen's #if tests (cbindgen mode)")
    p.add_argument("--show", action="store_true", help="print the checked translation unit")
    p.add_argument("--cc", default=os.environ.get("CC", "cc"))
    args = p.parse_args()
    types = dict(t.split("=", 1) for t in args.type)
    try:
        if args.mode == "externs":
            n = check_externs(args, types)
        else:
            n = check_cbindgen(args, types)
    except Fail as e:
        print(f"{args.label}: MISMATCH\n{e}", file=sys.stderr)
        return 1
    print(f"{args.label}: ok ({n} declarations checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
