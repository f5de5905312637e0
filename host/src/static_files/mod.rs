//! `/static/...` -> files under the static root, as nginx serves them.
//!
//! OWNER: static files helper.
