//! Precompressed sidecars (`app.js.br`, `app.js.gz`) chosen by `Accept-Encoding` (RFC 9110 §12.5.3).

/// A content coding we can serve from a sidecar file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    /// Every coding, in the order preferred when the client weighs them equally (brotli is smaller).
    pub const ALL: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix of the sidecar file, dot included.
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
        }
    }

    /// Whether an `Accept-Encoding` coding token names this coding (`x-gzip` is gzip, RFC 9110 §8.4.1.3).
    fn is_named(self, token: &[u8]) -> bool {
        match self {
            Coding::Brotli => token.eq_ignore_ascii_case(b"br"),
            Coding::Gzip => {
                token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip")
            }
        }
    }
}

/// Weight (qvalue, RFC 9110 §12.4.2) in thousandths: 0 refuses, 1000 is the default.
type Weight = u16;

/// The codings a request accepts, best first, as its `Accept-Encoding` field lines weigh them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preferences {
    /// Accepted codings (non-zero weight) first, by weight, ties in the order of [`Coding::ALL`]; then
    /// the refused ones.
    ranked: [Coding; 2],
    /// How many of `ranked` are accepted.
    accepted: usize,
}

impl Preferences {
    /// Reads the `Accept-Encoding` field lines `values`. No field at all means no preference (RFC 9110
    /// §12.5.3), which we answer with identity: that is what every client understands, so no coding is
    /// accepted then. A coding is accepted when it is listed, or `*` is, with a non-zero weight.
    pub fn of<'a>(values: impl Iterator<Item = &'a [u8]>) -> Preferences {
        let mut weights: [Option<Weight>; 2] = [None; 2];
        let mut wildcard: Option<Weight> = None;
        for element in values.flat_map(|value| value.split(|&b| b == b',')) {
            let Some((token, weight)) = parse_element(element) else {
                continue; // empty or malformed: ignored
            };
            if token == b"*" {
                wildcard.get_or_insert(weight);
            } else if let Some(i) = Coding::ALL.iter().position(|c| c.is_named(token)) {
                weights[i].get_or_insert(weight);
            }
        }
        let weight_of = |i: usize| weights[i].or(wildcard).unwrap_or(0);
        let mut order = [0, 1];
        // A stable sort keeps ALL's order among equal weights.
        order.sort_by_key(|&i| std::cmp::Reverse(weight_of(i)));
        Preferences {
            ranked: order.map(|i| Coding::ALL[i]),
            accepted: order.iter().filter(|&&i| weight_of(i) > 0).count(),
        }
    }

    /// The accepted codings, best first.
    pub fn accepted(&self) -> &[Coding] {
        &self.ranked[..self.accepted]
    }

    /// Whether some coding is refused (not listed, or with weight 0): its sidecar is never looked for.
    pub fn refuses_any(&self) -> bool {
        self.accepted < self.ranked.len()
    }
}

/// `coding *( OWS ";" OWS name "=" value )`: the coding and its weight. Parameters other than `q` are
/// ignored; a malformed `q` makes the element malformed (so it cannot turn a refusal into an acceptance).
fn parse_element(element: &[u8]) -> Option<(&[u8], Weight)> {
    let mut parts = element.split(|&b| b == b';');
    let token = trim(parts.next()?);
    if token.is_empty() {
        return None;
    }
    let mut weight = 1000;
    for parameter in parts {
        let parameter = trim(parameter);
        if let Some(value) = parameter
            .strip_prefix(b"q=")
            .or_else(|| parameter.strip_prefix(b"Q="))
        {
            weight = parse_qvalue(value)?;
        }
    }
    Some((token, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_qvalue(value: &[u8]) -> Option<Weight> {
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let thousandths = fraction
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(3)
        .fold(0, |n: Weight, &d| n * 10 + Weight::from(d - b'0'));
    match whole {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::Coding::{Brotli, Gzip};
    use super::*;

    /// The coding served when the sidecars of `available` exist: the best accepted one of them.
    fn pick(values: &[&str], available: &[Coding]) -> Option<Coding> {
        Preferences::of(values.iter().map(|v| v.as_bytes()))
            .accepted()
            .iter()
            .copied()
            .find(|coding| available.contains(coding))
    }

    #[test]
    fn negotiation_table() {
        let both = &[Brotli, Gzip][..];
        let table: &[(&[&str], &[Coding], Option<Coding>)] = &[
            (&[], both, None),
            (&[""], both, None),
            (&["identity"], both, None),
            (&["gzip"], both, Some(Gzip)),
            (&["GZip"], both, Some(Gzip)),
            (&["x-gzip"], both, Some(Gzip)),
            (&["br"], both, Some(Brotli)),
            (&["gzip, deflate, br, zstd"], both, Some(Brotli)),
            (&["gzip", "br"], both, Some(Brotli)),
            (&["gzip;q=1.0, br;q=0.5"], both, Some(Gzip)),
            (&["gzip ; q=0.8 , br ;Q=0.9"], both, Some(Brotli)),
            (&["br;q=0, gzip"], both, Some(Gzip)),
            (&["br;q=0.000, gzip;q=0"], both, None),
            (&["*"], both, Some(Brotli)),
            (&["*;q=0"], both, None),
            (&["*, br;q=0"], both, Some(Gzip)),
            (&["gzip;q=0, *"], both, Some(Brotli)),
            (&["gzip;q=0.001"], both, Some(Gzip)),
            // Only codings whose sidecar exists count.
            (&["br"], &[Gzip], None),
            (&["gzip, br"], &[Gzip], Some(Gzip)),
            (&["gzip"], &[], None),
            // A malformed weight voids its element.
            (&["gzip;q=2"], both, None),
            (&["gzip;q=1.5"], both, None),
            (&["gzip;q=0.5000"], both, None),
            (&["gzip;q=-1"], both, None),
            (&["gzip;q="], both, None),
            (&["gzip;q=abc, br"], both, Some(Brotli)),
            (&["br;q=0, br"], both, None),
            (&["gzip;level=9"], both, Some(Gzip)),
        ];
        for &(values, available, expected) in table {
            assert_eq!(
                pick(values, available),
                expected,
                "{values:?} of {available:?}"
            );
        }
    }

    #[test]
    fn preferences_list_accepted_codings_best_first() {
        let of = |value: &str| Preferences::of(std::iter::once(value.as_bytes()));
        assert_eq!(of("gzip;q=0.5, br").accepted(), [Brotli, Gzip]);
        assert_eq!(of("gzip, br;q=0.5").accepted(), [Gzip, Brotli]);
        assert_eq!(of("gzip, br").accepted(), [Brotli, Gzip]);
        assert_eq!(of("gzip").accepted(), [Gzip]);
        assert!(of("gzip").refuses_any());
        assert!(!of("gzip, br").refuses_any());
        assert!(!of("*").refuses_any());
        let none = Preferences::of(std::iter::empty());
        assert_eq!(none.accepted(), []);
        assert!(none.refuses_any());
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        for (q, expected) in [
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.25", Some(250)),
            ("0.125", Some(125)),
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("2", None),
            (".5", None),
            ("", None),
            ("0.1234", None),
        ] {
            assert_eq!(parse_qvalue(q.as_bytes()), expected, "{q:?}");
        }
    }
}
