package testutil

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Etcd is a real etcd cluster from Debian's etcd-server package, its
// members on loopback, started for one test and killed at its end. Members
// can be killed and started again to make the faults the cluster tests
// need.
type Etcd struct {
	t       testing.TB
	bin     string
	dir     string
	initial string // --initial-cluster
	tls     *EtcdTLS
	Members []*EtcdMember
}

// EtcdTLS makes the members serve clients over TLS with CertFile and
// KeyFile, and require a client certificate signed by CAFile.
type EtcdTLS struct {
	CAFile, CertFile, KeyFile string
	// Client is what WaitHealthy presents: a client certificate's TLS
	// config.
	Client *tls.Config
}

// EtcdMember is one member: its client URL and its process.
type EtcdMember struct {
	Name      string
	ClientURL string
	peerURL   string
	dataDir   string
	logPath   string
	host      *TestHost // nil: on loopback in the test's namespace

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartEtcd starts an etcd cluster of n members and waits until it
// answers. A missing etcd binary skips the test, unless
// AUTOHEAL_REQUIRE_TOOLS is set (test.sh installs etcd-server and sets
// it): then it fails.
func StartEtcd(t testing.TB, n int) *Etcd {
	t.Helper()
	return startEtcd(t, n, nil, nil)
}

// StartEtcdTLS starts a one-member etcd on loopback that serves clients
// over TLS only, with client certificates required.
func StartEtcdTLS(t testing.TB, tlsFiles *EtcdTLS) *Etcd {
	t.Helper()
	return startEtcd(t, 1, nil, tlsFiles)
}

// StartEtcdOn starts one etcd member on each of hosts, at its address
// (ports 2379 and 2380): killing a host's processes or cutting its link
// takes its member with it.
func StartEtcdOn(t testing.TB, hosts *TestHosts) *Etcd {
	t.Helper()
	return startEtcd(t, len(hosts.Hosts), hosts, nil)
}

func startEtcd(t testing.TB, n int, hosts *TestHosts, tlsFiles *EtcdTLS) *Etcd {
	t.Helper()
	bin := "/usr/bin/etcd"
	if p, err := exec.LookPath("etcd"); err == nil {
		bin = p
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		msg := "etcd not installed (Debian package etcd-server: apt-get install etcd-server; test.sh installs it)"
		if os.Getenv("AUTOHEAL_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s, and AUTOHEAL_REQUIRE_TOOLS is set", msg)
		}
		t.Skipf("%s; set AUTOHEAL_REQUIRE_TOOLS=1 to make this a failure", msg)
	}
	e := &Etcd{t: t, bin: bin, dir: t.TempDir(), tls: tlsFiles}
	var initial []string
	for i := range n {
		m := &EtcdMember{Name: fmt.Sprintf("m%d", i)}
		if hosts != nil {
			m.host = hosts.Hosts[i]
			m.ClientURL, m.peerURL = "http://"+m.host.Addr+":2379", "http://"+m.host.Addr+":2380"
		} else {
			m.ClientURL, m.peerURL = "http://"+freeLoopbackAddr(t), "http://"+freeLoopbackAddr(t)
		}
		if tlsFiles != nil {
			m.ClientURL = "https" + strings.TrimPrefix(m.ClientURL, "http")
		}
		m.dataDir = filepath.Join(e.dir, m.Name)
		m.logPath = filepath.Join(e.dir, m.Name+".log")
		e.Members = append(e.Members, m)
		initial = append(initial, m.Name+"="+m.peerURL)
	}
	e.initial = strings.Join(initial, ",")
	for _, m := range e.Members {
		e.Start(m)
	}
	t.Cleanup(func() {
		for _, m := range e.Members {
			m.Kill()
		}
		if t.Failed() {
			for _, m := range e.Members {
				b, _ := os.ReadFile(m.logPath)
				t.Logf("etcd %s log (last 3000 bytes):\n%s", m.Name, lastN(b, 3000))
			}
		}
	})
	e.WaitHealthy(30 * time.Second)
	return e
}

// Endpoints are every member's client URL.
func (e *Etcd) Endpoints() []string {
	var eps []string
	for _, m := range e.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// Start starts member m (again, after Kill: its data is kept, so it rejoins
// as the same member).
func (e *Etcd) Start(m *EtcdMember) {
	e.t.Helper()
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	defer log.Close()
	state := "new"
	if _, err := os.Stat(m.dataDir); err == nil {
		state = "existing"
	}
	args := []string{
		"--name", m.Name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", e.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "autoheal-test",
		// The timing a 2 s lease needs (README, Cluster): with etcd's
		// defaults (100 ms heartbeat, 1 s election) the loss of etcd's
		// leader outlasted a healthy host's 2 s lease in 1 of 4 rounds of
		// TestSafeUntilIsALowerBound; with these, in none of 5.
		"--heartbeat-interval", "50", "--election-timeout", "500", "--pre-vote",
		"--logger", "zap", "--log-level", "warn"}
	if e.tls != nil {
		args = append(args, "--cert-file", e.tls.CertFile, "--key-file", e.tls.KeyFile,
			"--trusted-ca-file", e.tls.CAFile, "--client-cert-auth")
	}
	cmd := exec.Command(e.bin, args...)
	if m.host != nil {
		cmd = m.host.Command(e.bin, args...)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start etcd %s: %v", m.Name, err)
	}
	m.mu.Lock()
	m.cmd = cmd
	m.mu.Unlock()
	go cmd.Wait() //nolint:errcheck // reaped; Kill waits through the pid
}

// Running reports whether the member's process was started and not killed.
func (m *EtcdMember) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// Kill SIGKILLs the member, as a crashed machine would stop it.
func (m *EtcdMember) Kill() {
	m.mu.Lock()
	cmd := m.cmd
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	// Wait until the pid is gone, so its ports are free for a restart.
	for range 500 {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitHealthy waits until every running member answers /health with
// health true, or fails the test after d.
func (e *Etcd) WaitHealthy(d time.Duration) {
	e.t.Helper()
	client := &http.Client{Timeout: time.Second}
	if e.tls != nil {
		client.Transport = &http.Transport{TLSClientConfig: e.tls.Client}
	}
	WaitFor(e.t, d, "etcd members healthy", func() bool {
		for _, m := range e.Members {
			m.mu.Lock()
			running := m.cmd != nil
			m.mu.Unlock()
			if !running {
				continue
			}
			resp, err := client.Get(m.ClientURL + "/health")
			if err != nil {
				return false
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if !strings.Contains(b.String(), `"health":"true"`) {
				return false
			}
		}
		return true
	})
}

// freeLoopbackAddr returns 127.0.0.1:PORT for a port free at the time of
// the call.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func lastN(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
