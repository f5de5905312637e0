//! Example plugin `hello`. OWNER: plugins helper.
