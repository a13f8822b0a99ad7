//! Syntax errors in Swedish, placed where the author made the mistake.
//!
//! Rhai's parser reports where it gave up, in English. For the mistakes rule authors
//! make most often this module looks at the script's tokens (Rhai's own tokenizer) and
//! says what is wrong where it is wrong:
//!
//! - a `{`, `(` or `[` that is never closed is named by the line where it opens (Rhai
//!   notices only at the end of the script or at a later `else`), and a closing one
//!   without an opening one by its own line; the indentation of the lines tells which
//!   block lacks its `}`;
//! - `och`, `eller` and `inte` written for `&&`, `||` and `!`;
//! - a name with å, ä, ö or another letter outside a–z, and typographic quotes or
//!   dashes pasted from a word processor.
//!
//! Every other parse error is translated from Rhai's error kind.

use rhai::{LexError, ParseError, ParseErrorType, Position, Token};

use super::ENGINE;

/// The most problems reported for one script: the first ones show the pattern.
pub(crate) const MAX_PROBLEMS: usize = 50;

/// One problem in a script (syntax or lint): a Swedish message and its 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScriptProblem {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl ScriptProblem {
    fn at(message: String, position: Position) -> Self {
        Self {
            message,
            line: position.line(),
            column: position.position(),
        }
    }
}

/// The problems behind `err`, the parse error of `script`: the specific diagnoses of
/// this module when one applies, else Rhai's error in Swedish at Rhai's position.
pub(crate) fn describe(err: &ParseError, script: &str) -> Vec<ScriptProblem> {
    let tokens = tokens(script);
    if let ParseErrorType::BadInput(LexError::UnexpectedInput(text)) = &*err.0
        && let Some(message) = unexpected_character(text, script, err.1)
    {
        return vec![ScriptProblem::at(message, err.1)];
    }
    if let Some(message) = disabled_keyword_at(&tokens, err.1) {
        return vec![ScriptProblem::at(message.to_owned(), err.1)];
    }
    let words = swedish_operators(&tokens);
    if !words.is_empty() {
        return words;
    }
    if let Some(problem) = unbalanced(&tokens, script) {
        return vec![problem];
    }
    vec![ScriptProblem::at(translate(&err.0, &tokens), err.1)]
}

/// Why the keyword at `position` is turned off, when the token there is one
/// ([`super::DISABLED_KEYWORDS`]).
fn disabled_keyword_at(tokens: &[(Token, Position)], position: Position) -> Option<&'static str> {
    let (token, _) = tokens.iter().find(|(_, at)| *at == position)?;
    let word = match token {
        Token::Identifier(word) | Token::Reserved(word) => word.as_str(),
        // How the lexer gives a keyword that the engine turned off.
        Token::LexError(lex) => match &**lex {
            LexError::ImproperSymbol(word, _) => word.as_str(),
            _ => return None,
        },
        _ => return None,
    };
    super::DISABLED_KEYWORDS
        .iter()
        .find(|(keyword, _)| *keyword == word)
        .map(|(_, why)| *why)
}

/// How many variables `script` declares (`let` and `const`), read from its tokens
/// without compiling it.
pub(crate) fn declarations(script: &str) -> usize {
    tokens(script)
        .iter()
        .filter(|(token, _)| matches!(token, Token::Let | Token::Const))
        .count()
}

/// The script's tokens up to the end, interpolated strings followed as the parser does.
fn tokens(script: &str) -> Vec<(Token, Position)> {
    let inputs = [script];
    let (stream, control) = ENGINE.lex(&inputs);
    let mut out = Vec::new();
    // For each open delimiter: whether it opens the expression of a `${…}`.
    let mut open: Vec<bool> = Vec::new();
    let mut after_interpolation = false;
    for (token, position) in stream {
        match token {
            Token::EOF => break,
            Token::LeftBrace | Token::MapStart | Token::LeftParen | Token::LeftBracket => {
                open.push(after_interpolation && token == Token::LeftBrace);
            }
            Token::QuestionBracket => open.push(false),
            Token::RightBrace | Token::RightParen | Token::RightBracket => {
                let closes_interpolation = open.pop() == Some(true);
                if closes_interpolation && token == Token::RightBrace {
                    // Back to the text of the string after its `${…}`.
                    control.borrow_mut().is_within_text = true;
                }
            }
            _ => {}
        }
        after_interpolation = matches!(token, Token::InterpolatedString(_));
        out.push((token, position));
        if out.len() > 100_000 {
            break;
        }
    }
    out
}

