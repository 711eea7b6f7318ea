//! Hand-kept documents with sections that a task owns: a section starts at
//! its `## ` heading and runs to the next `## ` heading or the end of the
//! file. Tasks replace their own section and keep the rest of the file.

use std::path::Path;

use anyhow::Context as _;

/// `existing` with the section under `heading` replaced by `section` (which
/// starts with `heading`), or with `section` appended when there is none.
pub(crate) fn replaced(existing: &str, heading: &str, section: &str) -> String {
    let section = section.trim_end();
    let updated = match existing.find(&format!("{heading}\n")) {
        Some(start) => {
            let rest = &existing[start + heading.len()..];
            let end = rest
                .find("\n## ")
                .map_or(existing.len(), |i| start + heading.len() + i + 1);
            format!("{}{section}\n\n{}", &existing[..start], &existing[end..])
        }
        None => format!("{}\n\n{section}\n", existing.trim_end()),
    };
    updated.trim_end().to_owned() + "\n"
}

/// The section under `heading` of `existing` (from the heading to the next
/// `## ` heading or the end), if it has one.
pub(crate) fn section<'a>(existing: &'a str, heading: &str) -> Option<&'a str> {
    let start = if existing.starts_with(&format!("{heading}\n")) {
        0
    } else {
        existing.find(&format!("\n{heading}\n"))? + 1
    };
    let rest = &existing[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(existing.len(), |i| start + heading.len() + i + 1);
    Some(existing[start..end].trim_end())
}

/// Replaces (or appends) the section under `heading` of the file at `path`.
pub(crate) fn replace(path: &Path, heading: &str, section: &str) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, replaced(&existing, heading, section))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{replaced, section};

    #[test]
    fn finds_a_section_by_its_whole_heading() {
        let doc = "# T\n\n## Ab\n\nx\n\n## A\n\na\n\n## B\n\nb\n";
        assert_eq!(section(doc, "## A"), Some("## A\n\na"));
        assert_eq!(section(doc, "## B"), Some("## B\n\nb"));
        assert_eq!(section("## A\n\nfirst\n", "## A"), Some("## A\n\nfirst"));
        assert_eq!(section(doc, "## C"), None);
    }

    #[test]
    fn replaces_only_its_own_section() {
        let doc = "# T\n\n## A\n\nold a\n\n## B\n\nb\n";
        assert_eq!(
            replaced(doc, "## A", "## A\n\nnew a\n"),
            "# T\n\n## A\n\nnew a\n\n## B\n\nb\n"
        );
        assert_eq!(
            replaced(doc, "## B", "## B\n\nnew b"),
            "# T\n\n## A\n\nold a\n\n## B\n\nnew b\n"
        );
    }

    #[test]
    fn appends_a_missing_section() {
        assert_eq!(
            replaced("# T\n\n## A\n\na\n", "## C", "## C\n\nc\n"),
            "# T\n\n## A\n\na\n\n## C\n\nc\n"
        );
        // A heading that only starts like ours is another section.
        assert_eq!(
            replaced("## Ab\n\nx\n", "## A", "## A\n\ny\n"),
            "## Ab\n\nx\n\n## A\n\ny\n"
        );
    }
}
