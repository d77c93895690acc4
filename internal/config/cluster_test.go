package config

import (
	"strings"
	"testing"
	"time"
)

const clusterBase = alarmBase + `cluster:
  etcd: {endpoints: ["http://10.0.0.1:2379", "https://etcd2.example.com:2379"]}
  hosts:
    - {name: h1, address: 10.0.0.1, labels: {zone: a}}
    - {name: h2, address: 10.0.0.2, labels: {zone: b}}
`

func TestClusterDefaults(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte(clusterBase))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if !c.Enabled() || c.Name != "autoheal" || c.LeaseTTL.D() != 2*time.Second || c.Etcd.DialTimeout.D() != 2*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if h := c.Host("h2"); h == nil || h.Address != "10.0.0.2" {
		t.Fatalf("Host(h2) = %+v", h)
	}
	if c.Host("h3") != nil {
		t.Fatal("Host(h3) found a host that is not there")
	}
	one, err := Parse("mem.yaml", []byte(alarmBase))
	if err != nil || one.Cluster.Enabled() || one.Cluster.Name != "" {
		t.Fatalf("no cluster section: %+v %v", one.Cluster, err)
	}
}

// TestClusterInvalid: each mistake is named at its place.
func TestClusterInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"hosts without etcd", alarmBase + "cluster:\n  hosts: [{name: h1, address: 10.0.0.1}]\n", "mem.yaml:4:1: a cluster needs etcd endpoints"},
		{"no hosts", alarmBase + "cluster:\n  etcd: {endpoints: [\"http://10.0.0.1:2379\"]}\n", "a cluster needs its hosts"},
		{"endpoint without scheme", strings.Replace(clusterBase, `"http://10.0.0.1:2379"`, `"10.0.0.1:2379"`, 1), `mem.yaml:5:22: etcd endpoint "10.0.0.1:2379": write a URL with its scheme and port`},
		{"endpoint without port", strings.Replace(clusterBase, `"http://10.0.0.1:2379"`, `"http://10.0.0.1"`, 1), `etcd endpoint "http://10.0.0.1"`},
		{"ttl below etcd's minimum", clusterBase + "  lease_ttl: 1s\n", "lease_ttl 1s: must be between 2s and 1m"},
		{"ttl too long", clusterBase + "  lease_ttl: 61s\n", "lease_ttl 1m1s: must be between 2s and 1m"},
		{"ttl not whole seconds", clusterBase + "  lease_ttl: 2500ms\n", "lease_ttl 2.5s: must be whole seconds"},
		{"duplicate host", strings.Replace(clusterBase, "name: h2", "name: h1", 1), `duplicate host name "h1"`},
		{"host name", strings.Replace(clusterBase, "name: h2", "name: H2", 1), `host name "H2"`},
		{"address is a name", strings.Replace(clusterBase, "address: 10.0.0.2", "address: h2.example.com", 1), `host address "h2.example.com": write an IP address`},
		{"address with port", strings.Replace(clusterBase, "address: 10.0.0.2", "address: \"10.0.0.2:80\"", 1), `write an IP address`},
		{"unspecified address", strings.Replace(clusterBase, "address: 10.0.0.2", "address: 0.0.0.0", 1), "cannot reach an unspecified address"},
		{"shared address", strings.Replace(clusterBase, "address: 10.0.0.2", "address: 10.0.0.1", 1), `host address 10.0.0.1 is also host "h1"'s`},
		{"no address", strings.Replace(clusterBase, "address: 10.0.0.2, ", "", 1), "host address is required"},
		{"a valid ttl", clusterBase + "  lease_ttl: 5s\n", ""},
		{"name", strings.Replace(clusterBase, "cluster:\n", "cluster:\n  name: Prod\n", 1), `cluster name "Prod"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("mem.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !strings.Contains(errString(err), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	// Credentials go in pairs.
	etcd := "cluster:\n  etcd:\n    endpoints: [\"http://10.0.0.1:2379\"]\n"
	hosts := "  hosts: [{name: h1, address: 10.0.0.1}]\n"
	for _, tc := range []struct{ extra, want string }{
		{"    cert_file: /etc/hostname\n", "cert_file and key_file go together"},
		{"    username: root\n", "username and password_file go together"},
		{"    ca_file: /nonexistent/ca.pem\n", "ca_file /nonexistent/ca.pem: no such file or directory"},
	} {
		_, err := Parse("mem.yaml", []byte(alarmBase+etcd+tc.extra+hosts))
		if !strings.Contains(errString(err), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.extra, err, tc.want)
		}
	}
}

// TestPlacement: hosts and labels both narrow; a placement no host meets,
// or one without a cluster, is refused.
func TestPlacement(t *testing.T) {
	h1 := &ClusterHost{Name: "h1", Labels: map[string]string{"zone": "a", "disk": "ssd"}}
	h2 := &ClusterHost{Name: "h2", Labels: map[string]string{"zone": "b"}}
	for _, tc := range []struct {
		name   string
		p      Placement
		h1, h2 bool
	}{
		{"none: any host", Placement{}, true, true},
		{"listed host only", Placement{Hosts: []string{"h2"}}, false, true},
		{"label must match", Placement{Labels: map[string]string{"zone": "a"}}, true, false},
		{"every label", Placement{Labels: map[string]string{"zone": "a", "disk": "hdd"}}, false, false},
		{"absent label", Placement{Labels: map[string]string{"disk": "ssd"}}, true, false},
		{"hosts and labels both", Placement{Hosts: []string{"h2"}, Labels: map[string]string{"zone": "a"}}, false, false},
	} {
		if got1, got2 := tc.p.Allows(h1), tc.p.Allows(h2); got1 != tc.h1 || got2 != tc.h2 {
			t.Errorf("%s: h1 %v h2 %v, want %v %v", tc.name, got1, got2, tc.h1, tc.h2)
		}
	}
	group := func(placement string) string {
		return "groups:\n  - name: g\n    launch: {command: sh}\n    placement: " + placement + "\n" + clusterBase[len(alarmBase):]
	}
	for _, tc := range []struct{ yaml, want string }{
		{group("{labels: {zone: b}}"), ""},
		{group("{hosts: [h3]}"), `mem.yaml:4:25: placement host "h3" is not a cluster host: it has h1, h2`},
		{group("{labels: {zone: c}}"), "no cluster host satisfies group g's placement"},
		{alarmBase + "    placement: {hosts: [h1]}\n", "placement needs a cluster"},
	} {
		_, err := Parse("mem.yaml", []byte(tc.yaml))
		if tc.want == "" && err != nil || !strings.Contains(errString(err), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestVolumeKinds: shared volumes need a cluster and an absolute path;
// local ones take no path.
func TestVolumeKinds(t *testing.T) {
	group := func(vol string) string {
		return "groups:\n  - name: g\n    launch: {command: sh}\n    volumes: [" + vol + "]\n"
	}
	withCluster := func(s string) string { return s + clusterBase[len(alarmBase):] }
	for _, tc := range []struct{ yaml, want string }{
		{group("{name: d}"), ""},
		{withCluster(group("{name: d, kind: shared, path: /mnt/shared/d}")), ""},
		{group("{name: d, kind: shared, path: /mnt/shared/d}"), "a shared volume needs a cluster"},
		{withCluster(group("{name: d, kind: shared}")), "a shared volume needs its path"},
		{withCluster(group("{name: d, kind: shared, path: rel/d}")), `path "rel/d" must be an absolute directory other than /`},
		{withCluster(group("{name: d, kind: shared, path: /}")), `path "/" must be an absolute directory other than /`},
		{group("{name: d, path: /mnt/d}"), "path is for shared volumes"},
		{group("{name: d, kind: Shared}"), `volume kind "Shared": use local or shared (did you mean "shared"?)`},
	} {
		cfg, err := Parse("mem.yaml", []byte(tc.yaml))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.want == "" && cfg.Groups[0].Volumes[0].Kind == "":
			t.Errorf("%s: no default kind", tc.yaml)
		case tc.want != "" && !strings.Contains(errString(err), tc.want):
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestVIPs: a virtual IP is an IPv4 address with its subnet, in a
// cluster, unique, with nothing of a listen address; a listen address
// takes none of a vip's fields. Line and column point at the value.
func TestVIPs(t *testing.T) {
	group := func(addrs string) string {
		return "groups:\n  - name: g\n    launch: {command: sh}\n    addresses: [" + addrs + "]\n"
	}
	withCluster := func(s string) string { return s + clusterBase[len(alarmBase):] }
	for _, tc := range []struct{ yaml, want string }{
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/24}, {name: http, listen: ':8080'}")), ""},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/24, interface: eth0}")), ""},
		{group("{name: v, kind: vip, ip: 10.0.0.100/24}"), "mem.yaml:4:33: a vip moves between cluster hosts: it needs a cluster section"},
		{withCluster(group("{name: v, kind: vip}")), "a vip needs its ip"},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100}")), `vip ip "10.0.0.100": write an IPv4 address with its prefix length`},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/32}")), "give the subnet's prefix length"},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.0/24}")), "give the subnet's prefix length"},
		{withCluster(group("{name: v, kind: vip, ip: 'fd00::1/64'}")), "only IPv4"},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/24, listen: ':80'}")), "listen, mode, port and wait_timeout are for kind listen"},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/24, interface: 'a/b'}")), `interface "a/b": not an interface name`},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/24}, {name: w, kind: vip, ip: 10.0.0.100/16}")), "vip 10.0.0.100 is also group g, address v's"},
		{withCluster(group("{name: v, kind: vip, ip: 10.0.0.100/24}, {name: v, listen: ':80'}")), `duplicate address name "v"`},
		{withCluster(group("{name: http, listen: ':80', ip: 10.0.0.1/24}")), "ip and interface are for kind vip"},
		{withCluster(group("{name: http, kind: VIP, listen: ':80'}")), `address kind "VIP": must be listen or vip`},
	} {
		cfg, err := Parse("mem.yaml", []byte(tc.yaml))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.want == "" && len(cfg.Groups[0].VIPs()) == 0:
			t.Errorf("%s: no vip", tc.yaml)
		case tc.want != "" && !strings.Contains(errString(err), tc.want):
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestVIPsAreNotListeners: a vip is neither a port name nor the PORT of
// the group's instances.
func TestVIPsAreNotListeners(t *testing.T) {
	g := Group{Addresses: []Address{{Name: "v", Kind: KindVIP, IP: "10.0.0.1/24"}, {Name: "http", Kind: KindListen, Mode: ModeProxy}}}
	if got := g.PortNames(); len(got) != 1 || got[0] != "http" {
		t.Fatalf("PortNames = %v, want [http]", got)
	}
	if name, ok := g.PortVar(); !ok || name != "http" {
		t.Fatalf("PortVar = %q %v, want http", name, ok)
	}
	if _, ok := g.Address("v"); ok {
		t.Fatal("Address(v) found a vip")
	}
	if v := g.VIPs(); len(v) != 1 || v[0].Name != "v" {
		t.Fatalf("VIPs = %v", v)
	}
}
