//! Example plugin `counter`. OWNER: plugins helper.
