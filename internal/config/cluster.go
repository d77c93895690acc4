package config

import (
	"cmp"
	"net"
	"net/url"
	"slices"
	"time"
)

// The cluster: several hosts running autoheal, coordinated through etcd
// (docs/design.md#13-the-cluster). Absent, autoheal runs on one host with
// nothing else installed, as before. Every host loads the same file; each
// finds itself in hosts by `autoheal serve --host NAME` (default: the
// machine's host name).

// Cluster joins autoheal on several hosts. Enabled when etcd.endpoints is
// set.
type Cluster struct {
	// Name is the cluster's name: the prefix of its keys in etcd
	// (/autoheal/NAME/), so that several clusters may share one etcd.
	// Default "autoheal".
	Name string `yaml:"name"`
	// Etcd is how to reach the etcd cluster.
	Etcd Etcd `yaml:"etcd"`
	// LeaseTTL is how long a host stays a member without renewing its
	// lease: a host whose lease lapsed is taken as dead and its pets move.
	// Whole seconds, 2s to 60s (etcd grants leases in seconds, and its
	// minimum with default timing is 2 s). Default 2s.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Hosts are every host of the cluster. At least one.
	Hosts []ClusterHost `yaml:"hosts"`
	// Failsafe keeps the leader's pets running while etcd is out of reach
	// of every host, as Patroni's failsafe mode does: the leader, unable
	// to renew its lease, asks every other host at its address and
	// peer_port whether it reaches etcd, and runs on only while all of
	// them answer no (docs/design.md#13-the-cluster). Off, the leader
	// stops its pets when its lease could lapse, whatever the reason.
	// Default true.
	Failsafe *bool `yaml:"failsafe"`
	// PeerPort is the TCP port each host answers the failsafe's questions
	// on, at its address (answers are signed with a key kept in etcd).
	// Default 7071.
	PeerPort int `yaml:"peer_port"`
}

// Etcd is the client side of the etcd connection.
type Etcd struct {
	// Endpoints are the etcd members' client URLs (http:// or https://).
	// Required to enable the cluster.
	Endpoints []string `yaml:"endpoints"`
	// CAFile verifies the members' certificates; CertFile and KeyFile are
	// this host's client certificate. Either none or CertFile with
	// KeyFile; an https endpoint without CAFile uses the system's roots.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Username and PasswordFile authenticate with etcd's own auth; the
	// file holds the password (its first line), so the config, shared by
	// every host, holds no secret. Both or neither.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// DialTimeout bounds one connection attempt. Default 2s.
	DialTimeout Duration `yaml:"dial_timeout"`
}

// ClusterHost is one host of the cluster.
type ClusterHost struct {
	// Name identifies the host: like a group name. Required, unique.
	Name string `yaml:"name"`
	// Address is the host's IP address as the other hosts reach it: its
	// API (at the API's port) and its load balancer listeners. Required.
	Address string `yaml:"address"`
	// Labels are matched by groups' placement. Default none.
	Labels map[string]string `yaml:"labels"`
}

// Cluster defaults.
const (
	DefaultClusterName = "autoheal"
	DefaultLeaseTTL    = Duration(2 * time.Second)
	DefaultDialTimeout = Duration(2 * time.Second)
	DefaultPeerPort    = 7071
	MinLeaseTTL        = Duration(2 * time.Second)
	MaxLeaseTTL        = Duration(60 * time.Second)
)

// Enabled reports whether the config describes a cluster.
func (c *Cluster) Enabled() bool { return len(c.Etcd.Endpoints) > 0 }

// Host returns the host named name, or nil.
func (c *Cluster) Host(name string) *ClusterHost {
	for i := range c.Hosts {
		if c.Hosts[i].Name == name {
			return &c.Hosts[i]
		}
	}
	return nil
}

func (c *Cluster) setDefaults() {
	if !c.Enabled() {
		return
	}
	c.Name = cmp.Or(c.Name, DefaultClusterName)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.Etcd.DialTimeout = cmp.Or(c.Etcd.DialTimeout, DefaultDialTimeout)
	if c.Failsafe == nil {
		c.Failsafe = ptr(true)
	}
	c.PeerPort = cmp.Or(c.PeerPort, DefaultPeerPort)
}

// FailsafeOn reports whether the failsafe is on (the default).
func (c *Cluster) FailsafeOn() bool { return c.Failsafe == nil || *c.Failsafe }

// resolveClusterPaths makes the etcd credentials' files absolute, against
// the config's directory.
func (c *Config) resolveClusterPaths() {
	e := &c.Cluster.Etcd
	e.CAFile, e.CertFile, e.KeyFile = c.resolvePath(e.CAFile), c.resolvePath(e.CertFile), c.resolvePath(e.KeyFile)
	e.PasswordFile = c.resolvePath(e.PasswordFile)
}

