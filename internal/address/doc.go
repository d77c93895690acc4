// Package address owns a group's stable endpoints: listening sockets the
// controller keeps open across restarts and replacements of the instance
// behind them, so clients never see the address disappear.
//
// Two modes. A Proxy accepts on the address and forwards each connection to
// the backend of whichever instance holds the address now; a connection
// that arrives while no instance holds it, or while the holder is not
// listening yet, waits (bounded) instead of being refused. A Socket is the
// listening socket itself, handed to the instance as an inherited file
// descriptor (systemd LISTEN_FDS style); connections queue in its backlog
// while the instance is replaced. RecoverListener lets a restarted
// controller take the socket back from a running instance.
//
// The package must not know what an instance or a group is beyond an
// opaque id, nor decide who holds an address: the group does, and tells the
// proxy with Associate and Disassociate.
package address
