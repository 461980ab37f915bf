//! A safe arithmetic evaluator with Python semantics: the engine of "calc" mode.
//!
//! Grammar, lowest precedence first (this is Python's own layering):
//!
//! ```text
//! expr   := term   (('+' | '-') term)*          left-associative
//! term   := factor (('*' | '/' | '//' | '%') factor)*  left-associative
//! factor := ('+' | '-') factor                   so -2**2 == -(2**2)
//!         | atom ['**' factor]                  right-assoc; 2**-1 allowed
//! atom   := NUMBER | '(' expr ')'
//! NUMBER := digits ['.' digits] [('e' | 'E') ['+' | '-'] digits]   (.5 and 1. too)
//! ```
//!
//! A tokenizer turns the line into tokens, then a recursive-descent parser
//! evaluates as it parses. Integers stay exact big integers; `/` and anything
//! touching a float gives a float, exactly as Python does.
//!
//! The input comes from the network, so every cost is capped:
//! * **Depth.** Each `(`, unary sign and `**` recurses; without a cap, 100,000
//!   `(` would overflow the stack and kill the server. Past `MAX_DEPTH` (64)
//!   levels we stop with [`CalcError::NestedTooDeeply`].
//! * **Size.** `9**9**9` is exact but has ~370 million digits. Integers may
//!   hold at most `MAX_BITS` (4096) bits, and `*` and `**` check the result
//!   size *before* computing it, so no expression allocates without bound.
//! * **Time.** Tokenizing and parsing look at each byte once; with sizes
//!   capped, every arithmetic step is cheap too.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Largest integer (in bits, sign not counted) a literal or result may have.
const MAX_BITS: u64 = 4096;
/// Most decimal digits a `MAX_BITS` integer can have (2**4096 - 1 has 1234).
const MAX_DIGITS: usize = 1234;
/// Deepest nesting of parentheses, unary signs and `**` chains.
const MAX_DEPTH: usize = 64;

/// Why an expression has no value; shown to the client as `invalid expression: {self}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// Nothing but whitespace.
    #[error("empty expression")]
    Empty,
    /// A character that is no part of the grammar (shown escaped, e.g. `'x'`).
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// A numeric literal such as `1e` or a lone `.`.
    #[error("malformed number")]
    MalformedNumber,
    /// An operator or `)` (or the end) where a number or `(` must come.
    #[error("expected a number")]
    ExpectedNumber,
    /// A number or `(` right after a complete operand, as in `3 4`.
    #[error("expected an operator")]
    ExpectedOperator,
    /// A `)` without its `(` or the other way round.
    #[error("unbalanced parentheses")]
    UnbalancedParentheses,
    /// More than 64 levels of parentheses, unary signs or `**`.
    #[error("nested too deeply")]
    NestedTooDeeply,
    /// Division or modulo by zero, or zero to a negative power.
    #[error("division by zero")]
    DivisionByZero,
    /// An integer over 4096 bits, or a float that overflowed.
    #[error("result too large")]
    TooLarge,
    /// A negative base to a fractional power (Python gives a complex number).
    #[error("complex result")]
    ComplexResult,
}

type Evaluated<T> = Result<T, CalcError>;

