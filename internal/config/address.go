package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"
)

// Addresses: a group's stable endpoints, and the host ports that addresses,
// load balancer listeners (lb.go) and fixed instance ports must not share.

// Address is a stable endpoint owned by the group (an Elastic IP).
type Address struct {
	// Name identifies the address in the group: [a-z0-9][a-z0-9_-]*, at
	// most 63 characters, not all digits (a health check's port may be a
	// number or an address name). Required.
	Name string `yaml:"name"`
	// Kind is "listen" (a socket the controller keeps open on the host and
	// hands or forwards to the instance) or "vip" (an IP address that the
	// cluster host running the group adds to its interface and announces
	// with gratuitous ARP, as keepalived does; it moves with the group).
	// Default listen.
	Kind string `yaml:"kind"`
	// IP is a vip's address with its subnet's prefix length, like
	// 10.0.0.100/24 (IPv4). Required for kind vip, only for it.
	IP string `yaml:"ip"`
	// Interface is the network interface a vip goes on. Default: the
	// interface that has an address in the vip's subnet, on each host.
	Interface string `yaml:"interface"`
	// Listen is the host:port the controller listens on: an IP address,
	// localhost or nothing (every interface), and a fixed port 1-65535,
	// unique on the host across all groups. Required for kind listen.
	// A vip's clients reach the group at a listen address on every
	// interface (":8080"), or at the vip itself (like "10.0.0.100:8080").
	Listen string `yaml:"listen"`
	// Mode is "proxy" (the controller forwards connections to the instance's
	// port) or "socket" (the listening socket is handed to the instance with
	// LISTEN_FDS). Default proxy.
	Mode string `yaml:"mode"`
	// Port is the instance port in proxy mode; 0 picks a free port per
	// instance, given as AUTOHEAL_PORT_<NAME>. Must be 0 in socket mode.
	// Default 0.
	Port int `yaml:"port"`
	// WaitTimeout bounds how long a connection that arrives while no instance
	// holds the address waits for one before it is closed. Default 30s.
	WaitTimeout Duration `yaml:"wait_timeout"`
}

// Address kinds.
const (
	KindListen = "listen"
	KindVIP    = "vip"
)

// Address modes.
const (
	ModeProxy  = "proxy"
	ModeSocket = "socket"
)

// Address defaults.
const (
	DefaultMode        = ModeProxy
	DefaultWaitTimeout = Duration(30 * time.Second)
)

// setDefaults fills the address's defaults.
func (a *Address) setDefaults() {
	a.Kind = cmp.Or(a.Kind, KindListen)
	if a.Kind != KindListen {
		return // a vip has neither mode nor wait
	}
	a.Mode = cmp.Or(a.Mode, DefaultMode)
	a.WaitTimeout = cmp.Or(a.WaitTimeout, DefaultWaitTimeout)
}

func (v *validator) addresses(g *Group, gp path) {
	names := map[string]path{}
	vars := map[string]string{}
	for ai := range g.Addresses {
		a := &g.Addresses[ai]
		ap := gp.field("addresses").index(ai)
		named := v.addressName(a, ap.field("name"), names)
		switch a.Kind {
		case KindVIP:
			v.vip(g, a, ap)
			continue
		case KindListen:
		default:
			v.errorf(ap.field("kind"), "address kind %q: must be listen or vip", a.Kind)
		}
		if a.IP != "" || a.Interface != "" {
			v.errorf(ap, "ip and interface are for kind vip: a listen address takes listen")
		}
		if named {
			vr := "AUTOHEAL_PORT_" + EnvName(a.Name)
			if other, clash := vars[vr]; clash {
				v.errorf(ap.field("name"), "address names %q and %q both set %s", other, a.Name, vr)
			}
			vars[vr] = a.Name
		}

		lp := ap.field("listen")
		if a.Listen == "" {
			v.errorf(lp, "address listen is required (host:port)")
		} else if host, port, err := parseListen(a.Listen); err != nil {
			v.errorf(lp, "listen %q: %v", a.Listen, err)
		} else {
			v.listens = append(v.listens, portUse{text: a.Listen, host: host, port: port, at: lp, owner: addressOwner(g, a)})
		}

		switch a.Mode {
		case ModeProxy, ModeSocket:
		default:
			v.errorf(ap.field("mode"), "mode %q: must be proxy or socket", a.Mode)
		}
		pp := ap.field("port")
		switch {
		case a.Port < 0 || a.Port > 65535:
			v.errorf(pp, "port %d: must be 0 (a free port per instance) or 1 to 65535", a.Port)
		case a.Mode == ModeSocket && a.Port != 0:
			v.errorf(pp, "port is for proxy mode: in socket mode the instance receives the listening socket itself")
		case a.Port != 0:
			v.fixed = append(v.fixed, portUse{text: strconv.Itoa(a.Port), host: "127.0.0.1", port: a.Port, at: pp, owner: addressOwner(g, a)})
		}
	}
}

