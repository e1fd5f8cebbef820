//! The OpenFlow bridge: ports, flow tables, MAC learning and the version that caches revalidate against.