/// Evaluates one expression and formats its value as Python would print it (with one difference: a float with an integral value prints without `.0`).
pub fn evaluate(expr: &str) -> Result<String, CalcError> {
    let tokens = tokenize(expr)?;
    if tokens.is_empty() {
        return Err(CalcError::Empty);
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let value = parser.expr()?;
    if parser.pos < parser.tokens.len() {
        return Err(CalcError::ExpectedOperator);
    }
    Ok(match value {
        Value::Int(n) => n.to_string(),
        Value::Float(x) => format_float(x),
    })
}

/// A Python number: an exact integer or a (always finite) float.
#[derive(Debug, Clone)]
enum Value {
    Int(BigInt),
    Float(f64),
}

/// A binary operator (`+` and `-` double as unary signs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

/// One lexical unit; numbers are already converted to values.
#[derive(Debug, Clone)]
enum Token {
    Num(Value),
    Op(Op),
    Open,
    Close,
}

/// Splits `expr` into tokens and checks that parentheses balance.
fn tokenize(expr: &str) -> Evaluated<Vec<Token>> {
    let bytes = expr.as_bytes();
    let (mut tokens, mut i, mut open) = (Vec::new(), 0, 0usize);
    while i < bytes.len() {
        let token = match bytes[i] {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let end = number_end(bytes, i)?;
                let value = parse_number(&expr[i..end])?;
                i = end;
                tokens.push(Token::Num(value));
                continue;
            }
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                i += 1;
                Token::Op(Op::Pow)
            }
            b'+' => Token::Op(Op::Add),
            b'-' => Token::Op(Op::Sub),
            b'*' => Token::Op(Op::Mul),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += 1;
                Token::Op(Op::FloorDiv)
            }
            b'/' => Token::Op(Op::Div),
            b'%' => Token::Op(Op::Mod),
            b'(' => {
                open += 1;
                Token::Open
            }
            b')' => {
                open = open
                    .checked_sub(1)
                    .ok_or(CalcError::UnbalancedParentheses)?;
                Token::Close
            }
            // We only ever step over ASCII bytes, so `i` is on a char boundary.
            _ => {
                let c = expr[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(CalcError::UnexpectedChar(c));
            }
        };
        tokens.push(token);
        i += 1;
    }
    if open != 0 {
        return Err(CalcError::UnbalancedParentheses);
    }
    Ok(tokens)
}

/// Where the numeric literal starting at `start` ends.
fn number_end(bytes: &[u8], start: usize) -> Evaluated<usize> {
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = digits_from(start);
    let mut mantissa_digits = i - start;
    if bytes.get(i) == Some(&b'.') {
        let after = digits_from(i + 1);
        mantissa_digits += after - (i + 1);
        i = after;
    }
    if mantissa_digits == 0 {
        return Err(CalcError::MalformedNumber);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let after = digits_from(i);
        if after == i {
            return Err(CalcError::MalformedNumber);
        }
        i = after;
    }
    Ok(i)
}

/// Turns a literal already shaped by [`number_end`] into a value.
fn parse_number(text: &str) -> Evaluated<Value> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Refuse overlong literals before spending time parsing them.
        if text.trim_start_matches('0').len() > MAX_DIGITS {
            return Err(CalcError::TooLarge);
        }
        let n: BigInt = text.parse().map_err(|_| CalcError::MalformedNumber)?;
        return int(n);
    }
    float(text.parse().map_err(|_| CalcError::MalformedNumber)?)
}

/// Recursive-descent parser that evaluates as it goes.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    /// Consumes the next token if it is one of `ops`.
    fn eat(&mut self, ops: &[Op]) -> Option<Op> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(op)) if ops.contains(op) => {
                self.pos += 1;
                Some(*op)
            }
            _ => None,
        }
    }

    /// Goes one level deeper; every `enter` is paired with a `depth -= 1`.
    fn enter(&mut self) -> Evaluated<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::NestedTooDeeply);
        }
        Ok(())
    }

    /// `expr := term (('+' | '-') term)*`
    fn expr(&mut self) -> Evaluated<Value> {
        let mut acc = self.term()?;
        while let Some(op) = self.eat(&[Op::Add, Op::Sub]) {
            acc = apply(op, acc, self.term()?)?;
        }
        Ok(acc)
    }

    /// `term := factor (('*' | '/' | '%') factor)*`
    fn term(&mut self) -> Evaluated<Value> {
        let mut acc = self.factor()?;
        while let Some(op) = self.eat(&[Op::Mul, Op::Div, Op::FloorDiv, Op::Mod]) {
            acc = apply(op, acc, self.factor()?)?;
        }
        Ok(acc)
    }

    /// `factor := ('+' | '-') factor | atom ['**' factor]`, with
    /// `atom := NUMBER | '(' expr ')'` handled inline so that a nesting level
    /// costs only three stack frames (`expr`, `term`, `factor`): 64 levels
    /// need about 140 KiB of stack even in a debug build.
    fn factor(&mut self) -> Evaluated<Value> {
        if let Some(sign) = self.eat(&[Op::Add, Op::Sub]) {
            self.enter()?;
            let value = self.factor()?;
            self.depth -= 1;
            return Ok(if sign == Op::Sub {
                negate(value)
            } else {
                value
            });
        }
        let base = if self.eat_open() {
            self.enter()?;
            let value = self.expr()?;
            self.depth -= 1;
            self.expect_close()?;
            value
        } else {
            self.number()?
        };
        if self.eat(&[Op::Pow]).is_none() {
            return Ok(base);
        }
        // Right-associative, and the exponent may carry a sign: 2**-1.
        self.enter()?;
        let exponent = self.factor()?;
        self.depth -= 1;
        apply(Op::Pow, base, exponent)
    }

    /// Consumes a `(` if one comes next.
    fn eat_open(&mut self) -> bool {
        let open = matches!(self.tokens.get(self.pos), Some(Token::Open));
        self.pos += usize::from(open);
        open
    }

    /// Consumes the `)` that must close a group.
    fn expect_close(&mut self) -> Evaluated<()> {
        match self.tokens.get(self.pos) {
            Some(Token::Close) => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(CalcError::ExpectedOperator),
            None => Err(CalcError::UnbalancedParentheses),
        }
    }

    /// Consumes the number that must come next.
    fn number(&mut self) -> Evaluated<Value> {
        match self.tokens.get(self.pos) {
            Some(Token::Num(value)) => {
                self.pos += 1;
                Ok(value.clone())
            }
            _ => Err(CalcError::ExpectedNumber),
        }
    }
}