// addressName checks an address's name, of either kind, and reports
// whether it is valid and new.
func (v *validator) addressName(a *Address, np path, names map[string]path) bool {
	switch first, dup := names[a.Name]; {
	case a.Name == "":
		v.errorf(np, "address name is required")
	case !itemName.MatchString(a.Name):
		v.errorf(np, "address name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters", a.Name)
	case allDigits.MatchString(a.Name):
		// A health check's port is a number or an address name; a
		// numeric name would make "8080" ambiguous.
		v.errorf(np, "address name %q must not be a number", a.Name)
	case dup:
		v.errorf(np, "duplicate address name %q (first at %s)", a.Name, v.where(first))
	default:
		names[a.Name] = np
		return true
	}
	return false
}

// vip checks a virtual IP address (kind vip).
func (v *validator) vip(g *Group, a *Address, ap path) {
	if a.Listen != "" || a.Mode != "" || a.Port != 0 || a.WaitTimeout != 0 {
		v.errorf(ap, "listen, mode, port and wait_timeout are for kind listen: a vip is an IP address the group's host holds (add a listen address beside it for the port)")
	}
	ipp := ap.field("ip")
	pfx, err := netip.ParsePrefix(a.IP)
	switch {
	case a.IP == "":
		v.errorf(ipp, "a vip needs its ip, with the subnet's prefix length, like 10.0.0.100/24")
	case err != nil:
		v.errorf(ipp, "vip ip %q: write an IPv4 address with its prefix length, like 10.0.0.100/24", a.IP)
	case !pfx.Addr().Is4():
		v.errorf(ipp, "vip ip %q: only IPv4 is announced (gratuitous ARP)", a.IP)
	case pfx.Bits() == 32 || pfx.Addr() == pfx.Masked().Addr():
		v.errorf(ipp, "vip ip %q: give the subnet's prefix length (a /32 or the network's own address reaches no neighbour)", a.IP)
	default:
		ip := pfx.Addr().String()
		if other, dup := v.vips[ip]; dup {
			v.errorf(ipp, "vip %s is also %s's", ip, other)
		} else {
			if v.vips == nil {
				v.vips = map[string]string{}
			}
			v.vips[ip] = addressOwner(g, a)
		}
	}
	if a.Interface != "" && !ifaceName.MatchString(a.Interface) {
		v.errorf(ap.field("interface"), "interface %q: not an interface name (at most 15 characters, no '/', ':' or space)", a.Interface)
	}
	if !v.c.Cluster.Enabled() {
		v.errorf(ap.field("kind"), "a vip moves between cluster hosts: it needs a cluster section (on one host, listen on the host's own address)")
	}
}

// ifaceName is what Linux accepts as an interface name.
var ifaceName = regexp.MustCompile(`^[^/: \t\n]{1,15}$`)

func addressOwner(g *Group, a *Address) string {
	return fmt.Sprintf("group %s, address %s", g.Name, a.Name)
}

// portUse is a TCP port something needs: a listen address (of a group's
// address or of a load balancer's listener), or a fixed instance port
// (bound on loopback).
type portUse struct {
	text  string // as written
	host  string // "" for every interface
	port  int
	at    path
	owner string // "group pet, address http", "an http listener of load balancer web"
}

// parseListen checks a listen address and returns its host, normalised for
// comparison ("" for every interface), and its port.
func parseListen(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errors.New("must be host:port, like 127.0.0.1:8080 or :8080")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		// Port 0 would pick a new port at every start: clients could not
		// find the address again, which is the point of having one.
		return "", 0, errors.New("port must be a number from 1 to 65535 (a stable address needs a fixed port)")
	}
	switch host {
	case "", "0.0.0.0", "::":
		return "", n, nil
	case "localhost":
		// net.Listen binds the first address localhost resolves to.
		return "127.0.0.1", n, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", 0, errors.New("host must be an IP address, localhost, or empty for every interface")
	}
	return ip.String(), n, nil
}

// portConflicts reports listen addresses that the kernel would refuse to
// bind twice, across all groups' addresses and load balancers' listeners:
// the same port on the same host, or on every interface and any host. It
// also reports fixed instance ports that a listen address or another
// instance already needs.
func (v *validator) portConflicts() {
	overlaps := func(a, b portUse) bool {
		return a.port == b.port && (a.host == b.host || a.host == "" || b.host == "")
	}
	// By port, so that a file with many addresses is not checked in
	// quadratic time.
	listens := map[int][]portUse{}
	for _, a := range v.listens {
		for _, b := range listens[a.port] {
			if overlaps(a, b) {
				how := "is already used by"
				if a.host != b.host {
					how = fmt.Sprintf("overlaps %s of", b.text)
				}
				v.errorf(a.at, "listen %s %s %s (%s)", a.text, how, b.owner, v.where(b.at))
				break
			}
		}
		listens[a.port] = append(listens[a.port], a)
	}
	fixed := map[int]portUse{}
	for _, a := range v.fixed {
		for _, b := range listens[a.port] {
			if overlaps(a, b) {
				v.errorf(a.at, "port %d is the listen port of %s: the instance could not bind it", a.port, b.owner)
				break
			}
		}
		if b, dup := fixed[a.port]; dup {
			v.errorf(a.at, "port %d is also the instance port of %s (%s)", a.port, b.owner, v.where(b.at))
		} else {
			fixed[a.port] = a
		}
	}
}
