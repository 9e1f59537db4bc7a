//! Reading the NNEF archives [`super::export`] writes. With tract's own reader, parsing
//! `graph.nnef` was the largest part of loading a model on ARM (its general parser
//! backtracks through every operator precedence at every value), and each load built a
//! framework, parsing NNEF's standard library again (docs/benchmarks.md, "Instruction
//! counts"). Here one framework serves every load, and the part of NNEF's syntax that
//! tract writes is parsed in one pass into tract's own syntax tree; anything else goes to
//! tract's parser, so what is read is what tract would read.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use tract_nnef::ast::{
    Argument, Assignment, Document, FragmentDecl, FragmentDef, GraphDef, Identifier, Invocation,
    LValue, Literal, Parameter, ProtoModel, RValue, Result_, TypeName, TypeSpec,
};
use tract_nnef::framework::Nnef;
use tract_nnef::prelude::*;
use tract_nnef::resource::{DatLoader, GRAPH_NNEF_FILENAME, ResourceLoader};
use tract_nnef::tract_core::internal::{bail, format_err};

/// The NNEF framework with tract's operators, built once (its standard library is parsed
/// when it is built).
pub fn framework() -> &'static Nnef {
    static NNEF: OnceLock<Nnef> = OnceLock::new();
    NNEF.get_or_init(tract_nnef::nnef)
}

/// The model in the archive at `path` (an uncompressed tar holding `graph.nnef` and its
/// `.dat` tensors); an archive with anything else is read by tract alone.
pub fn read(path: &Path) -> TractResult<TypedModel> {
    let file = std::fs::File::open(path).map_err(|e| format_err!("{}: {e}", path.display()))?;
    let mut text = None;
    let mut tensors = HashMap::new();
    for entry in tar::Archive::new(std::io::BufReader::new(file)).entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let name = name.strip_prefix("./").unwrap_or(&name).to_path_buf();
        // Hidden files (macOS's tar adds some) are skipped, as tract skips them.
        let hidden =
            |c: std::path::Component| c.as_os_str().as_encoded_bytes().first() == Some(&b'.');
        if name.components().any(hidden) {
            continue;
        }
        let reader: &mut dyn Read = &mut entry;
        if name.as_os_str() == GRAPH_NNEF_FILENAME {
            let mut graph = String::new();
            reader.read_to_string(&mut graph)?;
            text = Some(graph);
        } else if let Some((id, tensor)) = DatLoader.try_load(&name, reader, framework())? {
            let tensor = tensor
                .downcast_arc::<Tensor>()
                .map_err(|_| format_err!("{}: not a tensor", name.display()))?;
            tensors.insert(Identifier(id), tensor);
        } else {
            return framework().model_for_path(path);
        }
    }
    let Some(text) = text else {
        bail!("{} holds no {GRAPH_NNEF_FILENAME}", path.display());
    };
    let doc = match document(&text) {
        Some(doc) => doc,
        None => tract_nnef::ast::parse::parse_document(&text)?,
    };
    let proto = ProtoModel {
        doc,
        tensors,
        quantization: None,
        resources: HashMap::new(),
    };
    proto.validate()?;
    framework().model_for_proto_model(&proto)
}

/// `text` as tract's parser reads it, if it keeps to the syntax tract writes: no
/// operators, subscripts, conditions or comprehensions, no default values in fragment
/// declarations, no escaped identifiers. `None` otherwise, and for a syntax error.
fn document(text: &str) -> Option<Document> {
    let mut p = Cursor { text, at: 0 };
    let doc = p.document()?;
    p.skip();
    (p.at == text.len()).then_some(doc)
}

