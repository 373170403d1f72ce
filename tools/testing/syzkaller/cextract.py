# SPDX-License-Identifier: GPL-2.0
"""What the C compiler says about our uapi header, for each architecture.

parse_header() reads include/uapi/linux/vduse.h the way a human does: its
#defines (ioctls and constants), enums and structs with their members in
order (anonymous unions as groups).  extract() then compiles a C file that
includes the header and turns every value of interest (constants, ioctl
numbers with their direction and size, struct sizes and alignments, member
offsets and sizes) into an assembler string, for amd64 and arm64 natively
and for 386 with -m32, without linking and without a C library, and reads the
numbers back from the assembler output.
"""

import os
import re
import shutil
import subprocess
import tempfile

# -------------------------------------------------------------------------
# The header


class CMember:
    def __init__(self, name, ctype, dims, group):
        self.name, self.ctype, self.dims, self.group = name, ctype, dims, group
        self.flex = bool(dims) and dims[-1] == ""

    def struct_type(self):
        m = re.match(r"^struct\s+(\w+)$", self.ctype)
        return m.group(1) if m else None


class Header:
    def __init__(self, path):
        self.path = path
        self.ioctls = {}      # name -> (macro text, "control"|"device"|None)
        self.constants = {}   # name -> value text (object-like, non-ioctl)
        self.enums = {}       # enum name -> [member names]
        self.structs = {}     # name -> [CMember]
        self.order = []       # struct names in order


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)),
                  text, flags=re.S)
    # same length, so that offsets into the text stay those of the file
    return re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)


def split_top(body, sep):
    """Split at sep characters that are not nested in braces."""
    parts, depth, cur = [], 0, []
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def matching_brace(text, i):
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced braces")


def parse_members(body, group_counter, group=None):
    members = []
    for decl in split_top(body, ";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        m = re.match(r"^(union|struct)\s*\{(.*)\}\s*(\w*)$", decl, re.S)
        if m:
            if m.group(3):
                members.append(CMember(m.group(3), m.group(1), [], group))
                continue
            group_counter[0] += 1
            members.extend(parse_members(m.group(2), group_counter,
                                         group_counter[0]))
            continue
        m = re.match(r"^(.*?)\s*\b([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)$",
                     decl)
        if not m or not m.group(1):
            raise ValueError("cannot parse member declaration %r" % decl)
        dims = [d.strip() for d in re.findall(r"\[([^\]]*)\]", m.group(3))]
        members.append(CMember(m.group(2), m.group(1).strip(), dims, group))
    return members


def parse_header(path):
    with open(path) as f:
        raw = f.read()
    hdr = Header(path)
    text = strip_c_comments(raw)
    # the section headings: /* Control node: ... */, /* Device node: ... */
    control = device = -1
    m = re.search(r"^/\*\s*Control node:", raw, re.M)
    if m:
        control = m.start()
    m = re.search(r"^/\*\s*Device node:", raw, re.M)
    if m:
        device = m.start()
    # continuation lines joined (same length)
    logical = re.sub(r"\\\n", "  ", text)
    guard = None
    m = re.search(r"^\s*#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\s*$",
                  logical, re.M)
    if m:
        guard = m.group(1)
    for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\(?)"
                         r"([^\n]*)$", logical, re.M):
        name, fnlike, value = m.group(1), m.group(2), m.group(3).strip()
        if fnlike or name == guard:
            continue
        if re.match(r"^_IO(R|W|WR)?\s*\(", value):
            pos = m.start()
            section = None
            if 0 <= control < device:
                section = "control" if control < pos < device else (
                    "device" if pos > device else None)
            hdr.ioctls[name] = (value, section)
        else:
            hdr.constants[name] = value
    for m in re.finditer(r"\benum\s+(\w+)\s*\{", text):
        end = matching_brace(text, m.end() - 1)
        names = []
        for item in text[m.end():end].split(","):
            item = item.strip()
            if item:
                names.append(re.match(r"^([A-Za-z_]\w*)", item).group(1))
        hdr.enums[m.group(1)] = names
    for m in re.finditer(r"\bstruct\s+(\w+)\s*\{", text):
        end = matching_brace(text, m.end() - 1)
        tail = text[end + 1:].lstrip()
        if not tail.startswith(";"):
            continue        # a member declaration, not a definition
        counter = [0]
        hdr.structs[m.group(1)] = parse_members(text[m.end():end], counter)
        hdr.order.append(m.group(1))
    return hdr


