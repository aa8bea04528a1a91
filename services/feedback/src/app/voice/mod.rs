//! The voice of the customer's use cases: items and themes ([`items`]),
//! target selection ([`rank`]), closing the loop ([`loops`]), routing to
//! departments ([`routing`]), CS = CO + CX ([`axes`]).

pub(crate) mod axes;
pub(crate) mod items;
pub(crate) mod loops;
pub(crate) mod rank;
pub(crate) mod routing;

use std::path::Path;

use anyhow::Context as _;

use crate::domain::text;

/// Reads the Japanese–English lexicon at `path` (EDICT, in UTF-8 or in
/// the EUC-JP Debian ships it in) for theme suggestions, once a process:
/// a second call keeps the first lexicon. A file that cannot be read, or
/// holds no entry, stops the service: a lexicon asked for and silently
/// missing would change every suggestion.
pub(crate) async fn use_lexicon(path: &Path) -> anyhow::Result<()> {
    if text::has_lexicon() {
        // Still a path that names no file is an error, as on a first start.
        tokio::fs::metadata(path)
            .await
            .with_context(|| format!("BANSO_FEEDBACK_LEXICON: cannot read {}", path.display()))?;
        return Ok(());
    }
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("BANSO_FEEDBACK_LEXICON: cannot read {}", path.display()))?;
    let shown = path.display().to_string();
    let lex = tokio::task::spawn_blocking(move || {
        let edict = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => encoding_rs::EUC_JP.decode(e.as_bytes()).0.into_owned(),
        };
        text::parse_lexicon(&edict)
    })
    .await?;
    anyhow::ensure!(!lex.is_empty(), "BANSO_FEEDBACK_LEXICON: {shown} holds no EDICT entry");
    tracing::info!(path = %shown, entries = lex.len(), "theme suggestions read Japanese through the lexicon");
    text::use_lexicon(lex);
    Ok(())
}