/// `-value`.
fn negate(value: Value) -> Value {
    match value {
        Value::Int(n) => Value::Int(-n),
        Value::Float(x) => Value::Float(-x),
    }
}

/// An integer result, if it fits in `MAX_BITS`.
fn int(n: BigInt) -> Evaluated<Value> {
    if n.bits() > MAX_BITS {
        return Err(CalcError::TooLarge);
    }
    Ok(Value::Int(n))
}

/// A float result, if it did not overflow (we never show `inf` or `nan`).
fn float(x: f64) -> Evaluated<Value> {
    if !x.is_finite() {
        return Err(CalcError::TooLarge);
    }
    Ok(Value::Float(x))
}

/// Applies a binary operator with Python's rules for int/float mixing.
fn apply(op: Op, a: Value, b: Value) -> Evaluated<Value> {
    match (op, a, b) {
        (Op::Div, Value::Int(a), Value::Int(b)) => float(ratio_to_f64(&a, &b)?),
        (Op::Pow, Value::Int(a), Value::Int(b)) if !b.is_negative() => int_pow(&a, &b),
        (Op::Add, Value::Int(a), Value::Int(b)) => int(a + b),
        (Op::Sub, Value::Int(a), Value::Int(b)) => int(a - b),
        (Op::Mul, Value::Int(a), Value::Int(b)) => {
            // A product has at least bits(a) + bits(b) - 1 bits.
            if a.bits() + b.bits() > MAX_BITS + 1 {
                return Err(CalcError::TooLarge);
            }
            int(a * b)
        }
        (Op::Mod | Op::FloorDiv, Value::Int(_), Value::Int(b)) if b.is_zero() => {
            Err(CalcError::DivisionByZero)
        }
        (Op::FloorDiv, Value::Int(a), Value::Int(b)) => int(a.div_floor(&b)),
        (Op::Mod, Value::Int(a), Value::Int(b)) => int(a.mod_floor(&b)),
        (op, a, b) => float_op(op, to_f64(&a)?, to_f64(&b)?),
    }
}

/// `base ** exp` for integers with `exp >= 0`, refusing oversized results up front.
fn int_pow(base: &BigInt, exp: &BigInt) -> Evaluated<Value> {
    // 0, 1 and -1 stay small for any exponent, even a huge one.
    if base.magnitude() <= &BigUint::one() {
        let one = exp.is_zero() || (base.is_negative() && exp.is_even());
        return Ok(Value::Int(if one { BigInt::one() } else { base.clone() }));
    }
    // |base| >= 2 from here, so the result has more than `exp` bits.
    let exp = match exp.to_u32() {
        Some(e) if u64::from(e) < MAX_BITS => e,
        _ => return Err(CalcError::TooLarge),
    };
    // |base| >= 2^(bits-1), so the result has at least (bits-1)*exp + 1 bits.
    if (base.bits() - 1) * u64::from(exp) + 1 > MAX_BITS {
        return Err(CalcError::TooLarge);
    }
    int(base.pow(exp))
}

