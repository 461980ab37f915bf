"""A thread-per-client calculator (server2 --mode calc): each line is an arithmetic
expression answered with its value, as Python computes it, by a small
recursive-descent parser; never by eval(). The line loop is lines.py's.
  python3 calc_server.py HOST PORT [eval]
  eval   FAULTY: answers with eval(), which runs anything a client sends as code"""
import re
import sys

from lines import serve_forever  # lines.py, beside this file

bug = sys.argv[3] if len(sys.argv) > 3 else ""
TOKEN = re.compile(r"\s*(\d+\.\d*|\.\d+|\d+|\*\*|//|[-+*/%()])")
BIGGEST = 10_000  # bits in a result: past that, "result too large"


class Invalid(Exception):
    pass


def tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise Invalid("unexpected %r" % text[pos])
        out.append(m.group(1))
        pos = m.end()
    return out


class Parser:
    def __init__(self, text):
        self.toks, self.i = tokens(text), 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self):
        tok = self.peek()
        if tok is None:
            raise Invalid("unexpected end")
        self.i += 1
        return tok

    def parse(self):
        value = self.expr()
        if self.peek() is not None:
            raise Invalid("unexpected %r" % self.peek())
        return value

    def expr(self):  # term (('+'|'-') term)*
        value = self.term()
        while self.peek() in ("+", "-"):
            op, right = self.take(), self.term()
            value = value + right if op == "+" else value - right
        return value

    def term(self):  # factor (('*'|'/'|'//'|'%') factor)*
        value = self.factor()
        while self.peek() in ("*", "/", "//", "%"):
            op, right = self.take(), self.factor()
            if op != "*" and right == 0:
                raise Invalid("division by zero")
            if op == "*":
                value = value * right
            elif op == "/":
                value = value / right
            elif op == "//":
                value = value // right
            else:
                value = value % right
        return value

    def factor(self):  # ('-'|'+') factor | power
        if self.peek() in ("-", "+"):
            op, value = self.take(), self.factor()
            return -value if op == "-" else value
        return self.power()

    def power(self):  # atom ('**' factor)?   (right-associative, above unary minus)
        base = self.atom()
        if self.peek() != "**":
            return base
        self.take()
        exp = self.factor()
        if isinstance(exp, int) and isinstance(base, int) and exp >= 0:
            if abs(base) > 1 and exp * max(abs(base).bit_length(), 1) > BIGGEST:
                raise Invalid("result too large")
        try:
            return base ** exp
        except (OverflowError, ZeroDivisionError) as e:
            raise Invalid(str(e))

    def atom(self):
        tok = self.take()
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise Invalid("expected )")
            return value
        if tok[0].isdigit() or tok[0] == ".":
            return float(tok) if "." in tok else int(tok)
        raise Invalid("unexpected %r" % tok)


def answer(text):
    try:
        if bug == "eval":
            return str(eval(text))  # BUG: runs whatever the client sends
        return str(Parser(text).parse())
    except Exception as e:  # a bad expression never ends the session
        return "invalid expression: %s" % e


serve_forever(answer)
