package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadBalancerDefaults(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte(`
groups:
  - name: web
    max: 3
    launch:
      command: sh
      ports: [http]
load_balancers:
  - name: front
    listeners:
      - {protocol: http, listen: "127.0.0.1:9", target_group: web}
      - {protocol: tcp, listen: "127.0.0.1:10", target_group: raw}
    target_groups:
      - name: web
        groups: [{group: web}]
        targets: [{address: "127.0.0.1:11"}]
        health_check: {interval: 1s}
      - name: raw
        protocol: tcp
        groups: [{group: web, port: 8080}]
        retries: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	lb := cfg.LoadBalancers[0]
	h, tcp := lb.Listeners[0], lb.Listeners[1]
	web, raw := lb.TargetGroups[0], lb.TargetGroups[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"idle_timeout", h.IdleTimeout.D(), 60 * time.Second},
		{"first_byte_timeout", h.FirstByteTimeout.D(), 10 * time.Second},
		{"tcp first_byte_timeout", tcp.FirstByteTimeout.D(), 10 * time.Second},
		{"header_timeout", h.HeaderTimeout.D(), 10 * time.Second},
		{"max_header_bytes", h.MaxHeaderBytes, ByteSize(64 << 10)},
		{"max_body_bytes", h.MaxBodyBytes, ByteSize(100 << 20)},
		{"max_connections", h.MaxConnections, 10000},
		{"tls", h.TLS, (*TLS)(nil)},
		{"tcp idle_timeout", tcp.IdleTimeout.D(), 60 * time.Second},
		{"tcp max_connections", tcp.MaxConnections, 10000},
		{"tcp header_timeout is http's", tcp.HeaderTimeout, Duration(0)},
		{"tcp max_header_bytes is http's", tcp.MaxHeaderBytes, ByteSize(0)},
		{"tcp max_body_bytes is http's", tcp.MaxBodyBytes, ByteSize(0)},
		{"protocol", web.Protocol, "http"},
		{"algorithm", web.Algorithm, "round_robin"},
		{"deregistration_delay", web.DeregistrationDelay.D(), 30 * time.Second},
		{"slow_start", web.SlowStart.D(), time.Duration(0)},
		{"hold_timeout", web.HoldTimeout.D(), 10 * time.Second},
		{"retries", *web.Retries, 2},
		{"retries 0 stays 0", raw.RetryCount(), 0},
		{"connect_timeout", web.ConnectTimeout.D(), 2 * time.Second},
		{"response_timeout", web.ResponseTimeout.D(), 60 * time.Second},
		{"tcp response_timeout is http's", raw.ResponseTimeout, Duration(0)},
		{"member port: the group's only named port", web.Groups[0].Port, "http"},
		{"member port as written", raw.Groups[0].Port, "8080"},
		{"member weight", web.Groups[0].Weight, 1},
		{"target weight", web.Targets[0].Weight, 1},
		{"target id: its address", web.Targets[0].ID, "127.0.0.1:11"},
		{"check protocol: the target group's", web.HealthCheck.Protocol, "http"},
		{"check path", web.HealthCheck.Path, "/"},
		{"check matcher", web.HealthCheck.Matcher, "200-399"},
		{"check timeout: min(interval, 2s)", web.HealthCheck.Timeout.D(), time.Second},
		{"check healthy_threshold", web.HealthCheck.HealthyThreshold, 2},
		{"check unhealthy_threshold", web.HealthCheck.UnhealthyThreshold, 2},
		{"tcp check protocol", raw.HealthCheck.Protocol, "tcp"},
		{"tcp check interval", raw.HealthCheck.Interval.D(), 5 * time.Second},
		{"tcp check timeout", raw.HealthCheck.Timeout.D(), 2 * time.Second},
		{"tcp check path is http's", raw.HealthCheck.Path, ""},
		{"tcp check matcher is http's", raw.HealthCheck.Matcher, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestTLSKeyMismatch: a key that is not the certificate's is refused when
// the config is validated, not at the listener's first handshake.
func TestTLSKeyMismatch(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := filepath.Abs("testdata/lb-cert.pem")
	_, err = Parse("mem.yaml", []byte(`groups:
  - name: web
    launch: {command: sh, ports: [http]}
load_balancers:
  - name: front
    listeners:
      - protocol: http
        listen: 127.0.0.1:9
        target_group: web
        tls: {cert_file: `+cert+`, key_file: `+keyFile+`}
    target_groups:
      - {name: web, groups: [{group: web}]}
`))
	want := "mem.yaml:10:26: cert_file and key_file do not load as a certificate and its key: tls: private key does not match public key"
	if errString(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestLoadBalancerBuiltInCode: values the parser refuses (negative
// durations) can still reach Validate from code, and are named by path.
func TestLoadBalancerBuiltInCode(t *testing.T) {
	c := &Config{
		Groups: []Group{{Name: "web", Launch: Launch{Command: "sh", Ports: []string{"http"}}}},
		LoadBalancers: []LoadBalancer{{
			Name:      "front",
			Listeners: []Listener{{Protocol: ProtocolHTTP, Listen: "127.0.0.1:9", TargetGroup: "web", IdleTimeout: -1}},
			TargetGroups: []TargetGroup{{
				Name: "web", Groups: []TargetGroupMember{{Group: "web"}}, HoldTimeout: Duration(-time.Second),
				HealthCheck: TargetHealthCheck{Interval: Duration(-time.Second)},
			}},
		}},
	}
	err := c.Validate()
	want := `load_balancers[0].listeners[0].idle_timeout: idle_timeout must not be negative, got -1ns
load_balancers[0].target_groups[0].health_check.interval: interval must not be negative, got -1s
load_balancers[0].target_groups[0].health_check.timeout: timeout must not be negative, got -1s
load_balancers[0].target_groups[0].hold_timeout: hold_timeout must not be negative, got -1s`
	if errString(err) != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}
