package config

import (
	"cmp"
	"crypto/tls"
	"os"
	"time"
)

// Load balancers and their listeners (with TLS). Target groups, their
// members and their health checks are in targetgroup.go; the host ports
// listeners share with addresses are checked in address.go.

// LoadBalancer is a set of listeners and the target groups they forward to
// (an Application or Network Load Balancer).
type LoadBalancer struct {
	// Name identifies the load balancer, like a group name. Required, unique.
	Name string `yaml:"name"`
	// Listeners accept connections. At least one.
	Listeners []Listener `yaml:"listeners"`
	// TargetGroups are the pools of targets listeners forward to. Names are
	// unique across all load balancers. At least one.
	TargetGroups []TargetGroup `yaml:"target_groups"`
}

// Listener protocols; also target group and health check protocols.
const (
	ProtocolHTTP = "http"
	ProtocolTCP  = "tcp"
)

// Listener is one listening socket of a load balancer.
type Listener struct {
	// Protocol is http (an HTTP/1.1 reverse proxy, TLS when TLS is set) or
	// tcp (connections forwarded as they are). Required.
	Protocol string `yaml:"protocol"`
	// Listen is host:port, with a fixed port, unique on the host across
	// listeners and group addresses. Required.
	Listen string `yaml:"listen"`
	// TargetGroup is the name of the target group of this load balancer that
	// receives the traffic; its protocol must match. Required.
	TargetGroup string `yaml:"target_group"`
	// TLS terminates TLS on an http listener. Default none (plain HTTP).
	TLS *TLS `yaml:"tls"`
	// IdleTimeout closes a client connection idle for this long (http:
	// between requests; tcp: no byte either way). Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// FirstByteTimeout closes a client connection that sends nothing for
	// this long after it was accepted (http: no byte of a first request, or
	// of the TLS handshake; tcp: no byte either way, so that a target's
	// greeting counts). Such connections are also the first closed when a
	// listener nears max_connections. Default 10s.
	FirstByteTimeout Duration `yaml:"first_byte_timeout"`
	// HeaderTimeout bounds how long a client may take to send a request's
	// headers from their first byte (http only), so slow clients cannot
	// hold connections. Default 10s.
	HeaderTimeout Duration `yaml:"header_timeout"`
	// MaxHeaderBytes caps a request's request line and headers (http only).
	// Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxBodyBytes caps a request body (http only); larger ones get 413.
	// Default 100MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxConnections caps concurrent client connections; more wait in the
	// kernel's accept queue. From 99% of it on (all but max(1, 1%)), each
	// new connection closes the connection idle longest (http: before its
	// first request or between requests; tcp: no byte yet either way), so
	// that new clients are served. Default 10000.
	MaxConnections int `yaml:"max_connections"`
}

// TLS is a certificate and key in PEM files, paths relative to the config
// file's directory (absolute after Validate).
type TLS struct {
	// CertFile is the certificate chain. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key. Required.
	KeyFile string `yaml:"key_file"`
}

// TargetGroup returns the load balancer's target group with the given name.
func (lb *LoadBalancer) TargetGroup(name string) (*TargetGroup, bool) {
	for i := range lb.TargetGroups {
		if lb.TargetGroups[i].Name == name {
			return &lb.TargetGroups[i], true
		}
	}
	return nil, false
}

// Listener defaults.
const (
	DefaultIdleTimeout = Duration(60 * time.Second)
	// As HAProxy's usual `timeout http-request 10s`: a connection that
	// sends nothing is closed as soon as a slow request head would be.
	DefaultFirstByteTimeout = Duration(10 * time.Second)
	DefaultHeaderTimeout    = Duration(10 * time.Second) // http only
	DefaultMaxHeaderBytes   = ByteSize(64 << 10)         // http only
	DefaultMaxBodyBytes     = ByteSize(100 << 20)        // http only
	DefaultMaxConnections   = 10000
)

// setLoadBalancerDefaults fills the defaults of every load balancer's
// listeners and target groups. As for health checks, a field that only one
// protocol uses is filled only for that protocol, so that validate can
// refuse it where the user wrote it in vain.
func (c *Config) setLoadBalancerDefaults() {
	// The only named port of each group, for members that give none.
	onlyPort := map[string]string{}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		if _, dup := onlyPort[g.Name]; dup {
			continue
		}
		onlyPort[g.Name] = ""
		if names := g.PortNames(); len(names) == 1 {
			onlyPort[g.Name] = names[0]
		}
	}
	for li := range c.LoadBalancers {
		lb := &c.LoadBalancers[li]
		for i := range lb.Listeners {
			lb.Listeners[i].setDefaults(c)
		}
		for i := range lb.TargetGroups {
			lb.TargetGroups[i].setDefaults(onlyPort)
		}
	}
}

