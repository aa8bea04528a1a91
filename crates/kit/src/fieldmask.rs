//! FieldMask handling for Update methods (AIP-134), typed: each resource
//! declares its updatable fields once as an enum ([`field_paths!`]), a mask is
//! parsed into that enum once, and code after it matches exhaustively: no
//! string compare, no unreachable arm on a caller's path.
//!
//! Paths are accepted in the proto's snake_case (`external_id`, what gRPC
//! clients send) and in lowerCamelCase (`externalId`, what proto3 JSON
//! writes); an empty mask or `*` means every updatable field.

use crate::error::{Error, Result, shown};

/// The updatable fields of one resource.
pub trait FieldPath: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// Every field, in the order the API documents them.
    const ALL: &'static [Self];
    /// The field's proto name (snake_case).
    fn name(self) -> &'static str;
}

/// Declares a resource's updatable fields as a [`FieldPath`] enum:
///
/// ```
/// banso_kit::field_paths! {
///     /// What UpdateContact may change.
///     pub enum ContactField { Name = "name", ExternalId = "external_id" }
/// }
/// ```
#[macro_export]
macro_rules! field_paths {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $path:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $crate::fieldmask::FieldPath for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn name(self) -> &'static str {
                match self { $($name::$variant => $path),+ }
            }
        }
    };
}

/// Paths of a mask a response names at most; the rest are counted.
const MAX_NAMED: usize = 3;

/// The fields `mask` names, each once, in the order given; an empty mask or
/// `*` means all of them. Unknown paths are one violation of `field` that
/// names (at most five of) them and lists the updatable fields once.
pub fn parse<P: FieldPath>(field: &str, mask: Option<&pbjson_types::FieldMask>) -> Result<Vec<P>> {
    let given: Vec<&str> = mask.map(|m| m.paths.iter().map(String::as_str).collect()).unwrap_or_default();
    if given.is_empty() || given == ["*"] {
        return Ok(P::ALL.to_vec());
    }
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for p in given {
        match P::ALL.iter().find(|a| a.name() == p || camel(a.name()) == p) {
            Some(a) if !out.contains(a) => out.push(*a),
            Some(_) => {}
            None => unknown.push(p),
        }
    }
    if !unknown.is_empty() {
        let named: Vec<String> = unknown.iter().take(MAX_NAMED).map(|p| shown(p)).collect();
        let more = match unknown.len() - named.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        // What the caller can do first: a long unknown path must not push
        // the updatable fields out of a reply that is cut to stay small.
        return Err(Error::invalid(
            field,
            format!(
                "the updatable fields are {} (snake_case over gRPC, lowerCamelCase in JSON; leave the mask empty \
                 to update them all); not updatable: {}{more}",
                allowed::<P>(),
                named.join(", "),
            ),
        ));
    }
    Ok(out)
}

/// The updatable fields of `P`, comma-separated: for messages and docs.
pub fn allowed<P: FieldPath>() -> String {
    P::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// `external_id` → `externalId`, as proto3 JSON names a field.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::field_paths! {
        enum Field { Name = "name", ExternalId = "external_id", Tags = "tags" }
    }

    fn mask(paths: &[&str]) -> pbjson_types::FieldMask {
        pbjson_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }
    }

    #[test]
    fn empty_and_star_mean_all_known_paths_parse_in_both_spellings() {
        assert_eq!(parse::<Field>("update_mask", None).unwrap(), Field::ALL);
        assert_eq!(parse::<Field>("update_mask", Some(&mask(&["*"]))).unwrap(), Field::ALL);
        assert_eq!(
            parse::<Field>("update_mask", Some(&mask(&["tags", "externalId", "external_id"]))).unwrap(),
            vec![Field::Tags, Field::ExternalId]
        );
    }

    #[test]
    fn unknown_paths_are_one_bounded_violation() {
        let many: Vec<String> = (0..51).map(|i| format!("nope{i}{}", "x".repeat(1000))).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let Err(Error::InvalidArgument(vs)) = parse::<Field>("update_mask", Some(&mask(&refs))) else {
            panic!("unknown paths must be refused")
        };
        assert_eq!(vs.len(), 1);
        assert!(vs[0].description.contains("and 48 more"), "{}", vs[0].description);
        assert!(vs[0].description.starts_with("the updatable fields are name, external_id, tags"));
        assert_eq!(vs[0].description.matches("external_id").count(), 1);
        assert!(vs[0].description.len() < 1200, "{}", vs[0].description.len());
    }
}
