//! A running switch: ports on network interfaces, controlled over a Unix socket.