# -------------------------------------------------------------------------
# Compilers and headers for each architecture

# What the arm64 uapi <asm/...> headers that the extraction needs say, for a
# machine without arm64 headers (Debian's linux-libc-dev-arm64-cross has the
# real ones and is used when installed).
ARM64_SHIM = {
    "asm/types.h": "#include <asm-generic/types.h>\n",
    "asm/bitsperlong.h": "#define __BITS_PER_LONG 64\n"
                         "#include <asm-generic/bitsperlong.h>\n",
    "asm/posix_types.h": "typedef unsigned short __kernel_old_uid_t;\n"
                         "typedef unsigned short __kernel_old_gid_t;\n"
                         "#define __kernel_old_uid_t __kernel_old_uid_t\n"
                         "#include <asm-generic/posix_types.h>\n",
    "asm/ioctl.h": "#include <asm-generic/ioctl.h>\n",
    "asm/ioctls.h": "#include <asm-generic/ioctls.h>\n",
    "asm/fcntl.h": "#define O_DIRECTORY 040000\n#define O_NOFOLLOW 0100000\n"
                   "#define O_DIRECT 0200000\n#define O_LARGEFILE 0400000\n"
                   "#include <asm-generic/fcntl.h>\n",
    "asm/byteorder.h": "#include <linux/byteorder/little_endian.h>\n",
    "asm/unistd.h": "#define __ARCH_WANT_RENAMEAT\n#define __ARCH_WANT_NEW_STAT\n"
                    "#define __ARCH_WANT_SET_GET_RLIMIT\n"
                    "#define __ARCH_WANT_TIME32_SYSCALLS\n"
                    "#define __ARCH_WANT_SYS_CLONE3\n"
                    "#include <asm-generic/unistd.h>\n",
}


