"""Parsing of one AT command line (ITU-T V.250, 3GPP TS 27.007 syntax).

A command line is ``AT`` followed by zero or more commands, e.g. ``ATE0V1``,
``AT+CREG=2;+CGREG?``, ``AT+CGDCONT=1,"IP","internet"``, ``ATD*99***1#``. `parse_line`
returns a list of `Command` (name, kind, args) or raises `AtSyntaxError`; the modem answers a
syntax error with ``ERROR`` and runs none of the line.

Kinds: ``exec`` (``+CSQ``, ``E0`` has no kind of its own: basic commands are ``exec`` with the
number as the only argument), ``read`` (``+CREG?``), ``test`` (``+CREG=?``), ``set``
(``+CREG=2``). Extended names are upper-cased; string arguments keep their case and lose
their quotes; empty arguments are ``None``. Dial (``D``) takes the rest of the line.
"""

from dataclasses import dataclass, field


class AtSyntaxError(ValueError):
    """The line is not valid V.250 syntax."""


@dataclass
class Command:
    name: str
    kind: str = "exec"
    args: list = field(default_factory=list)


def split_args(text):
    """Split ``1,"IP","a,b"`` into ['1', 'IP', 'a,b']; empty fields become None."""
    args, cur, quoted, in_quotes = [], "", False, False
    for ch in text:
        if in_quotes:
            if ch == '"':
                in_quotes = False
            else:
                cur += ch
        elif ch == '"':
            in_quotes, quoted = True, True
        elif ch == ",":
            args.append(cur if (cur or quoted) else None)
            cur, quoted = "", False
        elif ch != " ":
            cur += ch
    if in_quotes:
        raise AtSyntaxError("unterminated string")
    args.append(cur if (cur or quoted) else None)
    return [] if args == [None] else args


def _extended(body, i):
    """Parse one ``+NAME[?|=?|=args]`` starting at body[i]; return (Command, next index)."""
    j = i + 1
    while j < len(body) and (body[j].isalnum() or body[j] in "!%-./:_"):
        j += 1
    name = body[i:j].upper()
    if len(name) < 2:
        raise AtSyntaxError("empty extended command name")
    # the command ends at an unquoted ';' or at the end of the line
    k, in_quotes = j, False
    while k < len(body) and (in_quotes or body[k] != ";"):
        if body[k] == '"':
            in_quotes = not in_quotes
        k += 1
    rest = body[j:k]
    nxt = k + 1 if k < len(body) else k
    if rest == "":
        return Command(name, "exec"), nxt
    if rest == "?":
        return Command(name, "read"), nxt
    if rest == "=?":
        return Command(name, "test"), nxt
    if rest.startswith("="):
        return Command(name, "set", split_args(rest[1:])), nxt
    raise AtSyntaxError(f"unexpected {rest!r} after {name}")


def _basic(body, i):
    """Parse one basic command (``E0``, ``&C1``, ``S7=60``, ``S0?``, ``H``); return (Command, next)."""
    ch = body[i].upper()
    j = i + 1
    if ch == "&":
        if j >= len(body):
            raise AtSyntaxError("lone '&'")
        ch = "&" + body[j].upper()
        j += 1
    if ch == "S":
        k = j
        while k < len(body) and body[k].isdigit():
            k += 1
        if k == j:
            raise AtSyntaxError("S without a register number")
        name = "S" + body[j:k]
        if body[k:k + 1] == "?":
            return Command(name, "read"), k + 1
        if body[k:k + 1] == "=":
            m = k + 1
            while m < len(body) and body[m].isdigit():
                m += 1
            return Command(name, "set", [body[k + 1:m]]), m
        raise AtSyntaxError(f"{name} needs '?' or '='")
    k = j
    while k < len(body) and body[k].isdigit():
        k += 1
    args = [body[j:k]] if k > j else []
    return Command(ch, "exec", args), k


def parse_line(line):
    """Parse a full command line (without the CR). Raises AtSyntaxError."""
    line = line.strip()
    if line[:2].upper() != "AT":
        raise AtSyntaxError("line does not start with AT")
    body, i, cmds = line[2:], 0, []
    while i < len(body):
        ch = body[i]
        if ch in " ;":
            i += 1
        elif ch in "+^$#%":
            cmd, i = _extended(body, i)
            cmds.append(cmd)
        elif ch.upper() == "D":
            cmds.append(Command("D", "exec", [body[i + 1:].strip()]))
            i = len(body)
        elif ch.isalpha() or ch == "&":
            cmd, i = _basic(body, i)
            cmds.append(cmd)
        else:
            raise AtSyntaxError(f"unexpected {ch!r}")
    return cmds