/// The explanation of a character Rhai does not accept outside a text, when it is one
/// people often type by mistake.
fn unexpected_character(text: &str, script: &str, position: Position) -> Option<String> {
    let c = text.chars().next()?;
    if c.is_alphabetic() && !c.is_ascii() {
        let word = word_at(script, position).unwrap_or_else(|| c.to_string());
        let ascii: String = word.chars().map(plain_letter).collect();
        let suggestion = if ascii.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            format!(" Skriv till exempel `{ascii}`.")
        } else {
            String::new()
        };
        return Some(format!(
            "namnet `{word}` innehåller `{c}`: namn på variabler och funktioner får bara \
             innehålla a–z, A–Z, siffror och _, inte å, ä, ö eller andra bokstäver. \
             Texter inom citattecken får innehålla alla tecken.{suggestion}"
        ));
    }
    let message = match c {
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{00ab}' | '\u{00bb}' => format!(
            "`{c}` är ett typografiskt citattecken: en text skrivs mellan raka citattecken \
             `\"`, som i `\"text\"`"
        ),
        '\u{2018}' | '\u{2019}' => format!(
            "`{c}` är en typografisk apostrof: en text skrivs mellan raka citattecken `\"`, \
             som i `\"text\"`"
        ),
        '\u{2013}' | '\u{2014}' | '\u{2212}' => {
            format!("`{c}` är ett tankstreck: skriv minus som `-`")
        }
        '\u{00a0}' | '\u{202f}' | '\u{2007}' => {
            "ett hårt mellanslag (inte ett vanligt mellanslag) står här: ersätt det med ett \
             vanligt mellanslag"
                .to_owned()
        }
        _ if !c.is_ascii() => format!(
            "tecknet `{c}` (U+{:04X}) kan bara stå inuti en text mellan citattecken",
            u32::from(c)
        ),
        _ => return None,
    };
    Some(message)
}

/// `å`/`ä` → `a`, `ö` → `o`, and so on for the letters people meet in Swedish names.
fn plain_letter(c: char) -> char {
    match c {
        'å' | 'ä' | 'à' | 'á' | 'â' => 'a',
        'Å' | 'Ä' | 'À' | 'Á' | 'Â' => 'A',
        'ö' | 'ø' | 'ó' | 'ò' | 'ô' => 'o',
        'Ö' | 'Ø' | 'Ó' | 'Ò' | 'Ô' => 'O',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'ü' | 'ú' | 'ù' => 'u',
        'Ü' | 'Ú' | 'Ù' => 'U',
        _ => c,
    }
}

/// The word (letters, digits, `_`) around the 1-based `position` of `script`.
fn word_at(script: &str, position: Position) -> Option<String> {
    let line: Vec<char> = script.lines().nth(position.line()? - 1)?.chars().collect();
    let index = position.position()?.checked_sub(1)?;
    let is_word = |c: &char| c.is_alphanumeric() || *c == '_';
    if !line.get(index).is_some_and(is_word) {
        return None;
    }
    let start = line[..index]
        .iter()
        .rposition(|c| !is_word(c))
        .map_or(0, |i| i + 1);
    let end = line[index..]
        .iter()
        .position(|c| !is_word(c))
        .map_or(line.len(), |i| index + i);
    let word: String = line[start..end].iter().collect();
    (word.chars().count() <= 40).then_some(word)
}

