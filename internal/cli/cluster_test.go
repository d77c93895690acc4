package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/testutil"
)

// TestHostsAndSetConfig: hosts lists the configured hosts from etcd with
// membership and leader; set-config replaces the recorded config so that
// a host with the new file joins and one with the old is refused; serve
// refuses a config with a cluster section until it runs one.
func TestHostsAndSetConfig(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	dir := t.TempDir()
	clusterSection := "cluster:\n  name: " + testutil.UniqueName("cli") + "\n  etcd: {endpoints: [\"" + e.Endpoints()[0] + "\"]}\n" +
		"  hosts:\n    - {name: h1, address: 10.9.0.1}\n    - {name: h2, address: 10.9.0.2}\n"
	v1 := "groups:\n  - name: g\n    launch: {command: /bin/sh}\n" + clusterSection
	v2 := strings.Replace(v1, "/bin/sh", "/bin/true", 1)
	p1, p2 := filepath.Join(dir, "v1.yaml"), filepath.Join(dir, "v2.yaml")
	for p, s := range map[string]string{p1: v1, p2: v2} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(p1)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "hosts", "-c", p1)
	if code != ExitOK || !strings.Contains(out, "h1    10.9.0.1  no") || !strings.Contains(out, "h2    10.9.0.2  no") {
		t.Fatalf("hosts (none joined): %d\n%s%s", code, out, errs)
	}
	m, err := cluster.Join(t.Context(), &cfg.Cluster, "h1", []byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave(context.Background())
	if err := m.Campaign(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "hosts", "-c", p1)
	if code != ExitOK || !strings.Contains(out, "h1    10.9.0.1  yes") || !strings.Contains(out, "leader") {
		t.Fatalf("hosts (h1 joined, leads): %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "-o", "json", "hosts", "-c", p1)
	if code != ExitOK || !strings.Contains(out, `"leader": true`) {
		t.Fatalf("hosts json: %s", out)
	}
	if _, err := cluster.Join(t.Context(), &cfg.Cluster, "h2", []byte(v2)); err == nil {
		t.Fatal("h2 joined with a config that differs")
	}
	if code, out, errs = runCLI(t, "cluster", "set-config", "-c", p2, "--host", "ops"); code != ExitOK {
		t.Fatalf("set-config: %d %s%s", code, out, errs)
	}
	m2, err := cluster.Join(t.Context(), &cfg.Cluster, "h2", []byte(v2))
	if err != nil {
		t.Fatalf("h2 with the recorded config: %v", err)
	}
	m2.Leave(context.Background())
	// serve: what this version cannot run across hosts is refused before
	// anything is opened.
	local := filepath.Join(dir, "local.yaml")
	os.WriteFile(local, []byte(strings.Replace(v1, "launch: {command: /bin/sh}", "launch: {command: /bin/sh}\n    volumes: [{name: data}]", 1)), 0o600)
	code, _, errs = runCLI(t, "--state-dir", filepath.Join(dir, "state"), "serve", "-c", local, "--host", "h2")
	if code != ExitConfig || !strings.Contains(errs, "volume data is local: it would stay on one host") {
		t.Fatalf("serve with a local volume in a cluster: %d %s", code, errs)
	}
	// Without etcd, or without a cluster section: clear errors.
	noCluster := filepath.Join(dir, "one.yaml")
	os.WriteFile(noCluster, []byte("groups:\n  - name: g\n    launch: {command: /bin/sh}\n"), 0o600)
	if code, _, errs = runCLI(t, "hosts", "-c", noCluster); code != ExitConfig || !strings.Contains(errs, "has no cluster section") {
		t.Fatalf("hosts without a cluster: %d %s", code, errs)
	}
}