func (v *validator) cluster() {
	c := &v.c.Cluster
	p := path{}.field("cluster")
	if !c.Enabled() {
		if len(c.Hosts) > 0 || c.Name != "" {
			v.errorf(p.field("etcd").field("endpoints"), "a cluster needs etcd endpoints (cluster.etcd.endpoints)")
		}
		return
	}
	if !groupName.MatchString(c.Name) {
		v.errorf(p.field("name"), "cluster name %q: use lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters", c.Name)
	}
	tp := p.field("lease_ttl")
	switch {
	case c.LeaseTTL < MinLeaseTTL || c.LeaseTTL > MaxLeaseTTL:
		v.errorf(tp, "lease_ttl %s: must be between %s and %s", c.LeaseTTL, MinLeaseTTL, MaxLeaseTTL)
	case c.LeaseTTL.D()%time.Second != 0:
		v.errorf(tp, "lease_ttl %s: must be whole seconds (etcd grants leases in seconds)", c.LeaseTTL)
	}
	v.etcd(&c.Etcd, p.field("etcd"))
	v.clusterHosts(c, p.field("hosts"))
	if c.PeerPort < 1 || c.PeerPort > 65535 {
		v.errorf(p.field("peer_port"), "peer_port %d: must be a TCP port, 1 to 65535", c.PeerPort)
	}
}

func (v *validator) etcd(e *Etcd, p path) {
	for i, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
			v.errorf(p.field("endpoints").index(i), "etcd endpoint %q: write a URL with its scheme and port, as http://10.0.0.1:2379 or https://etcd1.example.com:2379", ep)
		}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		v.errorf(p.field("cert_file"), "cert_file and key_file go together: a client certificate needs its key")
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		v.errorf(p.field("username"), "username and password_file go together")
	}
	for _, f := range []struct {
		name, file string
	}{{"ca_file", e.CAFile}, {"cert_file", e.CertFile}, {"key_file", e.KeyFile}, {"password_file", e.PasswordFile}} {
		if f.file != "" {
			v.pemFile(p.field(f.name), f.name, f.file) // a regular file of sane size
		}
	}
	v.nonNegative(p.field("dial_timeout"), e.DialTimeout)
}

func (v *validator) clusterHosts(c *Cluster, p path) {
	if len(c.Hosts) == 0 {
		v.errorf(p, "a cluster needs its hosts: every host's name and address, the same list on every host")
		return
	}
	names := map[string]path{}
	addrs := map[string]string{} // IP → host name
	for i := range c.Hosts {
		h := &c.Hosts[i]
		hp := p.index(i)
		v.uniqueName("host", h.Name, hp.field("name"), names)
		ap := hp.field("address")
		switch ip := net.ParseIP(h.Address); {
		case h.Address == "":
			v.errorf(ap, "host address is required: the IP address the other hosts reach this one at")
		case ip == nil:
			v.errorf(ap, "host address %q: write an IP address, not a name or host:port", h.Address)
		case ip.IsUnspecified():
			v.errorf(ap, "host address %q: the other hosts cannot reach an unspecified address", h.Address)
		default:
			if other, dup := addrs[ip.String()]; dup {
				v.errorf(ap, "host address %s is also host %q's", h.Address, other)
			} else {
				addrs[ip.String()] = h.Name
			}
		}
		for k := range h.Labels {
			if k == "" {
				v.keyErrorf(hp.field("labels").key(k), "label name must not be empty")
			}
		}
	}
}

// Placement constrains the hosts a group's instances may run on, as an
// Auto Scaling group's subnets and a launch template's placement do. Both
// fields narrow: a host must be listed (when hosts is set) and carry every
// label.
type Placement struct {
	// Hosts are the names of the hosts that may run the group. Default:
	// every host.
	Hosts []string `yaml:"hosts"`
	// Labels must all be on a host for it to run the group. Default none.
	Labels map[string]string `yaml:"labels"`
}

// Set reports whether the placement constrains anything.
func (p *Placement) Set() bool { return len(p.Hosts) > 0 || len(p.Labels) > 0 }

// Allows reports whether host h may run a group with this placement.
func (p *Placement) Allows(h *ClusterHost) bool {
	if len(p.Hosts) > 0 && !slices.Contains(p.Hosts, h.Name) {
		return false
	}
	for k, want := range p.Labels {
		if got, ok := h.Labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

func (v *validator) placement(g *Group, p path) {
	pl := &g.Placement
	if !pl.Set() {
		return
	}
	c := &v.c.Cluster
	if !c.Enabled() {
		v.errorf(p, "placement needs a cluster: on one host every group runs there (add a cluster section, or remove placement)")
		return
	}
	var known []string
	for _, h := range c.Hosts {
		known = append(known, h.Name)
	}
	for i, name := range pl.Hosts {
		if c.Host(name) == nil {
			v.errorf(p.field("hosts").index(i), "placement host %q is not a cluster host: %s", name, itHas(known))
		}
	}
	eligible := 0
	for i := range c.Hosts {
		if pl.Allows(&c.Hosts[i]) {
			eligible++
		}
	}
	if eligible == 0 {
		v.errorf(p, "no cluster host satisfies group %s's placement: its instances could never run", g.Name)
	}
}
