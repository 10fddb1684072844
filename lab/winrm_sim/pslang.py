"""A small PowerShell: the tokenizer, parser and evaluator for the script forms the toolkit sends
(statements, pipelines, variables with member access and assignment, `.Clone()`, casts such as
`[ipaddress]'10.0.0.28'`, `-Param value` arguments), and PowerShell 5.1's error records as they
appear on stderr. Cmdlets themselves live in `cmdlets.py` / `dnscmdlets.py`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.winrm_sim.psvalues import PSIPAddress, PSObject, PSTimeSpan, format_default, get_member, to_text

KEYWORDS = {
    "if",
    "else",
    "elseif",
    "foreach",
    "for",
    "while",
    "do",
    "function",
    "filter",
    "param",
    "try",
    "catch",
    "finally",
    "switch",
    "trap",
    "begin",
    "process",
    "end",
    "return",
    "throw",
    "break",
    "continue",
    "class",
    "enum",
    "using",
    "data",
}
NOT_RECOGNIZED = (
    "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
    "operable program. Check the spelling of the name, or if a path was included, verify that "
    "the path is correct and try again."
)


# -- errors ------------------------------------------------------------------------------------
@dataclass
class ErrorRecord:
    """One PowerShell error as Windows PowerShell 5.1 prints it."""

    message: str
    category: str = "NotSpecified"
    target: str = ""
    target_type: str = ""
    activity: str = ""
    reason: str = "RuntimeException"
    fqid: str = "RuntimeException"
    prefix: str = ""  # "Get-Foo : " before the message
    line: int = 1
    col: int = 1
    length: int = 1
    line_text: str = ""

    def render(self) -> str:
        target = f"{self.target}:{self.target_type}" if self.target or self.target_type else ":"
        lines = [
            f"{self.prefix}{self.message}",
            f"At line:{self.line} char:{self.col}",
            f"+ {self.line_text}",
            "+ " + " " * (self.col - 1) + "~" * max(1, self.length),
            f"    + CategoryInfo          : {self.category}: ({target}) [{self.activity}], {self.reason}",
            f"    + FullyQualifiedErrorId : {self.fqid}",
            " ",
        ]
        return "\r\n".join(lines) + "\r\n"


class PSError(Exception):
    """An error raised while running a command; the engine places it on the error stream."""

    def __init__(
        self,
        message: str,
        category: str = "NotSpecified",
        reason: str = "RuntimeException",
        fqid: str | None = None,
        target: str = "",
        target_type: str = "",
    ) -> None:
        super().__init__(message)
        self.message, self.category, self.reason = message, category, reason
        self.fqid = fqid or reason
        self.target, self.target_type = target, target_type


class PSPartial(PSError):
    """Some results were produced before an error: they go down the pipeline, the error is reported."""

    def __init__(self, values: list[Any], error: PSError) -> None:
        super().__init__(
            error.message, error.category, error.reason, error.fqid, error.target, error.target_type
        )
        self.values = values


class PSParseError(Exception):
    def __init__(self, message: str, fqid: str, line: int, col: int, line_text: str) -> None:
        super().__init__(message)
        self.message, self.fqid, self.line, self.col, self.line_text = message, fqid, line, col, line_text

    def render(self) -> str:
        return (
            "\r\n".join(
                [
                    f"At line:{self.line} char:{self.col}",
                    f"+ {self.line_text}",
                    "+ " + " " * (self.col - 1) + "~",
                    self.message,
                    "    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException",
                    f"    + FullyQualifiedErrorId : {self.fqid}",
                    " ",
                ]
            )
            + "\r\n"
        )


# -- tokens ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # var str dstr num param word type op nl
    value: Any
    line: int
    col: int  # 1-based
    end: int  # column after the token
    extra: Any = None


_VAR = re.compile(r"\$(\{[^}]+\}|[A-Za-z_][\w:]*|\?|_)((?:\.[A-Za-z_]\w*)*)(\(\))?")
_NUM = re.compile(r"-?\d+$")
_WORD_STOP = set(" \t\r\n|;,(){}")


def tokenize(script: str) -> list[Token]:
    tokens: list[Token] = []
    lines = script.split("\n")
    for ln, text in enumerate(lines, start=1):
        text = text.rstrip("\r")
        i = 0
        while i < len(text):
            c = text[i]
            col = i + 1

            def tok(kind: str, value: Any, end: int, extra: Any = None, ln: int = ln, col: int = col) -> None:
                tokens.append(Token(kind, value, ln, col, end + 1, extra))

            if c in " \t":
                i += 1
            elif c == "#":
                break
            elif c in "|;,()=":
                tok("op", c, i + 1)
                i += 1
            elif c == "@" and text[i + 1 : i + 2] == "(":
                tok("op", "@(", i + 2)
                i += 2
            elif c in "{}" or (c == "@" and text[i + 1 : i + 2] == "{"):
                raise PSParseError(
                    f"Unexpected token '{c}' in expression or statement. (Script blocks and "
                    "hash tables are not supported by the lab's WinRM simulator.)",
                    "UnexpectedToken",
                    ln,
                    col,
                    text,
                )
            elif c == ":" and text[i + 1 : i + 2] == ":":
                tok("op", "::", i + 2)
                i += 2
            elif c == "'":
                j, buf = i + 1, []
                while True:
                    if j >= len(text):
                        raise PSParseError(
                            "The string is missing the terminator: '.",
                            "TerminatorExpectedAtEndOfString",
                            ln,
                            col,
                            text,
                        )
                    if text[j] == "'":
                        if text[j + 1 : j + 2] == "'":
                            buf.append("'")
                            j += 2
                            continue
                        break
                    buf.append(text[j])
                    j += 1
                tok("str", "".join(buf), j + 1)
                i = j + 1
            elif c == '"':
                j, buf = i + 1, []
                while True:
                    if j >= len(text):
                        raise PSParseError(
                            'The string is missing the terminator: ".',
                            "TerminatorExpectedAtEndOfString",
                            ln,
                            col,
                            text,
                        )
                    if text[j] == "`" and j + 1 < len(text):
                        buf.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(text[j + 1], text[j + 1]))
                        j += 2
                        continue
                    if text[j] == '"':
                        if text[j + 1 : j + 2] == '"':
                            buf.append('"')
                            j += 2
                            continue
                        break
                    buf.append(text[j])
                    j += 1
                tok("dstr", "".join(buf), j + 1)
                i = j + 1
            elif c == "$":
                m = _VAR.match(text, i)
                if not m:
                    raise PSParseError(
                        "Variable reference is not valid.", "InvalidVariableReference", ln, col, text
                    )
                name = m.group(1).strip("{}")
                members = [p for p in m.group(2).split(".") if p]
                tok("var", name, m.end(), (members, bool(m.group(3))))
                i = m.end()
            elif c == "[" and (
                not tokens
                or tokens[-1].kind in ("op", "nl", "param")
                or tokens[-1].line != ln
                or tokens[-1].end <= col
            ):
                j = text.find("]", i)
                if j < 0:
                    raise PSParseError(
                        "Missing ] at end of type token.",
                        "EndSquareBracketExpectedAtEndOfType",
                        ln,
                        col,
                        text,
                    )
                tok("type", text[i + 1 : j].strip(), j + 1)
                i = j + 1
            elif c in "-\u2013" and i + 1 < len(text) and (text[i + 1].isalpha() or text[i + 1] == "_"):
                j = i + 1
                while j < len(text) and (text[j].isalnum() or text[j] in "_-"):
                    j += 1
                name = text[i + 1 : j]
                colon = text[j : j + 1] == ":"
                tok("param", name, j, colon)
                i = j + 1 if colon else j
            else:
                j = i
                while j < len(text) and text[j] not in _WORD_STOP:
                    j += 1
                word = text[i:j]
                if _NUM.match(word):
                    tok("num", int(word), j)
                else:
                    tok("word", word, j)
                i = j
        tokens.append(Token("nl", "\n", ln, len(text) + 1, len(text) + 1))
    return tokens


# -- syntax tree --------------------------------------------------------------------------------
@dataclass
class Expr:
    kind: str  # const var array cast static sub
    value: Any = None
    items: list[Expr] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    call: bool = False
    pipeline: Pipeline | None = None
    token: Token | None = None


@dataclass
class Arg:
    param: str | None  # None for a positional value
    value: Expr | None
    token: Token


@dataclass
class Command:
    name: str
    args: list[Arg]
    token: Token
    end: int  # column after the last argument


@dataclass
class Pipeline:
    elements: list[Command | Expr]


@dataclass
class Statement:
    kind: str  # pipeline assign exit
    pipeline: Pipeline | None = None
    target: Expr | None = None
    exit_code: int = 0
    line: int = 1


class Parser:
    def __init__(self, script: str) -> None:
        self.lines = [ln.rstrip("\r") for ln in script.split("\n")]
        self.toks = tokenize(script)
        self.i = 0

    def peek(self, offset: int = 0) -> Token:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> Token:
        t = self.peek()
        self.i += 1
        return t

    def fail(self, t: Token, message: str, fqid: str = "UnexpectedToken") -> PSParseError:
        return PSParseError(
            message, fqid, t.line, t.col, self.lines[t.line - 1] if t.line <= len(self.lines) else ""
        )

    def script(self) -> list[Statement]:
        out: list[Statement] = []
        while self.i < len(self.toks):
            t = self.peek()
            if t.kind == "nl" or (t.kind == "op" and t.value == ";"):
                self.take()
                continue
            out.append(self.statement())
            t = self.peek()
            if self.i < len(self.toks) and not (t.kind == "nl" or (t.kind == "op" and t.value == ";")):
                raise self.fail(t, f"Unexpected token '{t.value}' in expression or statement.")
        return out

    def statement(self) -> Statement:
        t = self.peek()
        if t.kind == "word" and t.value.lower() in KEYWORDS:
            raise self.fail(
                t,
                f"Unexpected token '{t.value}': the '{t.value}' statement is not supported by the "
                "lab's WinRM simulator.",
            )
        if t.kind == "word" and t.value.lower() == "exit":
            self.take()
            code = 0
            if self.peek().kind == "num":
                code = int(self.take().value)
            return Statement("exit", exit_code=code, line=t.line)
        if t.kind == "var" and self.peek(1).kind == "op" and self.peek(1).value == "=":
            target = self.take()
            members, call = target.extra
            if call:
                raise self.fail(target, "The assignment expression is not valid.", "InvalidLeftHandSide")
            self.take()
            return Statement(
                "assign",
                pipeline=self.pipeline(),
                line=t.line,
                target=Expr("var", target.value, members=members, token=target),
            )
        return Statement("pipeline", pipeline=self.pipeline(), line=t.line)

    def pipeline(self) -> Pipeline:
        elements: list[Command | Expr] = []
        while True:
            t = self.peek()
            if t.kind == "word" and not _NUM.match(str(t.value)):
                elements.append(self.command())
            elif elements:
                raise self.fail(
                    t,
                    "Expressions are only allowed as the first element of a pipeline.",
                    "ExpressionsMustBeFirstInPipeline",
                )
            elif t.kind == "nl" or (t.kind == "op" and t.value in (";", ")", "|")):
                raise self.fail(t, "An empty pipe element is not allowed.", "EmptyPipeElement")
            else:
                elements.append(self.expression())
            if self.peek().kind == "op" and self.peek().value == "|":
                self.take()
                while self.peek().kind == "nl":
                    self.take()
                continue
            return Pipeline(elements)

    def command(self) -> Command:
        name = self.take()
        args: list[Arg] = []
        end = name.end
        while True:
            t = self.peek()
            if t.kind == "nl" or (t.kind == "op" and t.value in ("|", ";", ")")):
                break
            if t.kind == "param":
                self.take()
                value = None
                if t.extra:  # -Name:value
                    value = self.expression(argument=True)
                args.append(Arg(t.value, value, t))
            else:
                args.append(Arg(None, self.expression(argument=True), t))
            end = self.toks[self.i - 1].end
        return Command(str(name.value), args, name, end)

    def expression(self, argument: bool = False) -> Expr:
        first = self.primary(argument)
        if not (self.peek().kind == "op" and self.peek().value == ","):
            return first
        items = [first]
        while self.peek().kind == "op" and self.peek().value == ",":
            self.take()
            items.append(self.primary(argument))
        return Expr("array", items=items, token=first.token)

    def primary(self, argument: bool) -> Expr:
        t = self.take()
        if t.kind in ("str", "num"):
            return Expr("const", t.value, token=t)
        if t.kind == "dstr":
            return Expr("dstr", t.value, token=t)
        if t.kind == "word" and argument:
            return Expr("const", t.value, token=t)
        if t.kind == "var":
            members, call = t.extra
            return Expr("var", t.value, members=members, call=call, token=t)
        if t.kind == "type":
            if self.peek().kind == "op" and self.peek().value == "::":
                self.take()
                method = self.take()
                if method.kind != "word":
                    raise self.fail(method, "Missing property name after the static operator '::'.")
                m = re.fullmatch(r"(\w+)", str(method.value))
                if not m:
                    raise self.fail(method, f"Unexpected token '{method.value}'.")
                args: list[Expr] = []
                if self.peek().kind == "op" and self.peek().value == "(":
                    self.take()
                    while not (self.peek().kind == "op" and self.peek().value == ")"):
                        if self.peek().kind == "nl":
                            raise self.fail(
                                self.peek(),
                                "Missing closing ')' in expression.",
                                "MissingEndParenthesisInMethodCall",
                            )
                        args.append(self.primary(True))
                        if self.peek().kind == "op" and self.peek().value == ",":
                            self.take()
                    self.take()
                return Expr("static", (t.value, method.value), items=args, token=t)
            return Expr("cast", t.value, items=[self.primary(argument)], token=t)
        if t.kind == "op" and t.value in ("(", "@("):
            if t.value == "@(" and self.peek().kind == "op" and self.peek().value == ")":
                self.take()
                return Expr("array", items=[], token=t)
            inner = self.pipeline()
            close = self.take()
            if not (close.kind == "op" and close.value == ")"):
                raise self.fail(
                    close, "Missing closing ')' in expression.", "MissingEndParenthesisInExpression"
                )
            sub = Expr("sub", pipeline=inner, token=t, call=t.value == "@(")
            nxt = self.peek()
            if (
                nxt.kind == "word"
                and str(nxt.value).startswith(".")
                and nxt.col == close.end
                and nxt.line == close.line
            ):
                self.take()  # (expr).Member.Member
                path = str(nxt.value)[1:]
                call = path.endswith("()")
                return Expr(
                    "member", items=[sub], members=path.removesuffix("()").split("."), call=call, token=t
                )
            return sub
        raise self.fail(t, f"Unexpected token '{t.value}' in expression or statement.")


# -- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    switch: bool = False
    position: int | None = None
    mandatory: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cmdlet:
    """A cmdlet: its parameters and the function that runs it.

    `run(ctx, args, inp)` gets bound arguments (real parameter names) and the pipeline input; when
    `per_object` names a parameter, the engine calls it once per input object with that parameter bound."""

    name: str
    params: tuple[Param, ...]
    run: Callable[[Context, dict[str, Any], list[Any]], list[Any]]
    namespace: str = "Microsoft.PowerShell.Commands"
    per_object: str | None = None
    changes: bool = False  # supports -WhatIf/-Confirm

    @property
    def class_name(self) -> str:
        return f"{self.namespace}.{self.name.replace('-', '')}Command"


COMMON = (
    Param("ErrorAction", aliases=("ea",)),
    Param("WarningAction", aliases=("wa",)),
    Param("Verbose", switch=True, aliases=("vb",)),
    Param("Debug", switch=True, aliases=("db",)),
    Param("ErrorVariable", aliases=("ev",)),
    Param("OutVariable", aliases=("ov",)),
)
RISK = (Param("WhatIf", switch=True, aliases=("wi",)), Param("Confirm", switch=True, aliases=("cf",)))


class Terminate(Exception):
    """A terminating error or `exit`: the script stops."""

    def __init__(self, code: int) -> None:
        self.code = code


@dataclass
class Context:
    """One script run: variables, registered cmdlets, and what is written to stdout and stderr."""

    cmdlets: dict[str, Cmdlet]
    variables: dict[str, Any] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)
    stderr: list[tuple[str, str]] = field(default_factory=list)  # (CLIXML stream: "Error"/"warning", text)
    state: Any = None  # the host's state (exchange or dns), used by cmdlets
    statement_failed: bool = False

    def __post_init__(self) -> None:
        self.variables.setdefault("erroractionpreference", "Continue")


class Engine:
    def __init__(self, ctx: Context, script: str) -> None:
        self.ctx = ctx
        self.script = script
        self.lines = [ln.rstrip("\r") for ln in script.split("\n")]

    def run(self) -> int:
        """Run the script; returns powershell.exe's exit code."""
        try:
            statements = Parser(self.script).script()
        except PSParseError as e:
            self.ctx.stderr.append(("Error", e.render()))
            return 1
        try:
            for st in statements:
                self.ctx.statement_failed = False
                if st.kind == "exit":
                    return st.exit_code
                try:
                    assert st.pipeline is not None
                    values = self.pipeline(st.pipeline)
                except _StatementError:
                    values = []
                except PSError as e:  # an expression failed (a cast, a method call)
                    text = self.lines[st.line - 1]
                    self.report(
                        ErrorRecord(
                            e.message,
                            e.category,
                            e.target,
                            e.target_type,
                            "",
                            e.reason,
                            e.fqid,
                            line=st.line,
                            col=1,
                            length=len(text.strip()) or 1,
                            line_text=text,
                        ),
                        str(self.ctx.variables.get("erroractionpreference", "Continue")),
                    )
                    continue
                if st.kind == "assign":
                    assert st.target is not None
                    self.assign(st.target, values[0] if len(values) == 1 else values if values else None)
                elif values:
                    self.ctx.stdout.append(format_default(values))
        except Terminate as t:
            return t.code
        return 1 if self.ctx.statement_failed else 0

    # -- errors --------------------------------------------------------------------------------
    def report(self, rec: ErrorRecord, action: str) -> None:
        """Put an error record on the error stream per -ErrorAction; raises Terminate on Stop."""
        self.ctx.statement_failed = True
        action = action.lower()
        if action in ("silentlycontinue", "ignore"):
            return
        self.ctx.stderr.append(("Error", rec.render()))
        if action == "stop":
            raise Terminate(1)

    def _record(self, e: PSError, cmd: Command, activity: str) -> ErrorRecord:
        return ErrorRecord(
            e.message,
            e.category,
            e.target,
            e.target_type,
            activity,
            e.reason,
            e.fqid,
            prefix=f"{cmd.name} : ",
            line=cmd.token.line,
            col=cmd.token.col,
            length=cmd.end - cmd.token.col,
            line_text=self.lines[cmd.token.line - 1],
        )

    # -- pipelines ------------------------------------------------------------------------------
    def pipeline(self, p: Pipeline) -> list[Any]:
        values: list[Any] = []
        for n, el in enumerate(p.elements):
            if isinstance(el, Expr):
                v = self.eval(el)
                values = list(v) if isinstance(v, list) else ([] if v is None else [v])
            else:
                values = self.command(el, values, has_input=n > 0)
        return values

    def command(self, cmd: Command, inp: list[Any], has_input: bool) -> list[Any]:
        spec = self.ctx.cmdlets.get(cmd.name.lower())
        action = str(self.ctx.variables.get("erroractionpreference", "Continue"))
        if spec is None:
            rec = ErrorRecord(
                NOT_RECOGNIZED.format(name=cmd.name),
                "ObjectNotFound",
                cmd.name,
                "String",
                "",
                "CommandNotFoundException",
                "CommandNotFoundException",
                prefix=f"{cmd.name} : ",
                line=cmd.token.line,
                col=cmd.token.col,
                length=len(cmd.name),
                line_text=self.lines[cmd.token.line - 1],
            )
            self.report(rec, action)
            raise _StatementError()
        try:
            args = self.bind(spec, cmd)
        except PSError as e:
            self.report(self._record(e, cmd, spec.name), action)
            raise _StatementError() from None
        action = str(args.pop("ErrorAction", action))
        for k in ("WarningAction", "Verbose", "Debug", "ErrorVariable", "OutVariable"):
            args.pop(k, None)
        if args.pop("WhatIf", False):
            target = next((to_text(v) for k, v in args.items() if k in ("Identity", "Name", "Path")), "")
            self.ctx.stdout.append(
                f'What if: Performing the operation "{spec.name}" on target "{target}".\r\n'
            )
            return []
        if spec.per_object and has_input:
            out: list[Any] = []
            for obj in inp:
                try:
                    out += _invoke(spec, self.ctx, {**args, spec.per_object: obj}, [])
                except PSPartial as e:
                    out += e.values
                    self.report(self._record(e, cmd, spec.name), action)
                except PSError as e:
                    self.report(self._record(e, cmd, spec.name), action)
            return out
        missing = [p.name for p in spec.params if p.mandatory and p.name not in args]
        if missing:
            e = PSError(
                f"Cannot process command because of one or more missing mandatory parameters: "
                f"{' '.join(missing)}.",
                "InvalidArgument",
                "ParameterBindingException",
                f"MissingMandatoryParameter,{spec.class_name}",
            )
            self.report(self._record(e, cmd, spec.name), action)
            raise _StatementError()
        try:
            return _invoke(spec, self.ctx, args, inp)
        except PSPartial as e:
            self.report(self._record(e, cmd, spec.name), action)
            return e.values
        except PSError as e:
            self.report(self._record(e, cmd, spec.name), action)
            return []

    def bind(self, spec: Cmdlet, cmd: Command) -> dict[str, Any]:
        params = spec.params + COMMON + (RISK if spec.changes else ())
        bound: dict[str, Any] = {}
        positional = sorted((p for p in spec.params if p.position is not None), key=lambda p: p.position or 0)
        i = 0
        while i < len(cmd.args):
            a = cmd.args[i]
            i += 1
            if a.param is None:
                assert a.value is not None
                free = [p for p in positional if p.name not in bound]
                if not free:
                    raise PSError(
                        f"A positional parameter cannot be found that accepts argument "
                        f"'{to_text(self.eval(a.value))}'.",
                        "InvalidArgument",
                        "ParameterBindingException",
                        f"PositionalParameterNotFound,{spec.class_name}",
                    )
                bound[free[0].name] = self.eval(a.value)
                continue
            p = _match_param(params, a.param, spec)
            if p.switch:
                bound[p.name] = bool(self.eval(a.value)) if a.value is not None else True
                continue
            if a.value is not None:
                bound[p.name] = self.eval(a.value)
                continue
            if i >= len(cmd.args) or cmd.args[i].param is not None:
                raise PSError(
                    f"Missing an argument for parameter '{p.name}'. Specify a parameter of type "
                    "'System.Object' and try again.",
                    "InvalidArgument",
                    "ParameterBindingException",
                    f"MissingArgument,{spec.class_name}",
                )
            value_expr = cmd.args[i].value
            assert value_expr is not None
            bound[p.name] = self.eval(value_expr)
            i += 1
        return bound

    # -- expressions ------------------------------------------------------------------------------
    def eval(self, e: Expr) -> Any:
        if e.kind == "const":
            return e.value
        if e.kind == "dstr":
            return re.sub(r"\$(\w+)", lambda m: to_text(self.variable(m.group(1))), str(e.value))
        if e.kind == "array":
            return [self.eval(x) for x in e.items]
        if e.kind == "sub":
            assert e.pipeline is not None
            values = self.pipeline(e.pipeline)
            return values if e.call or len(values) != 1 else values[0]
        if e.kind == "var":
            value = self.variable(str(e.value))
            members = list(e.members)
            method = members.pop() if e.call and members else None
            for m in members:
                value = get_member(value, m)
            if method is not None:
                return self.method(value, method, e)
            return value
        if e.kind == "member":
            value = self.eval(e.items[0])
            members = list(e.members)
            method = members.pop() if e.call and members else None
            for m in members:
                value = get_member(value, m)
            return self.method(value, method, e) if method is not None else value
        if e.kind == "cast":
            return cast(str(e.value), self.eval(e.items[0]))
        if e.kind == "static":
            type_name, method = e.value
            return static_call(str(type_name), str(method), [self.eval(x) for x in e.items])
        raise PSError(f"Unsupported expression {e.kind}")

    def variable(self, name: str) -> Any:
        low = name.lower()
        if low in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[low]
        return self.ctx.variables.get(low)

    def method(self, value: Any, method: str, e: Expr) -> Any:
        if method.lower() == "clone" and isinstance(value, PSObject):
            return value.clone()
        if method.lower() == "tostring":
            return to_text(value)
        raise PSError(
            f"Method invocation failed because [{getattr(value, 'type_name', type(value).__name__)}] "
            f"does not contain a method named '{method}'.",
            "InvalidOperation",
            "RuntimeException",
            "MethodNotFound",
        )

    def assign(self, target: Expr, value: Any) -> None:
        name = str(target.value).lower()
        if not target.members:
            self.ctx.variables[name] = value
            return
        obj = self.variable(name)
        for m in target.members[:-1]:
            obj = get_member(obj, m)
        prop = target.members[-1]
        if not isinstance(obj, PSObject) or not obj.set(prop, value):
            assert target.token is not None
            rec = ErrorRecord(
                f"The property '{prop}' cannot be found on this object. Verify that the property "
                "exists and can be set.",
                "InvalidOperation",
                "",
                "",
                "",
                "RuntimeException",
                "PropertyAssignmentException",
                line=target.token.line,
                col=target.token.col,
                length=target.token.end - target.token.col,
                line_text=self.lines[target.token.line - 1],
            )
            self.report(rec, str(self.ctx.variables.get("erroractionpreference", "Continue")))


