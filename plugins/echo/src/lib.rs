//! Example plugin `echo`. OWNER: plugins helper.
