//! The stable ABI between plugd and its plugins. OWNER: plugins helper.