/// A position in the text, read token by token.
struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Cursor<'t> {
    fn rest(&self) -> &'t str {
        &self.text[self.at..]
    }

    /// Skips white space and `#` comments.
    fn skip(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
            self.at += rest.len() - trimmed.len();
            if !trimmed.starts_with('#') {
                return;
            }
            self.at += trimmed.find(['\r', '\n']).unwrap_or(trimmed.len());
        }
    }

    /// The next character, after white space.
    fn peek(&mut self) -> Option<char> {
        self.skip();
        self.rest().chars().next()
    }

    /// Consumes `token` if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip();
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    fn expect(&mut self, token: &str) -> Option<()> {
        self.eat(token).then_some(())
    }

    /// A word of ASCII letters, digits and `_`, not starting with a digit.
    fn word(&mut self) -> Option<&'t str> {
        self.skip();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 || rest.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        self.at += len;
        Some(&rest[..len])
    }

    /// An identifier; `i"…"` (an escaped one) is left to tract.
    fn identifier(&mut self) -> Option<Identifier> {
        let word = self.word()?;
        let escaped = word == "i" && self.rest().starts_with(['"', '\'']);
        (!escaped).then(|| Identifier(word.to_string()))
    }

    /// Items read by `item` up to `close` (consumed), separated by commas; none is allowed.
    fn list<T>(&mut self, close: &str, item: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(close) {
                return Some(items);
            }
            self.expect(",")?;
        }
    }

    fn document(&mut self) -> Option<Document> {
        self.expect("version")?;
        let version = self.number()?;
        self.expect(";")?;
        let mut extension = Vec::new();
        while self.eat("extension") {
            let id = self.identifier()?;
            self.skip();
            let end = self.rest().find(';')?;
            extension.push((id, self.rest()[..end].to_string()));
            self.at += end + 1;
        }
        let mut fragments = Vec::new();
        while self.eat("fragment") {
            fragments.push(self.fragment()?);
        }
        self.expect("graph")?;
        let id = self.identifier()?;
        self.expect("(")?;
        let parameters = self.list(")", Self::identifier)?;
        self.expect("->")?;
        self.expect("(")?;
        let results = self.list(")", Self::identifier)?;
        let body = self.body()?;
        Some(Document {
            version,
            extension,
            fragments,
            graph_def: GraphDef {
                id,
                parameters,
                results,
                body,
            },
        })
    }

    /// A fragment, after its keyword: declaration, then body or `;`.
    fn fragment(&mut self) -> Option<FragmentDef> {
        let id = self.identifier()?;
        let generic_decl = if self.eat("<") {
            self.expect("?")?;
            let name = if self.eat("=") {
                Some(self.type_name()?)
            } else {
                None
            };
            self.expect(">")?;
            Some(name)
        } else {
            None
        };
        self.expect("(")?;
        let parameters = self.list(")", |p| {
            let (id, spec) = p.typed()?;
            let default = p.peek() == Some('=');
            (!default).then_some(Parameter {
                id,
                spec,
                lit: None,
                doc: None,
            })
        })?;
        self.expect("->")?;
        self.expect("(")?;
        let results = self.list(")", |p| {
            let (id, spec) = p.typed()?;
            Some(Result_ { id, spec })
        })?;
        let decl = FragmentDecl {
            id,
            generic_decl,
            parameters,
            results,
        };
        let body = if self.eat(";") {
            None
        } else {
            Some(self.body()?)
        };
        Some(FragmentDef { decl, body })
    }

    /// `identifier: type`.
    fn typed(&mut self) -> Option<(Identifier, TypeSpec)> {
        let id = self.identifier()?;
        self.expect(":")?;
        Some((id, self.type_spec()?))
    }

    fn type_spec(&mut self) -> Option<TypeSpec> {
        let spec = if self.eat("(") {
            TypeSpec::Tuple(self.list(")", Self::type_spec)?)
        } else if self.eat("tensor") {
            self.expect("<")?;
            let name = self.type_name()?;
            self.expect(">")?;
            TypeSpec::Tensor(name)
        } else {
            TypeSpec::Single(self.type_name()?)
        };
        if self.eat("[") {
            self.expect("]")?;
            return Some(TypeSpec::Array(Box::new(spec)));
        }
        Some(spec)
    }

    fn type_name(&mut self) -> Option<TypeName> {
        if self.eat("?") {
            return Some(TypeName::Any);
        }
        match self.word()? {
            "integer" => Some(TypeName::Integer),
            "scalar" => Some(TypeName::Scalar),
            "logical" => Some(TypeName::Logical),
            "string" => Some(TypeName::String),
            _ => None,
        }
    }

    /// `{ assignment* }`.
    fn body(&mut self) -> Option<Vec<Assignment>> {
        self.expect("{")?;
        let mut body = Vec::new();
        while !self.eat("}") {
            let left = self.list("=", Self::lvalue).filter(|l| !l.is_empty())?;
            let left = one_or(left, LValue::Tuple);
            let right = self.rvalue()?;
            self.expect(";")?;
            body.push(Assignment { left, right });
        }
        Some(body)
    }

    fn lvalue(&mut self) -> Option<LValue> {
        if self.eat("[") {
            Some(LValue::Array(self.list("]", Self::lvalue)?))
        } else if self.eat("(") {
            Some(LValue::Tuple(self.list(")", Self::lvalue)?))
        } else {
            Some(LValue::Identifier(self.identifier()?))
        }
    }

    /// A value; it must be followed by one of `,` `)` `]` `;` (what follows a value
    /// in tract's output), as anything else would be an operator.
    fn rvalue(&mut self) -> Option<RValue> {
        let value = self.atom()?;
        matches!(self.peek(), Some(',' | ')' | ']' | ';')).then_some(value)
    }

    fn atom(&mut self) -> Option<RValue> {
        match self.peek()? {
            '(' => {
                self.at += 1;
                Some(one_or(self.list(")", Self::rvalue)?, RValue::Tuple))
            }
            '[' => {
                self.at += 1;
                if self.rest().trim_start().starts_with("for") {
                    return None;
                }
                Some(RValue::Array(self.list("]", Self::rvalue)?))
            }
            '"' | '\'' => Some(RValue::Literal(Literal::String(self.string()?))),
            '-' | '0'..='9' => Some(RValue::Literal(Literal::Numeric(self.number()?))),
            _ => self.named(),
        }
    }

    /// An invocation, an identifier, or a logical or infinite literal.
    fn named(&mut self) -> Option<RValue> {
        let id = self.identifier()?;
        let generic_type_name = if self.eat("<") {
            let name = self.type_name()?;
            self.expect(">")?;
            Some(name)
        } else {
            None
        };
        if self.eat("(") {
            let arguments = self.list(")", Self::argument)?;
            return Some(RValue::Invocation(Invocation {
                id,
                generic_type_name,
                arguments,
            }));
        }
        if generic_type_name.is_some() {
            return None;
        }
        // tract reads a literal where a word starts like one.
        match id.0.as_str() {
            "true" => Some(RValue::Literal(Literal::Logical(true))),
            "false" => Some(RValue::Literal(Literal::Logical(false))),
            "inf" => Some(RValue::Literal(Literal::Numeric(id.0))),
            w if w.starts_with("true") || w.starts_with("false") || w.starts_with("inf") => None,
            _ => Some(RValue::Identifier(id)),
        }
    }

    /// `name = value` or `value`.
    fn argument(&mut self) -> Option<Argument> {
        let start = self.at;
        if let Some(id) = self.identifier()
            && self.eat("=")
        {
            if self.rest().starts_with('=') {
                return None;
            }
            let rvalue = self.rvalue()?;
            return Some(Argument {
                id: Some(id),
                rvalue,
            });
        }
        self.at = start;
        Some(Argument {
            id: None,
            rvalue: self.rvalue()?,
        })
    }

    /// `-? (digits | inf) (. digits*)? ([eE] [+-]? digits)?`, as written.
    fn number(&mut self) -> Option<String> {
        self.skip();
        let bytes = self.rest().as_bytes();
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut end = usize::from(bytes.first() == Some(&b'-'));
        match digits(end) {
            0 if bytes[end..].starts_with(b"inf") => end += 3,
            0 => return None,
            n => end += n,
        }
        if bytes.get(end) == Some(&b'.') {
            end += 1 + digits(end + 1);
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
            match digits(end + 1 + sign) {
                0 => return None,
                n => end += 1 + sign + n,
            }
        }
        if bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        {
            return None;
        }
        let number = self.rest()[..end].to_string();
        self.at += end;
        Some(number)
    }

    /// A string in `"` or `'`, with `\` escaping the next character; the other quote
    /// inside is left to tract (which refuses it).
    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        let mut chars = self.rest()[1..].char_indices();
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '"' | '\'' if c == quote => {
                    self.at += 1 + i + 1;
                    return Some(value);
                }
                '"' | '\'' => return None,
                c => value.push(c),
            }
        }
        None
    }
}

