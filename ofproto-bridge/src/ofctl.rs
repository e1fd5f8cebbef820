//! ovs-ofctl flow syntax: parsing `add-flow` text into rules and formatting rules back, as ovs-ofctl normalises them.
