//! Query strings and `application/x-www-form-urlencoded` bodies, decoded with plugd's own decoder
//! ([`crate::percent`]): `+` is a space, `%XX` a byte, and the text must be UTF-8. Malformed input is an
//! [`Error::bad_request`], so a route function answers it with `?`.

use std::borrow::Cow;

use crate::percent::decode_form_component;
use crate::Error;

/// The decoded `name=value` fields of a query or a form body, in the order sent (repeated names kept).
///
/// ```
/// use plugin_api::FormData;
///
/// let form = FormData::parse("name=J%C3%BCrgen+B&tag=a&tag=b&flag", "query")?;
/// assert_eq!(form.get("name"), Some("Jürgen B"));
/// assert_eq!(form.get_all("tag").collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(form.get("flag"), Some(""));
/// assert_eq!(FormData::parse("x=%zz", "query").unwrap_err().status(), 400);
/// # Ok::<(), plugin_api::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct FormData<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> FormData<'a> {
    /// Decodes `raw` (`a=1&b=2`); `what` names it in the error (`"query"`, `"form body"`). Empty fields
    /// (`a=1&&b=2`) are skipped; a field without `=` has an empty value.
    pub fn parse(raw: &'a str, what: &str) -> Result<FormData<'a>, Error> {
        let decode = |text: &'a str| {
            decode_form_component(text).ok_or_else(|| {
                Error::bad_request(format!(
                    "the {what} is not valid percent-encoded UTF-8 (at {text:?})"
                ))
            })
        };
        let fields = raw
            .split('&')
            .filter(|field| !field.is_empty())
            .map(|field| {
                let (name, value) = field.split_once('=').unwrap_or((field, ""));
                Ok((decode(name)?, decode(value)?))
            })
            .collect::<Result<_, Error>>()?;
        Ok(FormData { fields })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every field in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}