/// A list of one item as that item, as tract reads `(x)` and `a = …`; else `many(items)`.
fn one_or<T>(mut items: Vec<T>, many: fn(Vec<T>) -> T) -> T {
    if items.len() == 1 {
        items.remove(0)
    } else {
        many(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_nnef::ast::parse::parse_document;

    /// Our parse of `text`, checked against tract's.
    fn same_as_tract(text: &str) -> Document {
        let ours = document(text).unwrap_or_else(|| panic!("not read: {text}"));
        assert_eq!(ours, parse_document(text).unwrap(), "{text}");
        ours
    }

    fn graph(body: &str) -> String {
        format!("version 1.0;\ngraph g(x) -> (y) {{\n{body}\n}}\n")
    }

    #[test]
    fn reads_what_tract_writes_as_tract_does() {
        let text = "version 1.0;\n\nextension tract_registry tract_core;\n\n\
            fragment tract_core_properties(\n) -> (properties: (string, tensor<scalar>)[])\n{\n  \
            properties = [(\"a.b\", tract_core_cast(7, to = \"i64\")), ('c', \"d\\\"e\")];\n}\n\n\
            fragment f<?=scalar>(x: tensor<?>, n: integer[]) -> (y: tensor<scalar>, z: logical);\n\
            graph network(input) -> (out, other) {\n  \
            input = external<scalar>(shape = [1, 112, 112, 3]);  # a comment\n  \
            w = variable<scalar>(label = \"w0.0\", shape = [64, 3, 3, 3]);\n  \
            c = [[[[0.0]]]];\n  \
            out = conv(input, w, 0.0, dilation = [1, 1], padding = [(0, 1), (0, 1)], border = \"constant\");\n  \
            (a, b) = split(out, axis = -1, ratios = [1.5e-3, -inf, 2E+1, 3.]);\n  \
            d, e = f(true, false, (a), ());\n  \
            [g] = h(inf, 1e5);\n  \
            other = i_x;\n}\n";
        let doc = same_as_tract(text);
        assert_eq!(doc.graph_def.body.len(), 8);
        assert_eq!(doc.fragments.len(), 2);
    }

    /// The archives of our three models, as `export` writes them, are read by our parser
    /// (not left to tract's) into what tract's parser reads.
    #[cfg(feature = "onnx")]
    #[test]
    fn reads_our_models_archives_as_tract_does() {
        use crate::vision::{MODELS, default_models_dir};
        let to = std::env::temp_dir().join(format!("recognize-agent-parse-{}", std::process::id()));
        std::fs::create_dir_all(&to).unwrap();
        for (name, shape, outputs) in MODELS {
            let path = super::super::export(&default_models_dir(), &to, name, &shape, outputs);
            let file = std::fs::File::open(path.unwrap()).unwrap();
            let mut archive = tar::Archive::new(file);
            let mut graph = archive
                .entries()
                .unwrap()
                .map(Result::unwrap)
                .find(|e| e.path().unwrap().as_os_str() == GRAPH_NNEF_FILENAME)
                .unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut graph, &mut text).unwrap();
            let doc = same_as_tract(&text);
            assert!(doc.graph_def.body.len() > 100, "{name}");
        }
        std::fs::remove_dir_all(&to).unwrap();
    }

    #[test]
    fn leaves_other_syntax_to_tract() {
        for body in [
            "y = x + 1;",
            "y = x[0];",
            "y = x if true else x;",
            "y = [for i in x yield i];",
            "y = -x;",
            "y = f(a == b);",
            "y = infinity;",
            "y = trueish;",
            "y = i\"name\";",
            "y = \"it's\";",
            "y = 1e;",
            "y = x < 2;",
        ] {
            assert_eq!(document(&graph(body)), None, "{body}");
        }
        let default = "version 1.0;\nfragment f(x: scalar = 1.0) -> (y: scalar);\n\
            graph g(x) -> (y) { y = x; }";
        assert_eq!(document(default), None);
        assert!(parse_document(default).is_ok());
    }

    #[test]
    fn refuses_broken_text_without_panicking() {
        // Every cut before the closing brace.
        let text = graph("y = conv(x, w, stride = [2, 2], s = \"\u{e9}\");");
        for end in (0..text.rfind('}').unwrap()).filter(|e| text.is_char_boundary(*e)) {
            assert_eq!(document(&text[..end]), None, "{}", &text[..end]);
        }
        for broken in [
            "",
            "version;",
            "version 1.0; graph g(x) -> (y) { y = x }",
            "version 1.0; graph g(x) -> (y) { = x; }",
            "\u{e9}",
        ] {
            assert_eq!(document(broken), None, "{broken}");
        }
    }
}
