//! FieldMask handling for Update methods (AIP-134).

use crate::error::{Error, Result};

/// The fields an update touches: every path of `mask` checked against
/// `allowed`; an empty mask or `*` means all of `allowed`.
pub fn paths(mask: Option<&pbjson_types::FieldMask>, allowed: &[&'static str]) -> Result<Vec<&'static str>> {
    let given: Vec<&str> = mask.map(|m| m.paths.iter().map(String::as_str).collect()).unwrap_or_default();
    if given.is_empty() || given == ["*"] {
        return Ok(allowed.to_vec());
    }
    let mut out = Vec::new();
    let mut bad = crate::error::Violations::new();
    for p in given {
        match allowed.iter().find(|a| **a == p) {
            Some(a) if !out.contains(a) => out.push(*a),
            Some(_) => {}
            None => {
                bad.add("update_mask", format!("path {p:?} is not an updatable field; allowed: {}", allowed.join(", ")))
            }
        }
    }
    bad.finish()?;
    if out.is_empty() {
        return Err(Error::invalid("update_mask", "names no field"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_star_mean_all_unknown_paths_fail() {
        let allowed = ["name", "tags"];
        assert_eq!(paths(None, &allowed).unwrap(), vec!["name", "tags"]);
        let star = pbjson_types::FieldMask { paths: vec!["*".into()] };
        assert_eq!(paths(Some(&star), &allowed).unwrap(), vec!["name", "tags"]);
        let one = pbjson_types::FieldMask { paths: vec!["tags".into()] };
        assert_eq!(paths(Some(&one), &allowed).unwrap(), vec!["tags"]);
        let bad = pbjson_types::FieldMask { paths: vec!["id".into()] };
        assert!(paths(Some(&bad), &allowed).is_err());
    }
}