def toolchain(arch, workdir):
    """(argv prefix, description) of a compiler for arch, or raise."""
    if arch == "amd64":
        return ["gcc", "-m64"], "gcc -m64, host headers"
    if arch == "386":
        # The x86 <asm/...> uapi headers serve both -m32 and -m64.
        inc = "/usr/i686-linux-gnu/include"
        if os.path.isdir(os.path.join(inc, "asm")):
            return (["gcc", "-m32", "-nostdinc", "-isystem", inc],
                    "gcc -m32, %s" % inc)
        return (["gcc", "-m32", "-idirafter", "/usr/include/x86_64-linux-gnu"],
                "gcc -m32, x86 headers of the host")
    if arch == "arm64":
        inc = "/usr/aarch64-linux-gnu/include"
        if os.path.isdir(os.path.join(inc, "asm")):
            hdrs = ["-nostdinc", "-isystem", inc]
            hdesc = inc
        else:
            shim = os.path.join(workdir, "arm64-asm")
            for rel, body in ARM64_SHIM.items():
                p = os.path.join(shim, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(body)
            hdrs = ["-nostdinc", "-isystem", shim, "-isystem", "/usr/include"]
            hdesc = "host uapi headers with arm64 <asm/*.h>"
        if shutil.which("aarch64-linux-gnu-gcc"):
            return (["aarch64-linux-gnu-gcc"] + hdrs,
                    "aarch64-linux-gnu-gcc, %s" % hdesc)
        if shutil.which("clang"):
            return (["clang", "--target=aarch64-linux-gnu"] + hdrs,
                    "clang --target=aarch64-linux-gnu, %s" % hdesc)
        raise RuntimeError("no compiler for arm64: install clang or "
                           "gcc-aarch64-linux-gnu")
    raise RuntimeError("unknown architecture %s" % arch)


# -------------------------------------------------------------------------
# Extraction

EMIT = r'''#define SYZ_EMIT(tag, v) __asm__ volatile("\n.ascii \"@@syz " tag " %0 %1\\n\"" \
	: : "i"((unsigned int)((unsigned long long)(v))), \
	    "i"((unsigned int)((unsigned long long)(v) >> 32)))
'''


class Result:
    def __init__(self, arch, tool):
        self.arch, self.tool = arch, tool
        self.consts = {}        # name -> value (uint64)
        self.missing = []       # constants the compiler did not know
        self.ioctls = {}        # name -> dict(value, dir, size, type, nr)
        self.structs = {}       # name -> dict(size, align, members)
        self.error = None       # compiler output if it failed for good


def include_line(path, header_path):
    """Map a syzkaller include (kernel source path) to a host include."""
    if os.path.basename(path) == os.path.basename(header_path) and \
            "vduse" in path:
        return '#include "%s"' % os.path.abspath(header_path)
    p = re.sub(r"^uapi/", "", path)
    return "#include <%s>" % p


def program(hdr, includes, defines, consts, arch):
    out = ["/* generated by tools/testing/syzkaller/check */",
           "#include <linux/types.h>", "#include <linux/ioctl.h>",
           "#include <asm/unistd.h>"]
    for inc in includes:
        out.append(include_line(inc, hdr.path))
    if not any("vduse" in i for i in includes):
        out.append('#include "%s"' % os.path.abspath(hdr.path))
    for name, expr in defines.items():
        out.append("#define %s (%s)" % (name, expr))
    out.append(EMIT)
    out.append("void syz_extract(void)\n{")
    for name in consts:
        expr = name
        if name == "__NR_mmap" and arch == "386":
            # syzkaller's mmap on 32-bit targets is mmap2 (page offsets)
            expr = "__NR_mmap2"
        out.append('\tSYZ_EMIT("c %s", %s);' % (name, expr))
    for name in hdr.ioctls:
        for what, expr in (("value", name), ("dir", "_IOC_DIR(%s)" % name),
                           ("size", "_IOC_SIZE(%s)" % name),
                           ("type", "_IOC_TYPE(%s)" % name),
                           ("nr", "_IOC_NR(%s)" % name)):
            out.append('\tSYZ_EMIT("i %s %s", %s);' % (name, what, expr))
    for sname, members in hdr.structs.items():
        t = "struct %s" % sname
        out.append('\tSYZ_EMIT("s %s size", sizeof(%s));' % (sname, t))
        out.append('\tSYZ_EMIT("s %s align", _Alignof(%s));' % (sname, t))
        for m in members:
            out.append('\tSYZ_EMIT("m %s %s off", __builtin_offsetof(%s, %s));'
                       % (sname, m.name, t, m.name))
            if not m.flex:
                out.append('\tSYZ_EMIT("m %s %s size", sizeof(((%s *)0)->%s));'
                           % (sname, m.name, t, m.name))
            if m.dims:
                out.append('\tSYZ_EMIT("m %s %s elem", sizeof(((%s *)0)->%s[0]));'
                           % (sname, m.name, t, m.name))
    out.append("}")
    return "\n".join(out) + "\n"


UNDECLARED = [re.compile(r"'(\w+)' undeclared"),
              re.compile(r"use of undeclared identifier '(\w+)'")]


def extract(arch, hdr, includes, defines, consts, workdir):
    """Compile and read back; consts the compiler does not know are left
    out (listed in Result.missing) and the rest is still extracted."""
    argv, tool = toolchain(arch, workdir)
    res = Result(arch, tool)
    consts = list(consts)
    src = os.path.join(workdir, "extract-%s.c" % arch)
    asm = os.path.join(workdir, "extract-%s.s" % arch)
    for _ in range(8):
        with open(src, "w") as f:
            f.write(program(hdr, includes, defines, consts, arch))
        p = subprocess.run(argv + ["-S", "-O0", "-w", "-o", asm, src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True,
                           env=dict(os.environ, LC_ALL="C"))
        if p.returncode == 0:
            break
        bad = set()
        for rx in UNDECLARED:
            bad.update(rx.findall(p.stdout))
        bad &= set(consts)
        if not bad:
            res.error = p.stdout
            return res
        res.missing.extend(sorted(bad))
        consts = [c for c in consts if c not in bad]
    else:
        res.error = p.stdout
        return res
    with open(asm) as f:
        text = f.read()
    for m in re.finditer(r"@@syz ([^\"\\]*?) [$#]?(-?\d+) [$#]?(-?\d+)\\n",
                         text):
        key = m.group(1).split()
        val = (int(m.group(2)) & 0xffffffff) | \
            ((int(m.group(3)) & 0xffffffff) << 32)
        if key[0] == "c":
            res.consts[key[1]] = val
        elif key[0] == "i":
            res.ioctls.setdefault(key[1], {})[key[2]] = val
        elif key[0] == "s":
            res.structs.setdefault(key[1], {"members": {}})[key[2]] = val
        elif key[0] == "m":
            st = res.structs.setdefault(key[1], {"members": {}})
            st["members"].setdefault(key[2], {})[key[3]] = val
    return res


def new_workdir():
    return tempfile.mkdtemp(prefix="syzkaller-check-")