// setDefaults fills the listener's defaults and makes its TLS files'
// paths absolute, relative to c's directory.
func (l *Listener) setDefaults(c *Config) {
	l.IdleTimeout = cmp.Or(l.IdleTimeout, DefaultIdleTimeout)
	l.FirstByteTimeout = cmp.Or(l.FirstByteTimeout, DefaultFirstByteTimeout)
	l.MaxConnections = cmp.Or(l.MaxConnections, DefaultMaxConnections)
	if l.Protocol == ProtocolHTTP {
		l.HeaderTimeout = cmp.Or(l.HeaderTimeout, DefaultHeaderTimeout)
		l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, DefaultMaxHeaderBytes)
		l.MaxBodyBytes = cmp.Or(l.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if l.TLS != nil {
		l.TLS.CertFile = c.resolvePath(l.TLS.CertFile)
		l.TLS.KeyFile = c.resolvePath(l.TLS.KeyFile)
	}
}

func (v *validator) loadBalancers() {
	// Which load balancer each target group belongs to, so that a listener
	// naming another load balancer's target group can be told so.
	owner := map[string]string{}
	for _, lb := range v.c.LoadBalancers {
		for _, tg := range lb.TargetGroups {
			if _, seen := owner[tg.Name]; !seen {
				owner[tg.Name] = lb.Name
			}
		}
	}
	// Indexes, so that a file with many targets is not checked in
	// quadratic time.
	groups := map[string]*memberGroup{}
	for gi := range v.c.Groups {
		g := &v.c.Groups[gi]
		if _, dup := groups[g.Name]; !dup {
			mg := &memberGroup{g: g, names: g.PortNames(), ports: map[string]bool{}}
			for _, n := range mg.names {
				mg.ports[n] = true
			}
			groups[g.Name] = mg
		}
	}
	lbNames := map[string]path{}
	tgNames := map[string]path{} // across all load balancers
	for li := range v.c.LoadBalancers {
		lb := &v.c.LoadBalancers[li]
		tgs := map[string]*TargetGroup{}
		for i := range lb.TargetGroups {
			if _, dup := tgs[lb.TargetGroups[i].Name]; !dup {
				tgs[lb.TargetGroups[i].Name] = &lb.TargetGroups[i]
			}
		}
		lp := path{}.field("load_balancers").index(li)
		np := lp.field("name")
		v.uniqueName("load balancer", lb.Name, np, lbNames)
		if len(lb.Listeners) == 0 {
			v.errorf(lp.field("listeners"), "a load balancer needs at least one listener")
		}
		if len(lb.TargetGroups) == 0 {
			v.errorf(lp.field("target_groups"), "a load balancer needs at least one target group")
		}
		for i := range lb.Listeners {
			v.listener(lb, &lb.Listeners[i], lp.field("listeners").index(i), tgs, owner)
		}
		for i := range lb.TargetGroups {
			tg := &lb.TargetGroups[i]
			tp := lp.field("target_groups").index(i)
			np := tp.field("name")
			// Unique across load balancers: the API and the metrics name a
			// target group by its name alone.
			v.uniqueName("target group", tg.Name, np, tgNames)
			v.targetGroup(tg, tp, groups)
		}
	}
}

func (v *validator) listener(lb *LoadBalancer, l *Listener, p path, tgs map[string]*TargetGroup, owner map[string]string) {
	known := l.Protocol == ProtocolHTTP || l.Protocol == ProtocolTCP
	switch {
	case l.Protocol == "":
		v.errorf(p.field("protocol"), "listener protocol is required: http or tcp")
	case !known:
		v.errorf(p.field("protocol"), "protocol %q: must be http or tcp", l.Protocol)
	}

	lp := p.field("listen")
	if l.Listen == "" {
		v.errorf(lp, "listener listen is required (host:port)")
	} else if host, port, err := parseListen(l.Listen); err != nil {
		v.errorf(lp, "listen %q: %v", l.Listen, err)
	} else {
		who := "a listener"
		switch l.Protocol {
		case ProtocolHTTP:
			who = "an http listener"
		case ProtocolTCP:
			who = "a tcp listener"
		}
		who += " of load balancer " + lb.Name
		v.listens = append(v.listens, portUse{text: l.Listen, host: host, port: port, at: lp, owner: who})
	}

	tp := p.field("target_group")
	if l.TargetGroup == "" {
		v.errorf(tp, "listener target_group is required: the name of one of this load balancer's target groups")
	} else if tg, ok := tgs[l.TargetGroup]; !ok {
		if other, elsewhere := owner[l.TargetGroup]; elsewhere {
			v.errorf(tp, "target group %q belongs to load balancer %s: a listener forwards to its own load balancer's target groups", l.TargetGroup, other)
		} else {
			v.errorf(tp, "target_group %q is not a target group of load balancer %s (%s)", l.TargetGroup, lb.Name, itHas(targetGroupNames(lb)))
		}
	} else if known && tg.Protocol != l.Protocol && (tg.Protocol == ProtocolHTTP || tg.Protocol == ProtocolTCP) {
		// An http listener speaks HTTP to its targets and a tcp listener
		// copies bytes: neither can use the other's target group.
		v.errorf(tp, "target group %q has protocol %s: a listener needs a target group of its own protocol, %s", tg.Name, tg.Protocol, l.Protocol)
	}

	if l.TLS != nil {
		if l.Protocol == ProtocolTCP {
			v.keyErrorf(p.field("tls"), "tls is used only by http listeners, not tcp")
		} else {
			v.tlsFiles(l.TLS, p.field("tls"))
		}
	}
	if l.Protocol == ProtocolTCP {
		for _, f := range []struct {
			name string
			set  bool
		}{{"header_timeout", l.HeaderTimeout != 0}, {"max_header_bytes", l.MaxHeaderBytes != 0}, {"max_body_bytes", l.MaxBodyBytes != 0}} {
			if f.set {
				v.keyErrorf(p.field(f.name), "%s is used only by http listeners, not tcp", f.name)
			}
		}
	}
	v.nonNegative(p.field("idle_timeout"), l.IdleTimeout)
	v.nonNegative(p.field("first_byte_timeout"), l.FirstByteTimeout)
	v.nonNegative(p.field("header_timeout"), l.HeaderTimeout)
	if l.MaxHeaderBytes < 0 {
		v.errorf(p.field("max_header_bytes"), "max_header_bytes must not be negative, got %d", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 0 {
		v.errorf(p.field("max_body_bytes"), "max_body_bytes must not be negative, got %d", l.MaxBodyBytes)
	}
	if l.MaxConnections < 0 {
		v.errorf(p.field("max_connections"), "max_connections must not be negative, got %d", l.MaxConnections)
	}
}

// tlsFiles checks that the certificate and key files exist and load as a pair,
// so that a listener does not fail at start, or worse at its first
// handshake.
func (v *validator) tlsFiles(t *TLS, p path) {
	certOK := v.pemFile(p.field("cert_file"), "cert_file", t.CertFile)
	keyOK := v.pemFile(p.field("key_file"), "key_file", t.KeyFile)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.errorf(p.field("cert_file"), "cert_file and key_file do not load as a certificate and its key: %v", pathErr(err))
		}
	}
}

// maxPEMFile bounds a certificate or key file: a chain is a few KiB, and
// validation must not read a huge file into memory.
const maxPEMFile = 1 << 20

// pemFile reports whether the file named by field is a regular file that
// is small enough to load.
func (v *validator) pemFile(p path, field, name string) bool {
	if name == "" {
		v.errorf(p, "tls needs a %s (a PEM file)", field)
		return false
	}
	fi, err := os.Stat(name)
	switch {
	case err != nil:
		v.errorf(p, "%s %s: %v", field, name, pathErr(err))
	case fi.IsDir():
		v.errorf(p, "%s %s is a directory", field, name)
	case !fi.Mode().IsRegular():
		// A device or a FIFO could block validation, or never end.
		v.errorf(p, "%s %s is not a regular file", field, name)
	case fi.Size() > maxPEMFile:
		v.errorf(p, "%s %s is too large for a PEM file (%s, at most %s)", field, name, ByteSize(fi.Size()), ByteSize(maxPEMFile))
	default:
		return true
	}
	return false
}

func targetGroupNames(lb *LoadBalancer) []string {
	names := make([]string, len(lb.TargetGroups))
	for i, tg := range lb.TargetGroups {
		names[i] = tg.Name
	}
	return names
}