/// `och`, `eller` and `inte` used as operators: each is reported where it stands,
/// unless the script declares a variable of that name.
fn swedish_operators(tokens: &[(Token, Position)]) -> Vec<ScriptProblem> {
    let declared: std::collections::HashSet<&str> = tokens
        .windows(2)
        .filter(|pair| {
            matches!(
                pair[0].0,
                Token::Let | Token::Const | Token::Fn | Token::For
            )
        })
        .filter_map(|pair| match &pair[1].0 {
            Token::Identifier(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    for (index, (token, position)) in tokens.iter().enumerate() {
        let Token::Identifier(name) = token else {
            continue;
        };
        let (operator, meaning) = match name.as_str() {
            "och" => ("&&", "och"),
            "eller" => ("||", "eller"),
            "inte" => ("!", "inte"),
            _ => continue,
        };
        let after_period = index > 0 && matches!(tokens[index - 1].0, Token::Period);
        if after_period || declared.contains(name.as_str()) {
            continue;
        }
        if problems.len() == MAX_PROBLEMS {
            break;
        }
        problems.push(ScriptProblem::at(
            format!(
                "`{name}` är inget ord i Rhai: skriv `{operator}` för \"{meaning}\", till \
                 exempel `{}`",
                match operator {
                    "&&" => "is_true(a) && is_true(b)",
                    "||" => "is_true(a) || is_true(b)",
                    _ => "!is_true(a)",
                }
            ),
            *position,
        ));
    }
    problems
}

/// An opening delimiter waiting for its closing one.
struct Open {
    token: Token,
    position: Position,
    /// The indentation of the line it stands on.
    indent: usize,
}

fn closing_of(open: &Token) -> Token {
    match open {
        Token::LeftParen => Token::RightParen,
        Token::LeftBracket | Token::QuestionBracket => Token::RightBracket,
        _ => Token::RightBrace,
    }
}

fn symbol(token: &Token) -> &'static str {
    match token {
        Token::LeftParen => "(",
        Token::RightParen => ")",
        Token::LeftBracket => "[",
        Token::QuestionBracket => "?[",
        Token::RightBracket => "]",
        Token::MapStart => "#{",
        Token::RightBrace => "}",
        _ => "{",
    }
}

/// The first `{`, `(` or `[` that is never closed, or the first closing one that closes
/// nothing, when the script's delimiters do not balance.
///
/// Where a block lacks its `}`, the `}` that should have closed it usually closes an
/// outer block instead, so the parser complains far below. A closing `}` that begins
/// its line is taken to close the innermost open block whose line has the same
/// indentation; the blocks opened inside that one are the ones left open.
fn unbalanced(tokens: &[(Token, Position)], script: &str) -> Option<ScriptProblem> {
    let balance = |open: &[Token], close: &Token| {
        let opened = tokens.iter().filter(|(t, _)| open.contains(t)).count();
        let closed = tokens.iter().filter(|(t, _)| t == close).count();
        opened == closed
    };
    if balance(&[Token::LeftBrace, Token::MapStart], &Token::RightBrace)
        && balance(&[Token::LeftParen], &Token::RightParen)
        && balance(
            &[Token::LeftBracket, Token::QuestionBracket],
            &Token::RightBracket,
        )
    {
        return None;
    }
    let indents: Vec<usize> = script
        .lines()
        .map(|line| line.chars().take_while(|c| *c == ' ' || *c == '\t').count())
        .collect();
    let indent_of = |position: Position| {
        position
            .line()
            .and_then(|line| indents.get(line - 1))
            .copied()
            .unwrap_or(0)
    };
    let first_on_line = |index: usize| {
        let line = tokens[index].1.line();
        index == 0 || tokens[index - 1].1.line() != line
    };
    let mut stack: Vec<Open> = Vec::new();
    // Blocks left open, as the indentation shows them, in the order found.
    let mut suspects: Vec<Open> = Vec::new();
    for (index, (token, position)) in tokens.iter().enumerate() {
        match token {
            Token::LeftBrace
            | Token::MapStart
            | Token::LeftParen
            | Token::LeftBracket
            | Token::QuestionBracket => stack.push(Open {
                token: token.clone(),
                position: *position,
                indent: indent_of(*position),
            }),
            Token::RightBrace | Token::RightParen | Token::RightBracket => {
                if *token == Token::RightBrace && first_on_line(index) {
                    let indent = indent_of(*position);
                    let top_matches = stack.last().is_some_and(|open| open.indent == indent);
                    if !top_matches
                        && let Some(at) = stack.iter().rposition(|open| {
                            open.indent == indent && closing_of(&open.token) == Token::RightBrace
                        })
                    {
                        suspects.extend(stack.drain(at + 1..));
                    }
                }
                match stack.pop() {
                    Some(open) if closing_of(&open.token) == *token => {}
                    Some(open) => {
                        return Some(ScriptProblem::at(
                            format!(
                                "`{}` på rad {} stänger inte `{}` från rad {}: de hör inte ihop",
                                symbol(token),
                                position.line().unwrap_or(0),
                                symbol(&open.token),
                                open.position.line().unwrap_or(0),
                            ),
                            *position,
                        ));
                    }
                    None => {
                        if let Some(open) = suspects.first() {
                            return Some(never_closed(open));
                        }
                        return Some(ScriptProblem::at(
                            format!(
                                "`{}` på rad {} stänger ingenting: det finns ingen `{}` före \
                                 den som den hör till. Ta bort den, eller lägg till `{}` där \
                                 blocket ska börja.",
                                symbol(token),
                                position.line().unwrap_or(0),
                                opening_symbol(token),
                                opening_symbol(token),
                            ),
                            *position,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    let open = suspects.first().or(stack.last())?;
    Some(never_closed(open))
}

fn opening_symbol(closing: &Token) -> &'static str {
    match closing {
        Token::RightParen => "(",
        Token::RightBracket => "[",
        _ => "{",
    }
}

fn never_closed(open: &Open) -> ScriptProblem {
    let line = open.position.line().unwrap_or(0);
    let opening = symbol(&open.token);
    let closing = symbol(&closing_of(&open.token));
    let what = match open.token {
        Token::LeftBrace => "blocket som börjar med",
        Token::MapStart => "mappningen som börjar med",
        Token::LeftParen => "parentesen",
        _ => "hakparentesen",
    };
    ScriptProblem::at(
        format!(
            "{what} `{opening}` på rad {line} stängs aldrig: en `{closing}` saknas, eller så \
             är `{opening}` på rad {line} en för mycket"
        ),
        open.position,
    )
}

/// Rhai's parse error in Swedish.
fn translate(err: &ParseErrorType, tokens: &[(Token, Position)]) -> String {
    let text = match err {
        ParseErrorType::UnexpectedEOF => {
            "skriptet tar slut mitt i ett uttryck: något saknas på slutet".to_owned()
        }
        ParseErrorType::BadInput(lex) => match lex {
            LexError::UnexpectedInput(text) => format!("oväntat tecken `{text}`"),
            LexError::UnterminatedString => {
                "en text avslutas aldrig: det avslutande citattecknet saknas".to_owned()
            }
            LexError::StringTooLong(max) => format!("en text eller ett namn är längre än {max} tecken"),
            LexError::MalformedEscapeSequence(_) => {
                "ogiltig kod efter `\\` i en text (skriv `\\\\` för ett bakstreck)".to_owned()
            }
            LexError::MalformedNumber(_) => "ogiltigt tal".to_owned(),
            LexError::MalformedChar(_) => "ogiltigt tecken mellan apostrofer".to_owned(),
            LexError::MalformedIdentifier(name) => format!("`{name}` kan inte vara ett namn"),
            LexError::ImproperSymbol(symbol, _) => {
                if symbol == "=" || symbol.is_empty() {
                    "`=` ger ett nytt värde; jämför med `==`".to_owned()
                } else {
                    format!("`{symbol}` kan inte stå här")
                }
            }
            _ => "skriptet kunde inte läsas".to_owned(),
        },
        ParseErrorType::UnknownOperator(op) => format!("okänd operator `{op}`"),
        ParseErrorType::MissingToken(token, description) => {
            missing_token(token, description)
        }
        ParseErrorType::MissingSymbol(description) => {
            if description.contains("==") {
                "`=` ger ett nytt värde; jämför med `==`".to_owned()
            } else {
                format!("ett tecken saknas ({description})")
            }
        }
        ParseErrorType::MalformedIndexExpr(_) => "ogiltigt index inom `[ ]`".to_owned(),
        ParseErrorType::MalformedCapture(_) => "ogiltig användning av `!` efter ett funktionsnamn".to_owned(),
        ParseErrorType::DuplicatedProperty(name) => {
            format!("nyckeln `{name}` står två gånger i samma mappning")
        }
        ParseErrorType::DuplicatedVariable(name) => format!("`{name}` är redan definierad här"),
        ParseErrorType::WrongSwitchIntegerCase
        | ParseErrorType::WrongSwitchDefaultCase
        | ParseErrorType::WrongSwitchCaseCondition => "ett fall i `switch` står fel".to_owned(),
        ParseErrorType::PropertyExpected => "ett fältnamn saknas efter `.`".to_owned(),
        ParseErrorType::VariableExpected => {
            "ett namn saknas efter `let`, `const`, `for` eller `catch`".to_owned()
        }
        ParseErrorType::ForbiddenVariable(name) | ParseErrorType::Reserved(name)
            if matches!(name.as_str(), "import" | "export") =>
        {
            "`import` och `export` finns inte i regler: en regel kan inte läsa andra filer"
                .to_owned()
        }
        ParseErrorType::ForbiddenVariable(name) | ParseErrorType::Reserved(name) => format!(
            "`{name}` är ett reserverat ord i Rhai och kan inte användas som namn"
        ),
        ParseErrorType::MismatchedType(expected, _) => {
            format!("uttrycket har fel typ här; väntade {expected}")
        }
        ParseErrorType::ExprExpected(what) => format!("ett uttryck saknas här ({})", what_sv(what)),
        ParseErrorType::WrongFnDefinition => {
            "en funktion (`fn`) kan bara skrivas överst i skriptet, inte inuti ett block eller en annan funktion".to_owned()
        }
        ParseErrorType::FnDuplicatedDefinition(name, params) => format!(
            "funktionen `{name}` med {params} parametrar är skriven två gånger"
        ),
        ParseErrorType::FnMissingName => "ett funktionsnamn saknas efter `fn`".to_owned(),
        ParseErrorType::FnMissingParams(name) => {
            format!("funktionen `{name}` saknar sin parameterlista `( … )`")
        }
        ParseErrorType::FnDuplicatedParam(name, param) => {
            format!("funktionen `{name}` har parametern `{param}` två gånger")
        }
        ParseErrorType::FnMissingBody(name) => {
            format!("funktionen `{name}` saknar sin kropp `{{ … }}`")
        }
        ParseErrorType::AssignmentToConstant(name) => {
            format!("`{name}` är en konstant (`const`) och kan inte ändras")
        }
        ParseErrorType::AssignmentToInvalidLHS(_) => {
            "till vänster om `=` måste det stå en variabel; jämför med `==`".to_owned()
        }
        ParseErrorType::VariableExists(name) => format!("`{name}` finns redan"),
        ParseErrorType::VariableUndefined(name) => undefined_variable(name, tokens),
        ParseErrorType::ModuleUndefined(_) | ParseErrorType::WrongExport => {
            "moduler (`import`/`export`) finns inte i regler".to_owned()
        }
        ParseErrorType::ExprTooDeep => format!(
            "uttrycket är för djupt nästlat (högst {} nivåer, {} inuti egna funktioner)",
            super::LIMITS.max_expr_depth,
            super::LIMITS.max_function_expr_depth
        ),
        ParseErrorType::TooManyFunctions => "skriptet har för många egna funktioner".to_owned(),
        ParseErrorType::LiteralTooLarge(kind, max) => {
            format!("ett värde i skriptet är för stort ({kind}, högst {max})")
        }
        ParseErrorType::LoopBreak => "`break` eller `continue` står utanför en loop".to_owned(),
        ParseErrorType::WrongDocComment => "en dokumentationskommentar (`///`) står fel".to_owned(),
        #[allow(deprecated)]
        other => format!("{other}"),
    };
    format!("syntaxfel: {text}")
}

/// Rhai's descriptions of a missing token, in Swedish.
fn missing_token(token: &str, description: &str) -> String {
    let known = match description {
        "to start a statement block" => Some(format!(
            "`{token}` saknas: efter villkoret i `if` eller `while` kommer ett block som börjar med `{{`"
        )),
        "to terminate this block" | "to end this statement block" => {
            Some(format!("`{token}` saknas: ett block avslutas aldrig"))
        }
        "to terminate this statement" | "to terminate this expression" => Some(format!(
            "`{token}` saknas: två satser står efter varandra utan `;` mellan dem"
        )),
        "to close the parameters list of function call"
        | "to close the arguments list of this function call" => Some(format!(
            "`{token}` saknas: ett funktionsanrop avslutas aldrig med `)`"
        )),
        "to separate the arguments to function call"
        | "to separate the items of this array literal" => {
            Some(format!("`{token}` saknas: skilj argumenten åt med `,`"))
        }
        _ => None,
    };
    known.unwrap_or_else(|| {
        let description = description.trim();
        if description.is_empty() {
            format!("`{token}` saknas")
        } else {
            format!("`{token}` saknas ({description})")
        }
    })
}

fn what_sv(what: &str) -> String {
    match what {
        "expression" => "ett värde eller uttryck".to_owned(),
        "statement" => "en sats".to_owned(),
        other => other.to_owned(),
    }
}

/// An unknown variable, with the nearest declared name as a suggestion.
fn undefined_variable(name: &str, tokens: &[(Token, Position)]) -> String {
    let mut known: Vec<String> = vec![super::script_api::PROFILE_VARIABLE.to_owned()];
    for pair in tokens.windows(2) {
        if matches!(pair[0].0, Token::Let | Token::Const | Token::For)
            && let Token::Identifier(id) = &pair[1].0
        {
            known.push(id.to_string());
        }
    }
    let suggestion = super::lint::suggest(name, known.iter().map(String::as_str))
        .map(|s| format!("; menade du `{s}`?"))
        .unwrap_or_default();
    format!(
        "okänd variabel `{name}`: en variabel skapas med `let` innan den används, och profilen heter `profile`{suggestion}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(script: &str) -> Vec<ScriptProblem> {
        let err = super::super::compile(script).expect_err("a syntax error");
        describe(&err, script)
    }

    #[test]
    fn an_extra_brace_names_the_line_where_it_opens() {
        let script = "let a = 1;\nif a > 0 {\n    if a > 1 { {\n        true\n    }\n} else {\n    false\n}\n";
        let found = problems(script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(3), "{found:?}");
        assert!(found[0].message.contains("rad 3"), "{found:?}");
        assert!(found[0].message.contains("stängs aldrig"), "{found:?}");
    }

    #[test]
    fn a_missing_brace_names_the_block_that_lacks_it() {
        let script = "if is_true(profile.gk.interpreter_booked) {\n    if profile.stage == \"before_gk\" {\n        true\n\n} else {\n    false\n}\n";
        let found = problems(script);
        assert_eq!(found[0].line, Some(2), "{found:?}");
        let script = "let a = 1;\nif a > 0 {\n    true\n";
        let found = problems(script);
        assert_eq!(found[0].line, Some(2), "{found:?}");
        assert_eq!(found[0].column, Some(10), "{found:?}");
    }

    #[test]
    fn a_closing_brace_without_a_block_is_named() {
        let found = problems("let a = 1;\n}\na == 1\n");
        assert_eq!(found[0].line, Some(2), "{found:?}");
        assert!(found[0].message.contains("stänger ingenting"), "{found:?}");
    }

    #[test]
    fn interpolated_strings_do_not_count_as_blocks() {
        let found = problems("let s = `a ${profile.stage} b`;\nif true {\n  s\n");
        assert_eq!(found[0].line, Some(2), "{found:?}");
    }

    #[test]
    fn swedish_words_for_operators_suggest_the_symbols() {
        let found = problems(
            "let a = 1;\nlet b = 2;\nif a > 0 och b > 0 eller a < 0 { true } else { false }",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].line, found[0].column), (Some(3), Some(10)));
        assert!(found[0].message.contains("`&&`"), "{found:?}");
        assert!(found[1].message.contains("`||`"), "{found:?}");
    }

    #[test]
    fn a_non_ascii_name_is_explained() {
        let found = problems("let första = 1;\nförsta > 0");
        assert_eq!((found[0].line, found[0].column), (Some(1), Some(6)));
        assert!(found[0].message.contains("`första`"), "{found:?}");
        assert!(found[0].message.contains("`forsta`"), "{found:?}");
        let found = problems("let x = \u{201c}hej\u{201d}; x");
        assert!(found[0].message.contains("raka citattecken"), "{found:?}");
    }

    #[test]
    fn other_errors_are_in_swedish_at_rhais_position() {
        let found = problems("let b = ;");
        assert_eq!((found[0].line, found[0].column), (Some(1), Some(9)));
        assert!(found[0].message.starts_with("syntaxfel: "), "{found:?}");
        let found = problems("let gk = 1;\nprofil.gk");
        assert!(
            found[0].message.contains("menade du `profile`?"),
            "{found:?}"
        );
    }
}