def _invoke(spec: Cmdlet, ctx: Context, args: dict[str, Any], inp: list[Any]) -> list[Any]:
    """Run a cmdlet; a failure that is not a PowerShell error (state file, network) becomes one."""
    try:
        return spec.run(ctx, args, inp)
    except PSError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PSError(f"The lab's WinRM simulator failed running {spec.name}: {type(e).__name__}: {e}",
                      "NotSpecified", "SimulatorException", f"SimulatorException,{spec.class_name}") from e


class _StatementError(Exception):
    """The statement stopped (its error is already reported)."""


def _match_param(params: tuple[Param, ...], given: str, spec: Cmdlet) -> Param:
    low = given.lower()
    for p in params:
        if p.name.lower() == low or low in (a.lower() for a in p.aliases):
            return p
    matches = [p for p in params if p.name.lower().startswith(low)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise PSError(
            f"Parameter cannot be processed because the parameter name '{given}' is ambiguous. Possible "
            f"matches include: {' '.join('-' + p.name for p in matches)}.",
            "InvalidArgument",
            "ParameterBindingException",
            f"AmbiguousParameter,{spec.class_name}",
        )
    raise PSError(
        f"A parameter cannot be found that matches parameter name '{given}'.",
        "InvalidArgument",
        "ParameterBindingException",
        f"NamedParameterNotFound,{spec.class_name}",
    )


TYPE_ALIASES = {
    "ipaddress": "ipaddress",
    "system.net.ipaddress": "ipaddress",
    "timespan": "timespan",
    "system.timespan": "timespan",
    "int": "int",
    "int32": "int",
    "system.int32": "int",
    "string": "string",
    "system.string": "string",
    "bool": "bool",
    "system.boolean": "bool",
    "array": "array",
    "object[]": "array",
    "string[]": "array",
}


def cast(type_name: str, value: Any) -> Any:
    """`[type]value` for the types the toolkit uses."""
    kind = TYPE_ALIASES.get(type_name.lower())
    try:
        if kind == "ipaddress":
            return value if isinstance(value, PSIPAddress) else PSIPAddress(to_text(value))
        if kind == "timespan":
            if isinstance(value, PSTimeSpan):
                return value
            if isinstance(value, int):
                return PSTimeSpan(value // 10_000_000)  # an integer is ticks, as in .NET
            return PSTimeSpan.parse(to_text(value))
        if kind == "int":
            return int(value) if not isinstance(value, str) else int(value.strip())
        if kind == "string":
            return to_text(value)
        if kind == "bool":
            return bool(value)
        if kind == "array":
            return value if isinstance(value, list) else [value]
    except ValueError:
        raise PSError(
            f'Cannot convert value "{to_text(value)}" to type "{_full_type(type_name)}". Error: '
            f'"{_conversion_reason(kind)}"',
            "InvalidArgument",
            "RuntimeException",
            "InvalidCastParseTargetInvocation",
        ) from None
    raise PSError(
        f"Unable to find type [{type_name}].",
        "InvalidOperation",
        "RuntimeException",
        "TypeNotFound",
        target=type_name,
        target_type="TypeName",
    )


def _full_type(type_name: str) -> str:
    return {"ipaddress": "System.Net.IPAddress", "timespan": "System.TimeSpan", "int": "System.Int32"}.get(
        TYPE_ALIASES.get(type_name.lower(), ""), type_name
    )


def _conversion_reason(kind: str | None) -> str:
    return {
        "ipaddress": "An invalid IP address was specified.",
        "timespan": "String was not recognized as a valid TimeSpan.",
        "int": "Input string was not in a correct format.",
    }.get(kind or "", "Invalid value.")


def static_call(type_name: str, method: str, args: list[Any]) -> Any:
    kind = TYPE_ALIASES.get(type_name.lower())
    if kind == "timespan":
        unit = {"fromseconds": 1, "fromminutes": 60, "fromhours": 3600, "fromdays": 86400}.get(method.lower())
        if unit and len(args) == 1:
            return PSTimeSpan(int(float(args[0]) * unit))
    if kind == "ipaddress" and method.lower() == "parse" and len(args) == 1:
        return cast("ipaddress", args[0])
    raise PSError(
        f"Method invocation failed because [{_full_type(type_name)}] does not contain a method named "
        f"'{method}'.",
        "InvalidOperation",
        "RuntimeException",
        "MethodNotFound",
    )
