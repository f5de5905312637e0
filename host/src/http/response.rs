//! Response heads on the wire: status line, `Date`, `Server`, framing and `Connection`.