/// Float arithmetic (mixed int/float operands were converted already).
fn float_op(op: Op, x: f64, y: f64) -> Evaluated<Value> {
    float(match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div if y == 0.0 => return Err(CalcError::DivisionByZero),
        Op::Div => x / y,
        Op::Mod | Op::FloorDiv if y == 0.0 => return Err(CalcError::DivisionByZero),
        Op::FloorDiv => float_floor_div(x, y),
        Op::Mod => {
            // Python's float %: the result takes the sign of the divisor.
            let m = x % y;
            if m == 0.0 {
                0.0_f64.copysign(y)
            } else if (m < 0.0) != (y < 0.0) {
                m + y
            } else {
                m
            }
        }
        Op::Pow => float_pow(x, y)?,
    })
}

/// Python's `float // float` (CPython's `_float_div_mod`): the quotient
/// that goes with `%`, floored, so that `(x // y) * y + x % y == x`.
fn float_floor_div(x: f64, y: f64) -> f64 {
    let m = x % y;
    let mut div = (x - m) / y;
    if m != 0.0 && ((y < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0_f64.copysign(x / y);
    }
    let floor = div.floor();
    if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

/// Python's `float ** float` (CPython's `float_pow`, minus the NaN/inf cases).
fn float_pow(x: f64, y: f64) -> Evaluated<f64> {
    let is_odd_integer = |v: f64| (v.abs() % 2.0) == 1.0;
    if y == 0.0 {
        return Ok(1.0);
    }
    if x == 0.0 {
        if y < 0.0 {
            return Err(CalcError::DivisionByZero);
        }
        return Ok(if is_odd_integer(y) { x } else { 0.0 });
    }
    let mut negate = false;
    let mut base = x;
    if x < 0.0 {
        if y != y.floor() {
            return Err(CalcError::ComplexResult);
        }
        base = -x;
        negate = is_odd_integer(y);
    }
    let magnitude = if base == 1.0 { 1.0 } else { base.powf(y) };
    Ok(if negate { -magnitude } else { magnitude })
}

/// An operand as a float; huge integers are an error, as in Python.
fn to_f64(v: &Value) -> Evaluated<f64> {
    match v {
        Value::Int(n) => ratio_to_f64(n, &BigInt::one()),
        Value::Float(x) => Ok(*x),
    }
}

/// The f64 nearest to the exact fraction `num / den` (ties to even), like
/// Python's int `/` int: `10**400 / 10**399` is exactly 10.0, not inf/inf.
fn ratio_to_f64(num: &BigInt, den: &BigInt) -> Evaluated<f64> {
    if den.is_zero() {
        return Err(CalcError::DivisionByZero);
    }
    let negative = (num.sign() == Sign::Minus) != (den.sign() == Sign::Minus);
    let (a, b) = (num.magnitude(), den.magnitude());
    let signed = |x: f64| if negative { -x } else { x };
    if a.is_zero() {
        return Ok(signed(0.0));
    }
    // e = floor(log2(a / b)), so 2^e <= a/b < 2^(e+1).
    let d = a.bits() as i64 - b.bits() as i64;
    // x * 2^|by|: callers pass a negative `by` to mean "shift the other side".
    let shifted = |x: &BigUint, by: i64| x << by.unsigned_abs();
    let at_least = if d >= 0 {
        *a >= shifted(b, d)
    } else {
        shifted(a, d) >= *b
    };
    let e = if at_least { d } else { d - 1 };
    if e > 1023 {
        return Err(CalcError::TooLarge);
    }
    // Round a/b to a multiple of its ulp: 53 significant bits, fewer if subnormal.
    let ulp = (e - 52).max(-1074);
    let (n, m) = if ulp <= 0 {
        (shifted(a, ulp), b.clone())
    } else {
        (a.clone(), shifted(b, ulp))
    };
    let (mut q, r) = n.div_rem(&m);
    let twice_r: BigUint = r << 1u8;
    if twice_r > m || (twice_r == m && q.is_odd()) {
        q += 1u8;
    }
    // q <= 2^53 is exact as f64, and scaling by a power of two is exact too.
    let q = q.to_u64().ok_or(CalcError::TooLarge)? as f64;
    let x = scale(q, ulp);
    if !x.is_finite() {
        return Err(CalcError::TooLarge);
    }
    Ok(signed(x))
}

/// `x * 2^k` for k in -1074..=1023, in steps that keep each product exact.
fn scale(mut x: f64, mut k: i64) -> f64 {
    let pow2 = |k: i64| f64::from_bits(((k + 1023) as u64) << 52);
    while k < -1000 {
        x *= pow2(-1000);
        k += 1000;
    }
    while k > 1000 {
        x *= pow2(1000);
        k -= 1000;
    }
    x * pow2(k)
}

/// Formats a float like Python's `repr`, except integral values in plain
/// notation drop the `.0`: `4`, `0.5`, `1e+16`, `1.5e-05`.
fn format_float(x: f64) -> String {
    // `{:e}` finds the fewest digits that read back as `x`, e.g. "1.5e-5".
    let sci = format!("{x:e}");
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return format!("{x}");
    };
    let Ok(exp) = exponent.parse::<i32>() else {
        return format!("{x}");
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    // When `x` lies exactly halfway between two such digit strings, Rust's
    // shortest form rounds up but Python's rounds to even. Printing again
    // with that many digits rounds exactly, ties to even, like Python.
    if (-4..16).contains(&exp) {
        // Plain notation, as Python uses for 1e-4 <= |x| < 1e16.
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        let precision = digits - 1;
        let rounded = format!("{x:.precision$e}");
        let (mantissa, _) = rounded.split_once('e').unwrap_or((&rounded, ""));
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::{evaluate, CalcError};

    /// Evaluates `expr`, failing the test with the error if there is one.
    fn ok(expr: &str) -> String {
        evaluate(expr).unwrap_or_else(|e| panic!("{expr:?} failed: {e}"))
    }

    /// Evaluates `expr`, failing the test if it has a value.
    fn err(expr: &str) -> CalcError {
        match evaluate(expr) {
            Ok(v) => panic!("{expr:?} should fail but gave {v}"),
            Err(e) => e,
        }
    }

    /// Runs `f` on a thread with only 256 KiB of stack (tests run in debug).
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .expect("spawn test thread")
            .join()
            .expect("evaluation panicked or overflowed")
    }

    /// Operators bind and associate as in Python.
    #[test]
    fn precedence_and_associativity() {
        for (expr, want) in [
            ("2+3*4", "14"),
            ("(1+2)*3", "9"),
            ("10-4-3", "3"),
            ("100/10/5", "2"),
            ("2*3%4", "2"),
            ("2**3**2", "512"),
            ("(2**3)**2", "64"),
            ("-2**2", "-4"),
            ("(-2)**2", "4"),
            ("--2**2", "4"),
            ("2**-1", "0.5"),
            ("2**-2**2", "0.0625"),
            ("-2**-2", "-0.25"),
            ("2*-3", "-6"),
            ("2---3", "-1"),
            ("+3", "3"),
            ("-1**0.5", "-1"),
        ] {
            assert_eq!(ok(expr), want, "{expr}");
        }
    }

    /// The examples from the spec, with whitespace anywhere.
    #[test]
    fn spec_examples() {
        for (expr, want) in [
            ("2+3*4", "14"),
            ("7/2", "3.5"),
            ("8/2", "4"),
            ("2**3**2", "512"),
            ("-2**2", "-4"),
            ("2**-1", "0.5"),
            ("-7 % 3", "2"),
            ("7 % -3", "-2"),
            ("(1+2)*3", "9"),
            ("0.1+0.2", "0.30000000000000004"),
            (" \t 1 +\t2 ", "3"),
            ("( 1 + 2 ) * 3", "9"),
        ] {
            assert_eq!(ok(expr), want, "{expr}");
        }
    }

    /// `%` floors: the result has the divisor's sign, for ints and floats.
    #[test]
    fn python_modulo_signs() {
        for (expr, want) in [
            ("7 % 3", "1"),
            ("-7 % 3", "2"),
            ("7 % -3", "-2"),
            ("-7 % -3", "-1"),
            ("-7.5 % 2", "0.5"),
            ("7.5 % -2", "-0.5"),
            ("5 % 2.5", "0"),
            ("-6.0 % 3", "0"),
            ("6.0 % -3", "-0"),
            ("-(10**30) % 7", "6"),
        ] {
            assert_eq!(ok(expr), want, "{expr}");
        }
    }

    /// `//` floors toward minus infinity, as `%` does, for ints and floats.
    #[test]
    fn python_floor_division() {
        for (expr, want) in [
            ("7//2", "3"),
            ("-7//2", "-4"),
            ("7//-2", "-4"),
            ("-7//-2", "3"),
            ("7.5//2", "3"),
            ("-7.5//2", "-4"),
            ("1//3*3", "0"),
            ("2**100//3**20", "363558641556578823726"),
            ("7 // 2 % 2", "1"),
        ] {
            assert_eq!(ok(expr), want, "{expr}");
        }
        for expr in ["1//0", "1.5//0", "1//0.0"] {
            assert_eq!(err(expr), CalcError::DivisionByZero, "{expr}");
        }
    }

    /// Floats print like Python's repr, minus `.0` on integral values.
    #[test]
    fn float_formatting() {
        for (expr, want) in [
            ("1/3", "0.3333333333333333"),
            ("2**0.5", "1.4142135623730951"),
            ("1e20", "1e+20"),
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000"),
            ("9999999999999998.0", "9999999999999998"),
            ("12345678901234567.0", "1.2345678901234568e+16"),
            ("1e-5", "1e-05"),
            ("1.5e-7", "1.5e-07"),
            ("0.0001", "0.0001"),
            ("0.00012345", "0.00012345"),
            ("1.5e300", "1.5e+300"),
            ("2.5E-3", "0.0025"),
            ("1e5", "100000"),
            ("1.e5", "100000"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-0.0", "-0"),
            ("0/-5", "-0"),
            ("2.0**-1074", "5e-324"),
            ("-12.4*144368311117*1024", "-1833131067239219.2"),
            ("0.25e-10", "2.5e-11"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ] {
            assert_eq!(ok(expr), want, "{expr}");
        }
    }

    /// Integer arithmetic is exact, never rounded or wrapped.
    #[test]
    fn big_exact_ints() {
        assert_eq!(
            ok("2**200"),
            "1606938044258990275541962092341162602522202993782792835301376"
        );
        assert_eq!(
            ok("99999999999999999999*99999999999999999999"),
            "9999999999999999999800000000000000000001"
        );
        let big = ok("10**1000");
        assert_eq!(big.len(), 1001);
        assert!(big.starts_with('1') && big[1..].bytes().all(|b| b == b'0'));
        assert_eq!(ok("10**1000 - 10**1000 + 1"), "1");
        // 2**4096 - 1 is the largest allowed magnitude: exactly 4096 bits.
        assert_eq!(ok("(2**4095-1)*2+1").len(), 1234);
        assert_eq!(ok("-((2**4095-1)*2+1) + (2**4095-1)*2"), "-1");
        assert_eq!(ok("(-1)**(10**400)"), "1");
        assert_eq!(ok("(-1)**(10**400+1)"), "-1");
        assert_eq!(ok("0**(10**400)"), "0");
        assert_eq!(ok("0**0"), "1");
        assert_eq!(ok("(10**30+1)/3"), "3.333333333333333e+29");
    }

    /// Int `/` int and int-to-float conversion round correctly, as in Python.
    #[test]
    fn big_int_true_division() {
        assert_eq!(ok("10**400/10**399"), "10");
        assert_eq!(ok("1/10**400"), "0");
        assert_eq!(ok("3/2**1075"), "1e-323");
        assert_eq!(ok("(2**53+1)*1.0"), "9007199254740992");
        assert_eq!(ok("(2**53+3)*1.0"), "9007199254740996");
        assert_eq!(ok("2**1023*1.5"), "1.348269851146737e+308");
        assert_eq!(ok("-(10**20)/3"), "-3.333333333333333e+19");
    }

    /// Oversized results are refused quickly, before the work is done.
    #[test]
    fn too_large_results() {
        let start = std::time::Instant::now();
        for expr in [
            "2**100000",
            "2**4096",
            "10**10**10",
            "9**9**9",
            "2**(10**400)",
            "2**4095*2",
            "2**4095*2**4095",
            "(2**4095-1)*2+2",
            "1e400",
            "1e308*10",
            "2.0**10000",
            "10**400*1.0",
            "10**400/1",
            "2**1024/1",
            "0.5**(10**400)",
            "0**-(10**400)",
        ] {
            assert_eq!(err(expr), CalcError::TooLarge, "{expr}");
        }
        let literal = "9".repeat(1235);
        assert_eq!(err(&literal), CalcError::TooLarge);
        assert_eq!(ok(&format!("000{}", "9".repeat(1233))).len(), 1233);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    /// 100,000 nested parentheses fail fast on a 256 KiB stack.
    #[test]
    fn deep_parens_small_stack() {
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            on_small_stack(move || evaluate(&deep)),
            Err(CalcError::NestedTooDeeply)
        );
        let open_only = "(".repeat(100_000);
        assert!(on_small_stack(move || evaluate(&open_only)).is_err());
    }

    /// 100,000 unary minuses and long `**` chains also hit the depth cap.
    #[test]
    fn deep_unary_and_power_small_stack() {
        let minuses = format!("{}1", "-".repeat(100_000));
        assert_eq!(
            on_small_stack(move || evaluate(&minuses)),
            Err(CalcError::NestedTooDeeply)
        );
        let powers = format!("{}1", "1**".repeat(100_000));
        assert_eq!(
            on_small_stack(move || evaluate(&powers)),
            Err(CalcError::NestedTooDeeply)
        );
        let mixed = "-(".repeat(50_000);
        assert!(on_small_stack(move || evaluate(&mixed)).is_err());
    }

    /// Exactly MAX_DEPTH levels still evaluate, on the same small stack.
    #[test]
    fn depth_limit_is_exact() {
        let results = on_small_stack(|| {
            let parens = |n: usize| format!("{}2{}", "(".repeat(n), ")".repeat(n));
            [
                evaluate(&parens(64)),
                evaluate(&parens(65)),
                evaluate(&format!("{}1", "-".repeat(64))),
                evaluate(&format!("{}1", "-".repeat(65))),
                evaluate(&format!("{}1", "1**".repeat(64))),
                evaluate(&format!("{}1", "1**".repeat(65))),
                evaluate(&format!("{}1{}", "(-".repeat(32), ")".repeat(32))),
            ]
        });
        let deep = Err(CalcError::NestedTooDeeply);
        assert_eq!(results[0], Ok("2".to_string()));
        assert_eq!(results[1], deep);
        assert_eq!(results[2], Ok("1".to_string()));
        assert_eq!(results[3], deep);
        assert_eq!(results[4], Ok("1".to_string()));
        assert_eq!(results[5], deep);
        assert_eq!(results[6], Ok("1".to_string()));
    }

    /// Long flat expressions are fine: only nesting is capped, and cost is linear.
    #[test]
    fn long_flat_expression() {
        let sum = format!("{}1", "1+".repeat(30_000));
        assert_eq!(ok(&sum), "30001");
        let product = format!("{}1", "7*".repeat(2000));
        assert_eq!(err(&product), CalcError::TooLarge);
    }

    /// Every way of dividing by zero is an error, never inf or nan.
    #[test]
    fn division_by_zero() {
        for expr in [
            "1/0", "1%0", "1.0/0", "1/0.0", "1%0.0", "0.0%0", "1/(2-2)", "0**-1", "0.0**-1",
            "0**-0.5",
        ] {
            assert_eq!(err(expr), CalcError::DivisionByZero, "{expr}");
        }
    }

    /// A negative base to a fractional power would be complex in Python.
    #[test]
    fn complex_results() {
        for expr in ["(-8)**(1/3)", "(-1)**0.5", "(-2.5)**1.5"] {
            assert_eq!(err(expr), CalcError::ComplexResult, "{expr}");
        }
        assert_eq!(ok("(-8)**2.0"), "64");
        assert_eq!(ok("(-2)**-1"), "-0.5");
    }

    /// Malformed input gets the right error, never a panic.
    #[test]
    fn garbage_inputs() {
        use CalcError::*;
        for (expr, want) in [
            ("", Empty),
            ("   \t ", Empty),
            ("2 +", ExpectedNumber),
            ("**2", ExpectedNumber),
            ("*2", ExpectedNumber),
            ("1 +* 2", ExpectedNumber),
            ("2***2", ExpectedNumber),
            ("7///2", ExpectedNumber),
            ("()", ExpectedNumber),
            ("-", ExpectedNumber),
            (")(", UnbalancedParentheses),
            ("(1", UnbalancedParentheses),
            ("1)", UnbalancedParentheses),
            ("((1)", UnbalancedParentheses),
            ("3 4", ExpectedOperator),
            ("1..2", ExpectedOperator),
            ("1.2.3", ExpectedOperator),
            ("2(3)", ExpectedOperator),
            ("(1 2)", ExpectedOperator),
            ("abc", UnexpectedChar('a')),
            ("0x10", UnexpectedChar('x')),
            ("1_000", UnexpectedChar('_')),
            ("nan", UnexpectedChar('n')),
            ("inf", UnexpectedChar('i')),
            ("2 é 3", UnexpectedChar('é')),
            ("1\0", UnexpectedChar('\0')),
            ("1e5e5", UnexpectedChar('e')),
            (".", MalformedNumber),
            ("1e", MalformedNumber),
            ("1e+", MalformedNumber),
            (".e5", MalformedNumber),
        ] {
            assert_eq!(evaluate(expr), Err(want), "{expr:?}");
        }
    }

    /// Error messages are short, lowercase, and escape odd characters.
    #[test]
    fn error_messages() {
        assert_eq!(err("1/0").to_string(), "division by zero");
        assert_eq!(err("2**100000").to_string(), "result too large");
        assert_eq!(err("x").to_string(), "unexpected character 'x'");
        assert_eq!(
            err("1\n+\u{7}").to_string(),
            "unexpected character '\\u{7}'"
        );
        assert_eq!(err("(").to_string(), "unbalanced parentheses");
        assert_eq!(err("").to_string(), "empty expression");
        assert_eq!(err("1+").to_string(), "expected a number");
        assert_eq!(err("1 1").to_string(), "expected an operator");
        assert_eq!(err("1e").to_string(), "malformed number");
        assert_eq!(err("(-1)**0.5").to_string(), "complex result");
        assert_eq!(err(&"-".repeat(100)).to_string(), "nested too deeply");
    }

    /// Weird strings and every short combination of grammar pieces never panic
    /// and never print inf or nan.
    #[test]
    fn fuzzish_no_panics() {
        let weird = [
            "\u{feff}1",
            "１+１",
            "1 + 2\r",
            "\u{0}",
            "((((((((((",
            "))))))))))",
            "-+-+-+1",
            "1e999999999999999999999",
            "1e-999999999999999999999",
            "0e0",
            "0.0**0.0",
            "(-0.0)**-1",
            "-0.0%-1",
            "1%-0.0",
            "2**-1074",
            "2**-1075",
            "2.0**1023*2",
            "10**1233",
            "10**1234",
            "-(2**4096-1)",
            "(2**4096-1)+1",
            "4**2048",
            "4**2047*2",
            "1/3**700",
            "7.0%1e-300",
            "1e308+1e308",
            "1e-320/1e10",
            "....",
            "e",
            "E5",
        ];
        let pieces = [
            "1", "0", "2.5", "-", "+", "*", "**", "/", "%", "(", ")", " ", "e", ".",
        ];
        let mut inputs: Vec<String> = weird.iter().map(|s| s.to_string()).collect();
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        inputs.push(format!("{a}{b}{c}{d}"));
                    }
                }
            }
        }
        for input in &inputs {
            if let Ok(value) = evaluate(input) {
                assert!(
                    !value.contains("inf") && !value.contains("NaN"),
                    "{input:?}"
                );
            }
        }
    }
}
